"""Small custom widgets: preview, level meter, crop editor, message bar."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """RGB uint8 [H,W,3] -> QImage that owns a copy (the array may be reused by the producer)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class PreviewView(QWidget):
    """Shows the newest frame scaled to fit, with a placeholder text while idle."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._image: QImage | None = None
        self.placeholder = "Press Start to go live"
        self.frames_shown = 0
        self.setMinimumSize(320, 320)

    def set_frame(self, rgb: np.ndarray) -> None:
        self._image = rgb_to_qimage(rgb)
        self.frames_shown += 1
        self.update()

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#101318"))
        p.drawRoundedRect(QRectF(self.rect()), 10, 10)
        if self._image is None or self._image.isNull():
            p.setPen(QColor("#7d8794"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        side = min(self.width(), self.height()) - 16
        scaled = self._image.size().scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - scaled.width()) / 2
        y = (self.height() - scaled.height()) / 2
        p.drawImage(QRectF(x, y, scaled.width(), scaled.height()), self._image)


class LevelMeter(QWidget):
    """Horizontal input meter in dBFS with the noise-gate threshold marked."""

    FLOOR_DB = -80.0

    def __init__(self, parent=None):
        super().__init__(parent)
        self.level_db = self.FLOOR_DB
        self.threshold_db = -45.0
        self.gate_open = False
        self.setMinimumHeight(14)
        self.setMaximumHeight(14)

    def _x(self, db: float) -> float:
        frac = (max(self.FLOOR_DB, min(0.0, db)) - self.FLOOR_DB) / -self.FLOOR_DB
        return frac * self.width()

    def set_level(self, level_db: float, gate_open: bool) -> None:
        # Fast attack, slow release: readable without flicker.
        self.level_db = level_db if level_db > self.level_db else self.level_db * 0.7 + level_db * 0.3
        self.gate_open = gate_open
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#1d232c"))
        p.drawRoundedRect(QRectF(self.rect()), 4, 4)
        color = QColor("#3ecf8e") if self.gate_open else QColor("#5b6573")
        p.setBrush(color)
        p.drawRoundedRect(QRectF(0, 0, self._x(self.level_db), self.height()), 4, 4)
        p.setPen(QPen(QColor("#f5a623"), 2))
        x = self._x(self.threshold_db)
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))


class CropView(QWidget):
    """An image with a square crop the user drags to move and scrolls (or slides) to resize."""

    crop_changed = Signal(tuple)  # (x, y, size) in image pixels

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._img_w = self._img_h = 0
        self.crop: tuple[int, int, int] | None = None
        self._faces: list[tuple[int, int, int, int]] = []
        self._drag: QPointF | None = None
        self.setMinimumSize(220, 180)
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    def set_image(self, rgb: np.ndarray | None, crop=None, faces=()) -> None:
        if rgb is None:
            self._pixmap, self.crop, self._faces = None, None, []
        else:
            self._pixmap = QPixmap.fromImage(rgb_to_qimage(rgb))
            self._img_h, self._img_w = rgb.shape[:2]
            self.crop = tuple(crop) if crop else None
            self._faces = list(faces)
        self.update()

    def _geometry(self) -> tuple[float, float, float]:
        scale = min(self.width() / self._img_w, self.height() / self._img_h)
        ox = (self.width() - self._img_w * scale) / 2
        oy = (self.height() - self._img_h * scale) / 2
        return scale, ox, oy

    def set_crop(self, crop) -> None:
        from app.faces import clamp_crop

        if self._pixmap is None:
            return
        self.crop = clamp_crop(tuple(int(v) for v in crop), self._img_w, self._img_h)
        self.update()
        self.crop_changed.emit(self.crop)

    def zoom(self, size: int) -> None:
        if self.crop is None:
            return
        x, y, s = self.crop
        cx, cy = x + s / 2, y + s / 2
        self.set_crop((round(cx - size / 2), round(cy - size / 2), size))

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._drag = event.position()
        self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag is None or self.crop is None:
            return
        scale, _, _ = self._geometry()
        delta = (event.position() - self._drag) / scale
        self._drag = event.position()
        x, y, s = self.crop
        self.set_crop((round(x + delta.x()), round(y + delta.y()), s))

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self._drag = None
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    def wheelEvent(self, event) -> None:  # noqa: N802
        if self.crop is not None:
            factor = 0.93 if event.angleDelta().y() > 0 else 1 / 0.93
            self.zoom(max(32, round(self.crop[2] * factor)))

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.fillRect(self.rect(), QColor("#101318"))
        if self._pixmap is None:
            p.setPen(QColor("#7d8794"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Select an image to adjust its crop")
            return
        scale, ox, oy = self._geometry()
        p.drawPixmap(QRectF(ox, oy, self._img_w * scale, self._img_h * scale), self._pixmap,
                     QRectF(self._pixmap.rect()))
        p.setPen(QPen(QColor(120, 200, 255, 160), 1, Qt.PenStyle.DashLine))
        for fx, fy, fw, fh in self._faces:
            p.drawRect(QRectF(ox + fx * scale, oy + fy * scale, fw * scale, fh * scale))
        if self.crop is not None:
            x, y, s = self.crop
            r = QRectF(ox + x * scale, oy + y * scale, s * scale, s * scale)
            shade = QColor(0, 0, 0, 120)  # darken outside the crop
            full = QRectF(ox, oy, self._img_w * scale, self._img_h * scale)
            p.fillRect(QRectF(full.left(), full.top(), full.width(), r.top() - full.top()), shade)
            p.fillRect(QRectF(full.left(), r.bottom(), full.width(), full.bottom() - r.bottom()), shade)
            p.fillRect(QRectF(full.left(), r.top(), r.left() - full.left(), r.height()), shade)
            p.fillRect(QRectF(r.right(), r.top(), full.right() - r.right(), r.height()), shade)
            p.setPen(QPen(QColor("#4c9eff"), 2))
            p.drawRect(r)


class MessageBar(QFrame):
    """Dismissable banner for notices and errors at the top of the window."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("messageBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str, level: str = "error") -> None:
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        self.show()
