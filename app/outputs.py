"""Input source, virtual camera and pass-through for one live session (built on app.io).

Keeps the window free of device details: it asks for a source and sinks at Start, forwards stats
(for the pass-through delay) and closes everything at Stop. Device failures are one-line messages.
"""
from __future__ import annotations

import logging
from typing import Callable

from app.audio.sources import ArraySource
from app.bridge import user_message
from app.settings import Settings

log = logging.getLogger(__name__)
VCAM_SIZES = {"512": (512, 512), "720p": (1280, 720)}


class Outputs:
    def __init__(self, settings: Settings, source_factory: Callable | None = None):
        self.settings = settings
        self.source_factory = source_factory  # tests/self-test: replaces mic and file
        self.source = None
        self.vcam = None
        self.vcam_error: str | None = None
        self.passthrough = None
        self.passthrough_error: str | None = None

    # --- input ----------------------------------------------------------------------------------
    def make_source(self):
        a = self.settings.audio
        if self.source_factory is not None:
            self.source = self.source_factory()
        elif a.use_file:
            if not a.input_file:
                raise ValueError("Choose an audio file in the Audio tab, or switch to Microphone.")
            self.source = ArraySource.from_file(a.input_file, loop=True)
        else:
            from app.io.mic import MicSource

            self.source = MicSource(device=a.input_device)
            self._start_passthrough(self.source)
        return self.source

    def _start_passthrough(self, mic) -> None:
        o = self.settings.output
        self.passthrough_error = None
        if not o.passthrough_enabled:
            return
        from app.audio.devices import Passthrough

        try:
            self.passthrough = Passthrough(o.passthrough_device, mic.sample_rate, delay_s=0.2)
            self.passthrough.start()
        except Exception as exc:  # PortAudioError and friends: voice still reaches the engine
            self.passthrough = None
            self.passthrough_error = f"Pass-through unavailable: {user_message(exc)}"

    def attach(self, pipeline) -> None:
        """The stream is running: feed the raw mic into the pass-through delay line."""
        if self.passthrough is not None and pipeline is not None:
            pipeline.delay_line = self.passthrough.delay_line

    def on_stats(self, stats) -> None:
        """Keep the pass-through delay equal to the measured picture latency (DESIGN.md §3)."""
        if self.passthrough is not None and stats.latency_p50_ms > 0:
            self.passthrough.set_delay(stats.latency_p50_ms / 1000.0)

    # --- virtual camera -------------------------------------------------------------------------
    def open_sinks(self) -> list:
        o = self.settings.output
        self.vcam_error = None
        if not o.vcam_enabled:
            return []
        from app.io.vcam import VirtualCameraSink, VirtualCameraUnavailable, install_hint

        width, height = VCAM_SIZES[o.vcam_resolution]
        try:
            self.vcam = VirtualCameraSink(width=width, height=height, mirror=o.mirror)
        except VirtualCameraUnavailable as exc:
            log.warning("virtual camera unavailable: %s", exc)
            self.vcam_error = ("No virtual camera driver found. To add one, " + install_hint() +
                               "; then start again. The preview works meanwhile.")
            return []  # the preview still runs; the panel says what to install
        return [self.vcam]

    def vcam_status(self) -> tuple[str, str]:
        if self.vcam_error:
            return self.vcam_error, "warning"
        if self.vcam is not None:
            return f"Sending to “{getattr(self.vcam, 'device', 'virtual camera')}”.", "hint"
        if self.settings.output.vcam_enabled:
            return "The camera starts with the stream.", "hint"
        return "Off.", "hint"

    def close(self) -> None:
        """Idempotent: the runner already closed the camera sink; the pass-through is ours."""
        if self.passthrough is not None:
            try:
                self.passthrough.close()
            except Exception:
                log.exception("closing the pass-through failed")
            self.passthrough = None
        self.vcam = None
        self.source = None
