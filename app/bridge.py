"""Engine bridge: runs the engine off the GUI thread and reports back through Qt signals.

Loading weights, opening a session (reference encoding) and rendering a speech file to a video happen on a
short-lived worker thread; streaming runs on the Runner's own threads (engine/runtime). Frames reach the GUI through a
latest-only slot: the sink emits `frame_ready` only when the GUI has taken the previous frame, so a
slow GUI never builds a queue. Every failure becomes an `error` signal with a one-line message.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any, Callable, Protocol

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.audio.pipeline import AudioPipeline
from app.audio.processing import LevelMeter, NoiseGate

log = logging.getLogger(__name__)


class AudioSource(Protocol):
    def start(self, on_audio: Callable[[np.ndarray, int], None]) -> None: ...
    def stop(self) -> None: ...


class PreviewSink:
    """FrameSink holding only the newest frame; `notify` fires when a new frame is waiting."""

    def __init__(self, notify: Callable[[Any], None]):
        self._lock = threading.Lock()
        self._frame = None
        self._notify = notify
        self.frames = 0

    def put(self, frame) -> None:
        with self._lock:
            pending = self._frame is not None
            self._frame = frame
            self.frames += 1
        if not pending:
            self._notify(frame)

    def take(self):
        with self._lock:
            frame, self._frame = self._frame, None
        return frame

    def close(self) -> None:
        pass


class _Picture:
    """A rendered frame for the preview (which reads `.rgb`, as of a live Frame)."""

    def __init__(self, rgb: np.ndarray):
        self.rgb = rgb


def user_message(exc: BaseException) -> str:
    """One line for the UI: our own errors already read well; others get their type name."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (ValueError, FileNotFoundError, RuntimeError, OSError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class EngineBridge(QObject):
    engine_ready = Signal(str)  # device name
    frame_ready = Signal(object)  # engine Frame; take the newest with take_frame()
    stats_updated = Signal(object)  # engine.runtime Stats
    error = Signal(str)
    state_changed = Signal(str)  # "idle", "loading", "starting", "running", "stopped", "rendering"
    render_progress = Signal(int, int)  # frames written, frames in all
    render_done = Signal(str)  # the video written; "" when the render was cancelled

    def __init__(self, parent: QObject | None = None, stats_interval_ms: int = 500):
        super().__init__(parent)
        self.engine = None
        self.engine_tag: Any = None
        self.runner = None
        self.source: AudioSource | None = None
        self.pipeline: AudioPipeline | None = None
        self.gate = NoiseGate()
        self.meter = LevelMeter()
        self.preview = PreviewSink(self.frame_ready.emit)
        self.extra_sinks: list = []
        self.state = "idle"
        self._worker: threading.Thread | None = None
        self._cancel_render = threading.Event()
        self._timer = QTimer(self)
        self._timer.setInterval(stats_interval_ms)
        self._timer.timeout.connect(self._poll)
        self._started.connect(self._on_started)

    _started = Signal(object, object, object)  # runner, source, pipeline (worker -> GUI thread)

    # --- engine -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A load, start or render is in progress. A worker that already reported is only finishing its
        last lines (signals are emitted before the thread ends), so it is joined, not waited on."""
        if self._worker is not None and self.state not in ("loading", "starting", "rendering"):
            self._worker.join(timeout=5.0)
        return self._worker is not None and self._worker.is_alive()

    def load(self, factory: Callable[[], Any], tag: Any = None) -> None:
        """Load an engine with `factory()` (e.g. engine.api.load_engine) on a worker thread.

        `tag` (e.g. the weights path) is stored with the engine as `engine_tag`, so a late
        `engine_ready` signal can be matched to the engine actually loaded."""
        if self.busy or self.runner is not None:
            self.error.emit("Stop the stream (or the video being saved) before changing the model.")
            return
        self._set_state("loading")
        self._run_worker(self._load, factory, tag)

    def _load(self, factory, tag) -> None:
        engine = factory()
        self.engine, self.engine_tag = engine, tag
        self.state = "idle"
        self.engine_ready.emit(str(getattr(engine, "device_name", "CPU")))
        self.state_changed.emit("idle")

    # --- streaming ----------------------------------------------------------------------------
    def start(self, references: list[np.ndarray], source: AudioSource, *, steps: int | None = None,
              cfg: float | None = None, identity_hold: float | None = None, sinks: list | None = None,
              seed: int = 0, use_driver: bool | None = None) -> None:
        if self.engine is None:
            self.error.emit("No model is loaded yet: choose a weights file in Engine settings.")
            return
        if self.busy or self.runner is not None:
            return
        self._set_state("starting")
        self.extra_sinks = list(sinks or [])
        self._run_worker(self._start, references, source, steps, cfg, identity_hold, seed, use_driver)

    def _start(self, references, source, steps, cfg, identity_hold, seed, use_driver) -> None:
        from engine.runtime.runner import Runner

        # the sampler is fixed before the session captures its graphs: no re-capture mid-stream
        session = self.engine.open_session(references, seed=seed, steps=steps, cfg=cfg, identity_hold=identity_hold,
                                           use_driver=use_driver, warm_up=False)  # the runner warms it in its thread
        self.preview = PreviewSink(self.frame_ready.emit)
        runner = Runner(session, [self.preview, *self.extra_sinks],
                        device_name=str(getattr(self.engine, "device_name", "CPU")))
        pipeline = AudioPipeline(runner.push_audio, self.gate, self.meter)
        runner.start()
        try:
            source.start(pipeline)
        except BaseException:
            runner.stop()
            raise
        self._started.emit(runner, source, pipeline)

    def _on_started(self, runner, source, pipeline) -> None:
        self.runner, self.source, self.pipeline = runner, source, pipeline
        self._timer.start()
        self._set_state("running")

    # --- offline render ----------------------------------------------------------------------
    def render(self, references: list[np.ndarray], audio_path: str, out_path: str, *, steps: int | None = None,
               cfg: float | None = None, identity_hold: float | None = None, seed: int = 0,
               use_driver: bool | None = None) -> None:
        """A speech file -> an MP4 with this avatar, on a worker thread, with the session the live stream would
        open (same settings); `render_progress`, then `render_done` (or `error`). Not while live."""
        if self.engine is None:
            self.error.emit("No model is loaded yet: choose a weights file in Engine settings.")
            return
        if self.busy or self.runner is not None:
            self.error.emit("Stop the live stream before saving a video.")
            return
        self._cancel_render.clear()
        self.preview = PreviewSink(self.frame_ready.emit)
        self._set_state("rendering")
        self._run_worker(self._render, references, audio_path, out_path,
                         dict(seed=seed, steps=steps, cfg=cfg, identity_hold=identity_hold, use_driver=use_driver))

    def cancel_render(self) -> None:
        """The render stops before its next block; the file it was writing is not kept."""
        self._cancel_render.set()

    def _render(self, references, audio_path: str, out_path: str, options: dict) -> None:
        from engine.api import FPS, SAMPLE_RATE, Cancelled, frame_count, iter_render
        from engine.io.media import read_audio, write_video

        audio = read_audio(audio_path, SAMPLE_RATE)  # [S] float32; a file without sound is a one-line error
        session = self.engine.open_session(references, **options)
        total, chunk = frame_count(audio), SAMPLE_RATE // FPS * int(getattr(session, "frames_per_block", 1))

        def frames():
            shown = 0.0
            for i, rgb in enumerate(iter_render(session, audio, chunk, self._cancel_render.is_set), 1):
                self.preview.put(_Picture(rgb))  # latest-only, as live
                if time.monotonic() - shown >= 0.1 or i == total:  # a GPU makes hundreds of frames a second
                    self.render_progress.emit(i, total)
                    shown = time.monotonic()
                yield rgb

        try:
            write_video(out_path, frames(), fps=FPS, audio=audio, sample_rate=SAMPLE_RATE)
            done = out_path
        except Cancelled:
            done = ""
        self.state = "idle"
        self.render_done.emit(done)
        self.state_changed.emit("idle")

    def take_frame(self):
        return self.preview.take()

    def set_sampler(self, steps: int | None, cfg: float | None, identity_hold: float | None = None) -> None:
        if self.runner is not None:
            self.runner.set_sampler(steps, cfg, identity_hold)

    def stop(self) -> None:
        """Stop audio first (no more pushes), then the runner; releases mic, camera and session. A render
        in progress is cancelled."""
        self._cancel_render.set()
        if self._worker is not None:
            self._worker.join(timeout=30.0)  # a start in flight: let it finish, then stop it
            self._worker = None
            from PySide6.QtCore import QCoreApplication

            QCoreApplication.sendPostedEvents(self)  # deliver a pending _started
        self._timer.stop()
        source, runner = self.source, self.runner
        self.source = self.runner = self.pipeline = None
        if source is not None:
            try:
                source.stop()
            except Exception as exc:  # a device error must not keep the engine running
                self.error.emit(f"Audio input did not stop cleanly: {user_message(exc)}")
        if runner is not None:
            runner.stop(timeout=60.0)  # joins its threads (a block in flight finishes first) and closes every sink
            self.extra_sinks = []
            self._set_state("stopped")

    def shutdown(self) -> None:
        """Window closing: stop streaming and drop the engine (frees GPU memory)."""
        self.stop()
        self.engine = None

    # --- internals ----------------------------------------------------------------------------
    def _poll(self) -> None:
        runner = self.runner
        if runner is None:
            return
        error = getattr(runner, "error", None)
        if error is not None:
            self.stop()
            self.error.emit(f"The engine stopped: {user_message(error)}")
            return
        self.stats_updated.emit(runner.stats())

    def _run_worker(self, fn, *args) -> None:
        def body():
            try:
                fn(*args)
            except BaseException as exc:  # never let a worker die silently: tell the UI
                log.error("engine worker failed:\n%s", traceback.format_exc())
                self.state = "idle"
                self.error.emit(user_message(exc))
                self.state_changed.emit("idle")

        self._worker = threading.Thread(target=body, daemon=True, name="avacast-engine-worker")
        self._worker.start()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)

