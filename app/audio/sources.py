"""Audio sources besides the microphone: an audio file and a generated test signal.

Both feed the same callback as the microphone (`on_audio(samples float32 [n], sample_rate)`) from
their own thread, paced at real time in 20 ms chunks, so the rest of the app can't tell them apart.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

AudioCallback = Callable[[np.ndarray, int], None]
RATE = 16_000
CHUNK_S = 0.02


def decode_audio(path: str | Path, rate: int = RATE) -> np.ndarray:
    """Any audio/video file -> float32 mono [n] at `rate`. Raises ValueError with a one-line reason."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ValueError(f"{Path(path).name} has no audio track")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = []
            for frame in container.decode(audio=0):
                parts.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(frame))
            parts.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(None))
    except (av.error.FFmpegError, OSError) as exc:
        raise ValueError(f"cannot read audio from {Path(path).name}: {exc}") from None
    if not parts:
        raise ValueError(f"{Path(path).name} contains no audio samples")
    return np.concatenate(parts).astype(np.float32)


def speech_like(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A synthetic voice: harmonic buzz with syllable-rate envelope and pauses (self-test input)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 130 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 2
    words = (np.sin(2 * np.pi * 0.5 * t) > -0.3).astype(np.float64)  # pauses between phrases
    noise = rng.normal(0, 0.02, t.size)
    return (0.3 * voice * syllables * words + noise * syllables).astype(np.float32)


class ArraySource:
    """Plays a float32 mono array into the callback in real time on its own thread."""

    def __init__(self, samples: np.ndarray, rate: int = RATE, loop: bool = True, name: str = "file"):
        self.samples, self.rate, self.loop, self.name = samples, rate, loop, name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()

    @classmethod
    def from_file(cls, path: str | Path, loop: bool = True) -> "ArraySource":
        return cls(decode_audio(path), loop=loop, name=Path(path).name)

    def start(self, on_audio: AudioCallback) -> None:
        self._stop.clear()
        self.finished.clear()
        self._thread = threading.Thread(target=self._run, args=(on_audio,), daemon=True,
                                        name=f"avacast-audio-{self.name}")
        self._thread.start()

    def _run(self, on_audio: AudioCallback) -> None:
        chunk = int(CHUNK_S * self.rate)
        pos, t0, sent = 0, time.monotonic(), 0
        while not self._stop.is_set():
            if pos >= self.samples.size:
                if not self.loop:
                    break
                pos = 0
            block = self.samples[pos:pos + chunk]
            pos += block.size
            on_audio(block, self.rate)
            sent += block.size
            delay = t0 + sent / self.rate - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
        self.finished.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
