"""Avatar panel: saved avatars, their 1-8 reference images, face crops and warnings."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel,
                               QListWidget, QListWidgetItem, QMessageBox, QPushButton, QSlider,
                               QToolButton, QVBoxLayout, QWidget)

from app import faces
from app.avatars import IMAGE_SUFFIXES, AvatarError, AvatarStore, read_rgb
from app.settings import MAX_IMAGES, Avatar, Settings
from app.ui.widgets import CropView, rgb_to_qimage

log = logging.getLogger(__name__)
FILE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ")"


class AvatarPanel(QWidget):
    changed = Signal()  # settings changed: save them
    message = Signal(str, str)  # text, level

    def __init__(self, settings: Settings, store: AvatarStore, parent=None):
        super().__init__(parent)
        self.settings, self.store = settings, store
        self._rgb_cache: dict[str, object] = {}
        self.setAcceptDrops(True)
        self._build()
        self.reload()

    # --- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        top = QHBoxLayout()
        self.avatar_combo = QComboBox()
        self.avatar_combo.currentIndexChanged.connect(self._on_avatar_selected)
        top.addWidget(self.avatar_combo, 1)
        for text, tip, slot in (("New", "Create a new avatar", self.new_avatar),
                                ("Rename", "Rename this avatar", self._rename),
                                ("Delete", "Delete this avatar and its copied images", self._delete)):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            top.addWidget(button)
        root.addLayout(top)

        self.images = QListWidget()
        self.images.setViewMode(QListWidget.ViewMode.IconMode)
        self.images.setIconSize(QSize(72, 72))
        self.images.setFlow(QListWidget.Flow.LeftToRight)
        self.images.setWrapping(False)
        self.images.setFixedHeight(104)
        self.images.setMovement(QListWidget.Movement.Static)
        self.images.currentRowChanged.connect(self._on_image_selected)
        root.addWidget(self.images)

        row = QHBoxLayout()
        self.add_button = QPushButton("Add images…")
        self.add_button.clicked.connect(self._add_dialog)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.left_button, self.right_button = QToolButton(), QToolButton()
        self.left_button.setArrowType(Qt.ArrowType.LeftArrow)
        self.right_button.setArrowType(Qt.ArrowType.RightArrow)
        self.left_button.setToolTip("Move earlier (the first image matters most)")
        self.right_button.setToolTip("Move later")
        self.left_button.clicked.connect(lambda: self.move_selected(-1))
        self.right_button.clicked.connect(lambda: self.move_selected(+1))
        self.count_label = QLabel()
        self.count_label.setObjectName("hint")
        for w in (self.add_button, self.remove_button, self.left_button, self.right_button):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.count_label)
        root.addLayout(row)

        self.crop_view = CropView()
        self.crop_view.crop_changed.connect(self._on_crop_changed)
        root.addWidget(self.crop_view, 1)
        zoom_row = QHBoxLayout()
        zoom_row.addWidget(QLabel("Crop size"))
        self.zoom = QSlider(Qt.Orientation.Horizontal)
        self.zoom.setRange(32, 4096)
        self.zoom.valueChanged.connect(self._on_zoom)
        zoom_row.addWidget(self.zoom, 1)
        self.redetect = QPushButton("Auto crop")
        self.redetect.setToolTip("Detect the face again and propose a head-and-shoulders crop")
        self.redetect.clicked.connect(self._auto_crop)
        zoom_row.addWidget(self.redetect)
        root.addLayout(zoom_row)
        self.warnings = QLabel()
        self.warnings.setObjectName("warning")
        self.warnings.setWordWrap(True)
        root.addWidget(self.warnings)
        hint = QLabel("Drop photos here. Drag the square to move the crop, scroll to resize. A front-facing photo "
                      "with the mouth closed gives the best lip sync.")
        hint.setWordWrap(True)
        hint.setObjectName("hint")
        root.addWidget(hint)

    # --- state ----------------------------------------------------------------------------------
    @property
    def avatar(self) -> Avatar | None:
        return self.settings.avatar(self.settings.active_avatar)

    def reload(self) -> None:
        self.avatar_combo.blockSignals(True)
        self.avatar_combo.clear()
        for a in self.settings.avatars:
            self.avatar_combo.addItem(a.name, a.id)
        index = self.avatar_combo.findData(self.settings.active_avatar)
        self.avatar_combo.setCurrentIndex(max(index, 0))
        self.avatar_combo.blockSignals(False)
        if self.avatar is None and self.settings.avatars:
            self.settings.active_avatar = self.settings.avatars[0].id
        self._fill_images()

    def _fill_images(self, select: int = 0) -> None:
        self.images.blockSignals(True)
        self.images.clear()
        avatar = self.avatar
        for entry in avatar.images if avatar else []:
            item = QListWidgetItem()
            try:
                rgb = faces.apply_crop(self._rgb(avatar, entry), entry.crop)
                item.setIcon(QIcon(QPixmap.fromImage(rgb_to_qimage(rgb))))
            except AvatarError as exc:
                item.setText("missing")
                item.setToolTip(str(exc))
            self.images.addItem(item)
        self.images.blockSignals(False)
        n = len(avatar.images) if avatar else 0
        self.count_label.setText(f"{n} / {MAX_IMAGES} images")
        self.add_button.setEnabled(n < MAX_IMAGES)
        for w in (self.remove_button, self.left_button, self.right_button, self.zoom, self.redetect):
            w.setEnabled(n > 0)
        if n:
            self.images.setCurrentRow(min(select, n - 1))
            self._on_image_selected(self.images.currentRow())
        else:
            self.crop_view.set_image(None)
            self.warnings.setText("Add 1-8 photos of one person: a clear, front-facing face works best."
                                  if avatar else "Create an avatar with New, then add photos.")

    def _rgb(self, avatar: Avatar, entry):
        key = f"{avatar.id}/{entry.file}"
        if key not in self._rgb_cache:
            self._rgb_cache[key] = read_rgb(self.store.image_path(avatar, entry))
        return self._rgb_cache[key]

    # --- avatars --------------------------------------------------------------------------------
    def new_avatar(self, name: str | None = None) -> Avatar:
        if name is None:
            name, ok = QInputDialog.getText(self, "New avatar", "Name:",
                                            text=f"Avatar {len(self.settings.avatars) + 1}")
            if not ok:
                return None
        avatar = self.store.create(name)
        self.settings.avatars.append(avatar)
        self.settings.active_avatar = avatar.id
        self.reload()
        self.changed.emit()
        return avatar

    def _rename(self) -> None:
        if self.avatar is None:
            return
        name, ok = QInputDialog.getText(self, "Rename avatar", "Name:", text=self.avatar.name)
        if ok and name.strip():
            self.avatar.name = name.strip()
            self.reload()
            self.changed.emit()

    def _delete(self) -> None:
        avatar = self.avatar
        if avatar is None:
            return
        answer = QMessageBox.question(self, "Delete avatar",
                                      f"Delete “{avatar.name}” and its copied images?")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_avatar(avatar)

    def delete_avatar(self, avatar: Avatar) -> None:
        self.settings.avatars.remove(avatar)
        self.store.delete(avatar)
        self.settings.active_avatar = self.settings.avatars[0].id if self.settings.avatars else None
        self.reload()
        self.changed.emit()

    def _on_avatar_selected(self, index: int) -> None:
        self.settings.active_avatar = self.avatar_combo.itemData(index)
        self._fill_images()
        self.changed.emit()

    # --- images ---------------------------------------------------------------------------------
    def _add_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add reference photos", "", FILE_FILTER)
        self.add_files(files)

    def add_files(self, files: list[str]) -> int:
        """Copy images into the active avatar (creating one if needed); returns how many were added."""
        avatar = self.avatar or self.new_avatar("Avatar 1")
        added, problems = 0, []
        for path in files:
            try:
                _, report = self.store.add_image(avatar, path)
                added += 1
                problems += [f"{Path(path).name}: {w}" for w in report.warnings]
            except (AvatarError, OSError) as exc:
                problems.append(str(exc))
        if added:
            self._fill_images(select=len(avatar.images) - 1)
            self.changed.emit()
        if problems:
            self.message.emit("\n".join(problems), "warning")
        return added

    def remove_selected(self) -> None:
        row = self.images.currentRow()
        if self.avatar is None or row < 0:
            return
        self.store.remove_image(self.avatar, row)
        self._fill_images(select=row)
        self.changed.emit()

    def move_selected(self, step: int) -> None:
        row = self.images.currentRow()
        if self.avatar is None or row < 0:
            return
        self.store.move_image(self.avatar, row, row + step)
        self._fill_images(select=max(0, min(row + step, len(self.avatar.images) - 1)))
        self.changed.emit()

    def _on_image_selected(self, row: int) -> None:
        avatar = self.avatar
        if avatar is None or not 0 <= row < len(avatar.images):
            return
        entry = avatar.images[row]
        try:
            rgb = self._rgb(avatar, entry)
        except AvatarError as exc:
            self.crop_view.set_image(None)
            self.warnings.setText(str(exc))
            return
        found = faces.detect_faces(rgb)
        self.crop_view.set_image(rgb, entry.crop, found)
        self.zoom.blockSignals(True)
        self.zoom.setRange(32, min(rgb.shape[:2]))
        self.zoom.setValue(entry.crop[2] if entry.crop else min(rgb.shape[:2]))
        self.zoom.blockSignals(False)
        self._faces = found
        self._show_warnings(entry.crop or (0, 0, min(rgb.shape[:2])))

    def _show_warnings(self, crop) -> None:
        text = faces.crop_warnings(getattr(self, "_faces", []), crop)
        self.warnings.setText("\n".join(f"⚠ {w}" for w in text))

    def _on_crop_changed(self, crop) -> None:
        row = self.images.currentRow()
        if self.avatar is None or row < 0:
            return
        self.avatar.images[row].crop = tuple(int(v) for v in crop)
        self.zoom.blockSignals(True)
        self.zoom.setValue(crop[2])
        self.zoom.blockSignals(False)
        self._show_warnings(crop)
        self._refresh_icon(row)
        self.changed.emit()

    def _refresh_icon(self, row: int) -> None:
        entry = self.avatar.images[row]
        rgb = faces.apply_crop(self._rgb(self.avatar, entry), entry.crop)
        self.images.item(row).setIcon(QIcon(QPixmap.fromImage(rgb_to_qimage(rgb))))

    def _on_zoom(self, size: int) -> None:
        self.crop_view.zoom(size)

    def _auto_crop(self) -> None:
        row = self.images.currentRow()
        if self.avatar is None or row < 0:
            return
        report = faces.analyse(self._rgb(self.avatar, self.avatar.images[row]))
        self.crop_view.set_crop(report.crop)

    # --- drag and drop --------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if any(u.toLocalFile().lower().endswith(IMAGE_SUFFIXES) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        self.add_files([f for f in files if f.lower().endswith(IMAGE_SUFFIXES)])
        event.acceptProposedAction()
