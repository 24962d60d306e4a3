"""Frame sinks for the runner: the `FrameSink` protocol, NullSink, CallbackSink and an MP4 FileSink.

A sink receives frames from its own output thread (never from the engine thread), so a slow encoder
only delays itself. Held frames (underrun) arrive as the same frame again.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from engine.config import FPS, SAMPLE_RATE

log = logging.getLogger(__name__)


@runtime_checkable
class FrameSink(Protocol):
    def put(self, frame: Any) -> None:
        """Show/write one frame (`frame.rgb` [H,W,3] uint8, `frame.index`, `frame.pts_s`)."""

    def close(self) -> None:
        """Release resources; called once, after the last put."""


class NullSink:
    """Discards frames (benchmarks, latency measurement); counts them."""

    def __init__(self) -> None:
        self.count = 0
        self.closed = False

    def put(self, frame: Any) -> None:
        self.count += 1

    def close(self) -> None:
        self.closed = True


class CallbackSink:
    """Calls `fn(frame)` for every frame and `on_close()` at the end (e.g. a GUI bridge)."""

    def __init__(self, fn: Callable[[Any], None], on_close: Callable[[], None] | None = None) -> None:
        self._fn, self._on_close = fn, on_close

    def put(self, frame: Any) -> None:
        self._fn(frame)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()


class FileSink:
    """H.264 MP4 at 25 fps via PyAV; optional AAC track from a 16 kHz mono array.

    Frames are placed by `frame.index`, so the file's timeline is the audio's timeline: re-sent (held)
    frames are skipped and gaps from dropped frames are filled with the previous picture. The audio
    track is written progressively up to the last video frame, so A/V stay interleaved.
    """

    def __init__(self, path: str | Path, *, audio: np.ndarray | None = None,
                 crf: int = 18, preset: str = "veryfast") -> None:
        self.path = Path(path)
        self._audio = None if audio is None else np.asarray(audio, np.float32).reshape(-1)
        self._opts = {"crf": str(crf), "preset": preset}
        self._container: Any = None
        self._vstream: Any = None
        self._astream: Any = None
        self._last_index = -1
        self._last_rgb: np.ndarray | None = None
        self._audio_done = 0  # samples of the audio track already encoded
        self.frames_written = 0
        self._closed = False

    def _open(self, h: int, w: int) -> None:
        import av  # lazy: PyAV is only needed when writing files

        if h % 2 or w % 2:
            raise ValueError(f"H.264 needs even frame sizes, got {w}x{h}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        vs = self._container.add_stream("libx264", rate=FPS, options=self._opts)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.time_base = Fraction(1, FPS)
        self._vstream = vs
        if self._audio is not None:
            self._astream = self._container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")

    def put(self, frame: Any) -> None:
        rgb = np.ascontiguousarray(frame.rgb)  # [H,W,3] uint8
        index = int(frame.index)
        if index <= self._last_index:  # a held (re-sent) frame: already on the timeline
            return
        if self._container is None:
            self._open(rgb.shape[0], rgb.shape[1])
        while self._last_rgb is not None and self._last_index + 1 < index:  # dropped: fill the gap
            self._encode(self._last_rgb, self._last_index + 1)
        self._encode(rgb, index)
        self._last_rgb = rgb
        self._write_audio(min((index + 1) * (SAMPLE_RATE // FPS), self._audio_len()))

    def _encode(self, rgb: np.ndarray, index: int) -> None:
        import av

        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        vf.pts, vf.time_base = index, Fraction(1, FPS)
        self._container.mux(self._vstream.encode(vf))
        self._last_index = index
        self.frames_written += 1

    def _audio_len(self) -> int:
        return 0 if self._audio is None else self._audio.shape[0]

    def _write_audio(self, upto: int) -> None:
        import av

        if self._astream is None or upto <= self._audio_done:
            return
        chunk = self._audio[self._audio_done:upto]  # [n] mono
        af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = SAMPLE_RATE, self._audio_done, Fraction(1, SAMPLE_RATE)
        self._container.mux(self._astream.encode(af))
        self._audio_done = upto

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            log.warning("FileSink %s: no frames were written; no file created", self.path)
            return
        try:
            # the audio track is cut at the end of the video so both streams end together
            self._write_audio(min(self._audio_len(), (self._last_index + 1) * (SAMPLE_RATE // FPS)))
            self._container.mux(self._vstream.encode(None))
            if self._astream is not None:
                self._container.mux(self._astream.encode(None))
        finally:
            self._container.close()
            self._container = None
