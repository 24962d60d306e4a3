"""The main window: preview and Start/Stop on the left, settings tabs on the right."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QMainWindow, QPushButton, QTabWidget,
                               QVBoxLayout, QWidget)

from app import settings as settings_mod
from app.avatars import AvatarStore
from app.bridge import EngineBridge, user_message
from app.outputs import Outputs
from app.ui.avatar_panel import AvatarPanel
from app.ui.panels import AudioPanel, EnginePanel, OutputPanel
from app.ui.style import STYLESHEET
from app.ui.widgets import MessageBar, PreviewView

log = logging.getLogger(__name__)
PREVIEW_FPS = 25
SPEECH_FILTER = "Speech (*.wav *.mp3 *.flac *.ogg *.m4a *.aac *.opus *.mp4 *.mov *.mkv *.webm);;All files (*)"


def default_engine_factory(weights: str | None):
    def factory():
        from engine import device
        from engine.api import load_engine

        # bf16 on CPUs that run it natively: twice the frames per second, the same picture within rounding
        return load_engine(weights=weights, dtype=device.fast_dtype(device.pick_device("auto")))
    return factory


class MainWindow(QMainWindow):
    def __init__(self, *, engine_factory: Callable[[str | None], Callable] = default_engine_factory,
                 source_factory: Callable | None = None, load_now: bool = True):
        super().__init__()
        self.setWindowTitle("Avacast")
        self.setStyleSheet(STYLESHEET)
        self.settings, notice = settings_mod.load_settings()
        self.store = AvatarStore()
        self.store.ensure_default(self.settings)
        self.engine_factory = engine_factory
        self.bridge = EngineBridge(self)
        self.outputs = Outputs(self.settings, source_factory)
        self._build()
        self._connect()
        if notice:
            self.messages.show_message(notice, "warning")
        self._apply_gate()
        self._meter_timer = QTimer(self)
        self._meter_timer.timeout.connect(self._tick_meter)
        self._meter_timer.start(33)
        if load_now:
            self.load_engine(self.settings.engine.weights)

    # --- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        root = QVBoxLayout(central)
        root.setContentsMargins(16, 12, 16, 12)
        self.messages = MessageBar()
        root.addWidget(self.messages)
        body = QHBoxLayout()
        root.addLayout(body, 1)

        left = QVBoxLayout()
        header = QHBoxLayout()
        title = QLabel("Avacast")
        title.setObjectName("title")
        header.addWidget(title)
        header.addStretch(1)
        self.device_label = QLabel("Loading model…")
        self.device_label.setObjectName("hint")
        header.addWidget(self.device_label)
        left.addLayout(header)
        self.preview = PreviewView()
        self.preview.setMinimumSize(480, 480)
        left.addWidget(self.preview, 1)
        controls = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("primary")
        self.start_button.setEnabled(False)
        controls.addWidget(self.start_button)
        self.render_button = QPushButton("Save video…")
        self.render_button.setToolTip("Make an MP4 of this avatar speaking a recorded speech file (no GPU needed, "
                                      "but much faster with one)")
        self.render_button.setEnabled(False)
        controls.addWidget(self.render_button)
        controls.addSpacing(12)
        self.status = QLabel("Idle")
        self.status.setObjectName("status")
        controls.addWidget(self.status, 1)
        left.addLayout(controls)
        body.addLayout(left, 3)

        self.tabs = QTabWidget()
        self.tabs.setMinimumWidth(430)
        self.avatar_panel = AvatarPanel(self.settings, self.store)
        self.audio_panel = AudioPanel(self.settings)
        self.output_panel = OutputPanel(self.settings)
        self.engine_panel = EnginePanel(self.settings)
        self.tabs.addTab(self.avatar_panel, "Avatar")
        self.tabs.addTab(self.audio_panel, "Audio")
        self.tabs.addTab(self.output_panel, "Output")
        self.tabs.addTab(self.engine_panel, "Engine")
        body.addSpacing(12)
        body.addWidget(self.tabs, 2)
        self.setCentralWidget(central)
        self.resize(1180, 720)

    def _connect(self) -> None:
        b = self.bridge
        b.frame_ready.connect(self._on_frame)
        b.stats_updated.connect(self._on_stats)
        b.error.connect(self._on_error)
        b.state_changed.connect(self._on_state)
        b.engine_ready.connect(self._on_engine_ready)
        self.start_button.clicked.connect(self.toggle)
        self.render_button.clicked.connect(self.save_video)
        b.render_progress.connect(self._on_render_progress)
        b.render_done.connect(self._on_render_done)
        for panel in (self.avatar_panel, self.audio_panel, self.output_panel, self.engine_panel):
            panel.changed.connect(self.save)
        self.avatar_panel.message.connect(self.messages.show_message)
        self.audio_panel.changed.connect(self._apply_gate)
        self.engine_panel.sampler_changed.connect(
            lambda: self.bridge.set_sampler(*self.engine_panel.sampler()))
        self.engine_panel.weights_chosen.connect(self.load_engine)
        self.output_panel.vcam_toggled.connect(self._on_vcam_toggled)

    # --- actions --------------------------------------------------------------------------------
    def save(self) -> None:
        try:
            settings_mod.save_settings(self.settings)
        except (OSError, ValueError) as exc:
            self.messages.show_message(f"Settings not saved: {user_message(exc)}")

    def load_engine(self, weights: str | None) -> None:
        if self.bridge.runner is not None:
            self.bridge.stop()
        self.engine_panel.set_status("Loading…")
        self.start_button.setEnabled(False)
        self.render_button.setEnabled(False)
        self.bridge.load(self.engine_factory(weights), tag=weights)

    def toggle(self) -> None:
        if self.bridge.runner is not None or self.bridge.state == "starting":
            self.stop()
        else:
            self.start()

    def _references(self, purpose: str) -> list:
        avatar = self.avatar_panel.avatar
        refs = self.store.references(avatar) if avatar else []
        if not refs:
            self.messages.show_message(f"Add at least one photo to the avatar before {purpose}.", "warning")
        return refs

    def start(self) -> bool:
        refs = self._references("going live")
        if not refs:
            return False
        try:
            source = self.outputs.make_source()
            sinks = self.outputs.open_sinks()
        except (ValueError, OSError, RuntimeError) as exc:
            self.outputs.close()
            self.messages.show_message(user_message(exc))
            return False
        self._show_vcam_state()
        notes = [n for n in (self.outputs.vcam_error, self.outputs.passthrough_error) if n]
        if notes:
            self.messages.show_message("\n".join(notes), "warning")
        else:
            self.messages.hide()
        steps, cfg, hold = self.engine_panel.sampler()
        self.bridge.start(refs, source, steps=steps, cfg=cfg, identity_hold=hold, sinks=sinks,
                          use_driver=self.engine_panel.s.use_driver)
        return True

    def save_video(self) -> bool:
        """Save video…: pick a speech file and where the MP4 goes, then render it with the avatar and the Engine
        settings; while it runs the button cancels it."""
        if self.bridge.state == "rendering":
            self.bridge.cancel_render()
            return False
        refs = self._references("saving a video")
        if not refs:
            return False
        audio = self._ask_speech_file()
        out = self._ask_video_path(audio) if audio else None
        if not out:
            return False
        self.messages.hide()
        steps, cfg, hold = self.engine_panel.sampler()
        self.bridge.render(refs, audio, out, steps=steps, cfg=cfg, identity_hold=hold,
                           use_driver=self.engine_panel.s.use_driver)
        return True

    def _ask_speech_file(self) -> str | None:
        start = self.settings.audio.input_file or ""
        path, _ = QFileDialog.getOpenFileName(self, "Speech to animate", start, SPEECH_FILTER)
        return path or None

    def _ask_video_path(self, audio: str) -> str | None:
        suggested = Path(audio).with_name(Path(audio).stem + "-avacast.mp4")
        path, _ = QFileDialog.getSaveFileName(self, "Save video as", str(suggested), "MP4 video (*.mp4)")
        if not path:
            return None
        return path if path.lower().endswith(".mp4") else path + ".mp4"

    def _on_render_progress(self, done: int, total: int) -> None:
        self.status.setText(f"Saving video… {100 * done // max(total, 1)} %   ({done / 25:.1f} of {total / 25:.1f} s)")

    def _on_render_done(self, path: str) -> None:
        if path:
            self.messages.show_message(f"Video saved: {path}", "info")
        else:
            self.messages.show_message("Video not saved: cancelled.", "info")

    def stop(self) -> None:
        self.bridge.stop()
        self.outputs.close()
        self._show_vcam_state()

    # --- bridge signals -------------------------------------------------------------------------
    def _on_frame(self, frame) -> None:
        latest = self.bridge.take_frame() or frame  # latest-only: skip frames the GUI missed
        self.preview.set_frame(latest.rgb)

    def _on_stats(self, st) -> None:
        self.outputs.on_stats(st)
        device = getattr(st, "device", "") or ""
        self.status.setText(f"{st.fps:5.1f} fps   latency {st.latency_p50_ms:4.0f} / "
                            f"{st.latency_p95_ms:4.0f} ms (p50/p95)   dropped {st.dropped}")
        if self.outputs.passthrough is not None:
            self.output_panel.delay_label.setText(
                f"Delay: {self.outputs.passthrough.delay_line.delay_s * 1000:.0f} ms (measured)")
        if device:
            self._show_device(device)

    def _on_error(self, text: str) -> None:
        self.messages.show_message(text)  # stays up: errors must be read, not flashed
        if self.bridge.engine is None:
            self.engine_panel.set_status(f"Not loaded: {text}")
            self.device_label.setText("No model loaded")
        self._on_state(self.bridge.state)

    def _on_state(self, _signalled: str) -> None:
        # Read the bridge's current state: a queued signal from a finished load can arrive after
        # Start was pressed, and must not tear down the outputs of the stream being started.
        state = self.bridge.state
        live = state in ("starting", "running")
        rendering = state == "rendering"
        self.render_button.setText("Cancel" if rendering else "Save video…")
        self.render_button.setEnabled(self.bridge.engine is not None and (rendering or state in ("idle", "stopped")))
        self.start_button.setText("Stop" if live else "Start")
        self.start_button.setProperty("live", live)
        self.start_button.style().unpolish(self.start_button)
        self.start_button.style().polish(self.start_button)
        self.start_button.setEnabled(self.bridge.engine is not None and state not in ("loading", "rendering"))
        if state == "starting":
            on_gpu = "cpu" not in str(getattr(self.bridge.engine, "device", "cpu")).lower()
            # a GPU session compiles and captures its graphs at open: 1-2 min the first time on a machine
            self.status.setText("Preparing the GPU… (the first start on this computer takes 1–2 minutes)"
                                if on_gpu else "Starting…")
        elif state == "running":
            self.outputs.attach(self.bridge.pipeline)
        elif rendering:
            self.status.setText("Saving video…")
        elif self.bridge.runner is None:  # idle/stopped, e.g. after a failed start
            self.outputs.close()
            self._show_vcam_state()
            self.status.setText("Idle")

    def _on_engine_ready(self, device: str) -> None:
        self.settings.engine.weights = self.bridge.engine_tag  # the model that really loaded
        self.save()
        name = getattr(getattr(self.bridge.engine, "cfg", None), "name", "model")
        from engine.device import dtype_name

        dtype = getattr(self.bridge.engine, "dtype", None)
        self.engine_panel.set_status(f"Loaded “{name}” on {device}" + (f" ({dtype_name(dtype)})" if dtype else ""))
        self._show_device(device)
        self.start_button.setEnabled(True)
        self.render_button.setEnabled(True)

    def _show_device(self, device: str) -> None:
        if device.upper().startswith("CPU"):
            self.device_label.setObjectName("statusWarn")
            self.device_label.setText("CPU - slow (no NVIDIA GPU found)")
        else:
            self.device_label.setObjectName("hint")
            self.device_label.setText(device)
        self.device_label.style().unpolish(self.device_label)
        self.device_label.style().polish(self.device_label)

    def _on_vcam_toggled(self, on: bool) -> None:
        if self.bridge.runner is not None:
            self.messages.show_message("The virtual camera change applies at the next Start.", "info")
        self._show_vcam_state()

    def _show_vcam_state(self) -> None:
        text, level = self.outputs.vcam_status()
        self.output_panel.set_vcam_status(text, level)

    def _apply_gate(self) -> None:
        a = self.settings.audio
        self.bridge.gate.configure(a.gate_threshold_db, a.gate_hold_ms)

    def _tick_meter(self) -> None:
        _, level = self.bridge.meter.read()
        self.audio_panel.meter.set_level(level, self.bridge.gate.is_open)

    def closeEvent(self, event) -> None:  # noqa: N802
        """Release mic, camera and engine before the window goes."""
        self._meter_timer.stop()
        self.bridge.shutdown()
        self.outputs.close()
        self.save()
        super().closeEvent(event)
