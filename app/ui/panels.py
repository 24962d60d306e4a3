"""Audio, output and engine settings panels. Each edits its part of `Settings` and emits `changed`."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QRadioButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from app.audio.devices import list_devices
from app.settings import Settings
from app.ui.widgets import LevelMeter

DEFAULT_DEVICE = "System default"


def _device_combo(kind: str, current: str | None) -> tuple[QComboBox, str | None]:
    combo = QComboBox()
    names, error = list_devices(kind)
    combo.addItem(DEFAULT_DEVICE, None)
    for name in names:
        combo.addItem(name, name)
    if current and combo.findData(current) < 0:  # remembered device is unplugged: keep it visible
        combo.addItem(f"{current} (not found)", current)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    return combo, error


def _hint(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


class AudioPanel(QWidget):
    changed = Signal()

    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.s = settings.audio
        root = QVBoxLayout(self)
        box = QGroupBox("Input")
        form = QFormLayout(box)
        self.use_mic, self.use_file = QRadioButton("Microphone"), QRadioButton("Audio file")
        group = QButtonGroup(self)
        group.addButton(self.use_mic)
        group.addButton(self.use_file)
        (self.use_file if self.s.use_file else self.use_mic).setChecked(True)
        self.use_file.toggled.connect(self._on_source)
        pick = QHBoxLayout()
        pick.addWidget(self.use_mic)
        pick.addWidget(self.use_file)
        pick.addStretch(1)
        form.addRow("Source", pick)
        self.device, error = _device_combo("input", self.s.input_device)
        self.device.currentIndexChanged.connect(self._on_device)
        form.addRow("Microphone", self.device)
        self.file_edit = QLineEdit(self.s.input_file or "")
        self.file_edit.setPlaceholderText("WAV, MP3, MP4… (loops)")
        self.file_edit.editingFinished.connect(self._on_file_edit)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(browse)
        form.addRow("File", file_row)
        self.device_error = _hint(error or "")
        self.device_error.setVisible(bool(error))
        form.addRow(self.device_error)
        root.addWidget(box)

        gate = QGroupBox("Level and noise gate")
        gform = QFormLayout(gate)
        self.meter = LevelMeter()
        self.meter.threshold_db = self.s.gate_threshold_db
        gform.addRow("Level", self.meter)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(-80, 0)
        self.threshold.setValue(int(round(self.s.gate_threshold_db)))
        self.threshold_label = QLabel()
        self.threshold.valueChanged.connect(self._on_gate)
        trow = QHBoxLayout()
        trow.addWidget(self.threshold, 1)
        trow.addWidget(self.threshold_label)
        gform.addRow("Threshold", trow)
        self.hold = QSpinBox()
        self.hold.setRange(0, 5000)
        self.hold.setSingleStep(50)
        self.hold.setSuffix(" ms")
        self.hold.setValue(self.s.gate_hold_ms)
        self.hold.valueChanged.connect(self._on_gate)
        gform.addRow("Hold", self.hold)
        gform.addRow(_hint("Sound below the orange mark is replaced by silence, so breathing and "
                           "room noise keep the mouth still."))
        root.addWidget(gate)
        root.addStretch(1)
        self._on_gate()
        self._sync_enabled()

    def _sync_enabled(self) -> None:
        self.device.setEnabled(not self.s.use_file)
        self.file_edit.setEnabled(self.s.use_file)

    def _on_source(self) -> None:
        self.s.use_file = self.use_file.isChecked()
        self._sync_enabled()
        self.changed.emit()

    def _on_device(self) -> None:
        self.s.input_device = self.device.currentData()
        self.changed.emit()

    def _on_file_edit(self) -> None:
        self.s.input_file = self.file_edit.text().strip() or None
        self.changed.emit()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Audio file", "",
                                              "Audio (*.wav *.mp3 *.flac *.ogg *.m4a *.mp4 *.mkv)")
        if path:
            self.file_edit.setText(path)
            self.use_file.setChecked(True)
            self._on_file_edit()

    def _on_gate(self) -> None:
        self.s.gate_threshold_db = float(self.threshold.value())
        self.s.gate_hold_ms = int(self.hold.value())
        self.threshold_label.setText(f"{self.threshold.value():+d} dB")
        self.meter.threshold_db = self.s.gate_threshold_db
        self.meter.update()
        self.changed.emit()


class OutputPanel(QWidget):
    changed = Signal()
    vcam_toggled = Signal(bool)

    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.s = settings.output
        root = QVBoxLayout(self)
        cam = QGroupBox("Virtual camera")
        form = QFormLayout(cam)
        self.vcam = QCheckBox("Send to virtual camera (Zoom, Meet, Teams…)")
        self.vcam.setChecked(self.s.vcam_enabled)
        self.vcam.toggled.connect(self._on_vcam)
        form.addRow(self.vcam)
        self.resolution = QComboBox()
        self.resolution.addItem("512 × 512", "512")
        self.resolution.addItem("1280 × 720 (letterboxed)", "720p")
        self.resolution.setCurrentIndex(max(0, self.resolution.findData(self.s.vcam_resolution)))
        self.resolution.currentIndexChanged.connect(self._on_change)
        form.addRow("Resolution", self.resolution)
        self.mirror = QCheckBox("Mirror")
        self.mirror.setChecked(self.s.mirror)
        self.mirror.toggled.connect(self._on_change)
        form.addRow("", self.mirror)
        self.vcam_status = _hint()
        self.vcam_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.vcam_status)
        root.addWidget(cam)

        sync = QGroupBox("Lip sync in calls")
        sform = QFormLayout(sync)
        self.passthrough = QCheckBox("Delayed voice pass-through")
        self.passthrough.setChecked(self.s.passthrough_enabled)
        self.passthrough.toggled.connect(self._on_change)
        sform.addRow(self.passthrough)
        self.out_device, error = _device_combo("output", self.s.passthrough_device)
        self.out_device.currentIndexChanged.connect(self._on_change)
        sform.addRow("Output", self.out_device)
        self.delay_label = QLabel("Delay: measured while live")
        sform.addRow("", self.delay_label)
        sform.addRow(_hint(error or "Your voice is played to this device late by the measured "
                           "video latency; pick the virtual audio cable your call app uses as "
                           "its microphone so voice and lips line up."))
        root.addWidget(sync)
        root.addStretch(1)

    def _on_vcam(self, on: bool) -> None:
        self._on_change()
        self.vcam_toggled.emit(on)

    def _on_change(self) -> None:
        self.s.vcam_enabled = self.vcam.isChecked()
        self.s.vcam_resolution = self.resolution.currentData()
        self.s.mirror = self.mirror.isChecked()
        self.s.passthrough_enabled = self.passthrough.isChecked()
        self.s.passthrough_device = self.out_device.currentData()
        self.changed.emit()

    def set_vcam_status(self, text: str, level: str = "hint") -> None:
        self.vcam_status.setObjectName("warning" if level == "warning" else "hint")
        self.vcam_status.style().unpolish(self.vcam_status)
        self.vcam_status.style().polish(self.vcam_status)
        self.vcam_status.setText(text)


DRIVER_CHOICES = {"Model default": None, "Driver face": True, "Your portrait": False}  # -> use_driver


class EnginePanel(QWidget):
    changed = Signal()
    sampler_changed = Signal()
    weights_chosen = Signal(object)  # str path, or None for the built-in model

    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.s = settings.engine
        root = QVBoxLayout(self)
        box = QGroupBox("Quality")
        form = QFormLayout(box)
        self.steps = QSpinBox()
        self.steps.setRange(0, 50)
        self.steps.setSpecialValueText("Model default")
        self.steps.setValue(self.s.steps or 0)
        self.steps.valueChanged.connect(self._on_sampler)
        form.addRow("Denoising steps", self.steps)
        form.addRow(_hint("Fewer steps: faster and lower latency; more: sharper motion."))
        self.cfg = QDoubleSpinBox()
        self.cfg.setRange(-0.1, 10.0)
        self.cfg.setSingleStep(0.25)
        self.cfg.setSpecialValueText("Model default")
        self.cfg.setValue(self.s.cfg if self.s.cfg is not None else -0.1)
        self.cfg.valueChanged.connect(self._on_sampler)
        form.addRow("Guidance (CFG)", self.cfg)
        self.hold = QSpinBox()
        self.hold.setRange(-1, 100)
        self.hold.setSuffix(" %")
        self.hold.setSpecialValueText("Model default")
        self.hold.setValue(-1 if self.s.identity_hold is None else round(self.s.identity_hold * 100))
        self.hold.valueChanged.connect(self._on_sampler)
        form.addRow("Likeness hold", self.hold)
        form.addRow(_hint("How strongly the face is kept to your portrait over time. Higher: the likeness stays "
                          "over long talks; lower: freer expressions. 0 turns it off."))
        self.driver = QComboBox()
        self.driver.addItems(list(DRIVER_CHOICES))
        self.driver.setCurrentIndex(list(DRIVER_CHOICES.values()).index(self.s.use_driver))
        self.driver.currentIndexChanged.connect(self._on_driver)
        form.addRow("Motion", self.driver)
        form.addRow(_hint("Driver face: the model animates a face it knows well and moves your portrait with that "
                          "motion: a cleaner, steadier face on photos. Your portrait: it is animated itself, with "
                          "more head motion. Applies at the next Start."))
        root.addWidget(box)

        model = QGroupBox("Model")
        mform = QFormLayout(model)
        self.weights = QLineEdit(self.s.weights or "")
        self.weights.setReadOnly(True)
        self.weights.setPlaceholderText("Built-in model")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        builtin = QPushButton("Built-in")
        builtin.clicked.connect(lambda: self.choose_weights(None))
        row = QHBoxLayout()
        row.addWidget(self.weights, 1)
        row.addWidget(browse)
        row.addWidget(builtin)
        mform.addRow("Weights", row)
        self.model_status = _hint("Not loaded")
        mform.addRow("Status", self.model_status)
        root.addWidget(model)
        root.addStretch(1)

    def sampler(self) -> tuple[int | None, float | None, float | None]:
        """(steps, cfg, identity_hold); None: the model's own setting."""
        return self.s.steps, self.s.cfg, self.s.identity_hold

    def _on_driver(self) -> None:
        self.s.use_driver = list(DRIVER_CHOICES.values())[self.driver.currentIndex()]
        self.changed.emit()

    def _on_sampler(self) -> None:
        self.s.steps = self.steps.value() or None
        self.s.cfg = None if self.cfg.value() < 0 else round(self.cfg.value(), 3)
        self.s.identity_hold = None if self.hold.value() < 0 else self.hold.value() / 100
        self.changed.emit()
        self.sampler_changed.emit()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model weights", "", "Weights (*.safetensors)")
        if path:
            self.choose_weights(path)

    def choose_weights(self, path: str | None) -> None:
        self.weights.setText(path or "")
        self.weights_chosen.emit(path)

    def set_status(self, text: str) -> None:
        self.model_status.setText(text)
