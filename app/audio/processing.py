"""Audio processing on the capture path: noise gate, level meter, delay line.

All of these run inside the audio callback, so each call is a few vectorised numpy operations on one
small block and a copy; no allocation-heavy or model code (DESIGN.md §3).
"""
from __future__ import annotations

import math
import threading

import numpy as np

SILENCE_DB = -100.0


def rms_db(block: np.ndarray) -> float:
    """RMS level of a float block in dBFS (full scale = 1.0)."""
    if block.size == 0:
        return SILENCE_DB
    power = float(np.mean(np.square(block, dtype=np.float64)))
    return 10.0 * math.log10(power) if power > 1e-10 else SILENCE_DB


class NoiseGate:
    """Blocks quieter than `threshold_db` become zeros, after `hold_ms` of quiet.

    Zeros (not attenuation) on purpose: the engine was trained to keep a calm, closed mouth on
    silence, while breathing and room noise would otherwise make it mumble. The hold keeps short
    pauses between words open so word endings aren't clipped.
    """

    def __init__(self, threshold_db: float = -45.0, hold_ms: float = 250.0):
        self.threshold_db = threshold_db
        self.hold_ms = hold_ms
        self._quiet_s = math.inf  # time since the last loud block; starts closed
        self.is_open = False

    def configure(self, threshold_db: float, hold_ms: float) -> None:
        # Plain attribute writes: atomic under the GIL, safe to call from the GUI thread.
        self.threshold_db = float(threshold_db)
        self.hold_ms = float(hold_ms)

    def process(self, block: np.ndarray, sample_rate: int) -> np.ndarray:
        """float32 mono block -> the same block (open) or zeros (closed)."""
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
        if rms_db(block) >= self.threshold_db:
            self._quiet_s = 0.0
        else:
            self._quiet_s += block.size / sample_rate
        self.is_open = self._quiet_s * 1000.0 <= self.hold_ms
        return block if self.is_open else np.zeros_like(block)


class LevelMeter:
    """Holds the latest input level for the GUI to poll; written by the audio thread."""

    def __init__(self):
        self._peak = 0.0
        self._rms_db = SILENCE_DB

    def update(self, block: np.ndarray) -> None:
        if block.size:
            self._peak = max(self._peak, float(np.max(np.abs(block))))
            self._rms_db = max(self._rms_db, rms_db(block))

    def read(self) -> tuple[float, float]:
        """(peak 0..1, rms dBFS) since the last read; resets so each GUI tick sees its own max."""
        peak, level = self._peak, self._rms_db
        self._peak, self._rms_db = 0.0, SILENCE_DB
        return peak, level


class DelayLine:
    """Mono FIFO that plays its input back `delay` seconds later (A/V-sync pass-through).

    The input callback writes, the output callback reads; both only copy under a short lock. The
    two streams run on separate clocks, so the fill level drifts: when it strays more than
    `slack_s` from the target the read side drops or pads to re-centre (an inaudible jump next to a
    drifting lip-sync).
    """

    def __init__(self, sample_rate: int, delay_s: float = 0.2, capacity_s: float = 5.0,
                 slack_s: float = 0.05):
        self.sample_rate = sample_rate
        self._buf = np.zeros(int(capacity_s * sample_rate), dtype=np.float32)
        self._write = 0  # absolute sample counters; position = counter % len(buf)
        self._read = 0
        self._playing = False
        self._slack = int(slack_s * sample_rate)
        self._lock = threading.Lock()
        self.delay_s = 0.0
        self.set_delay(delay_s)

    def set_delay(self, delay_s: float) -> None:
        cap = len(self._buf) / self.sample_rate
        self.delay_s = float(min(max(delay_s, 0.0), cap * 0.8))

    @property
    def fill(self) -> int:
        return self._write - self._read

    def write(self, block: np.ndarray) -> None:
        n = min(block.size, len(self._buf))
        block = block[-n:]
        with self._lock:
            start = self._write % len(self._buf)
            first = min(n, len(self._buf) - start)
            self._buf[start:start + first] = block[:first]
            self._buf[:n - first] = block[first:]
            self._write += n
            if self.fill > len(self._buf):  # reader stalled: forget what was overwritten
                self._read = self._write - len(self._buf)

    def read(self, out: np.ndarray) -> None:
        """Fill `out` (float32 [n]) with the delayed signal; zeros where nothing is due yet."""
        n = out.size
        target = int(self.delay_s * self.sample_rate)
        with self._lock:
            fill = self.fill
            if not self._playing and fill >= target + n:  # enough buffered: start exactly on target
                self._read = self._write - target - n
                self._playing = True
            elif self._playing and fill - n > target + self._slack:  # behind: skip ahead to target
                self._read = self._write - target - n
            elif self._playing and fill - n < target - self._slack:  # starved: wait to refill
                self._playing = False
            if not self._playing:
                out[:] = 0.0
                return
            start = self._read % len(self._buf)
            first = min(n, len(self._buf) - start)
            out[:first] = self._buf[start:start + first]
            out[first:] = self._buf[:n - first]
            self._read += n
