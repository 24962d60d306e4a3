"""Streaming band-limited resampler for the audio edge (mic rate -> 16 kHz).

Output sample k sits at input position k * src / dst (exact integer arithmetic) and is a windowed-sinc
sum over absolute input indices, so the result does not depend on how the input was chunked: a mic
delivering 10 ms callbacks gives the same samples as one big array. Pure numpy, no state beyond a short
input history.
"""
from __future__ import annotations

import math

import numpy as np


class StreamResampler:
    """Resample float32 mono audio from `src` Hz to `dst` Hz, chunk by chunk."""

    def __init__(self, src: int, dst: int, zero_crossings: int = 16) -> None:
        if src <= 0 or dst <= 0:
            raise ValueError(f"sample rates must be positive, got {src} -> {dst}")
        g = math.gcd(src, dst)
        self.src, self.dst = src // g, dst // g
        self.cutoff = 0.95 * min(1.0, self.dst / self.src)  # fraction of the input Nyquist
        self.half = int(math.ceil(zero_crossings / self.cutoff))  # taps each side, in input samples
        self._hist = np.zeros(0, np.float32)
        self._hist_start = 0  # absolute input index of _hist[0]
        self._n_in = 0  # input samples received
        self._n_out = 0  # output samples produced

    def _kernel(self, t: np.ndarray) -> np.ndarray:
        # t: distance (input samples) from output position to each tap; Hann-windowed sinc.
        w = 0.5 + 0.5 * np.cos(np.pi * np.clip(t / (self.half + 1), -1.0, 1.0))
        return (self.cutoff * np.sinc(self.cutoff * t) * w).astype(np.float32)

    def _emit(self, limit_in: int) -> np.ndarray:
        """All outputs whose taps lie below input index `limit_in`."""
        # output k needs inputs up to floor(k*src/dst) + half
        k_end = ((limit_in - self.half) * self.dst + self.src - 1) // self.src if limit_in > self.half else 0
        if k_end <= self._n_out:
            return np.zeros(0, np.float32)
        k = np.arange(self._n_out, k_end, dtype=np.int64)
        base = (k * self.src) // self.dst
        frac = ((k * self.src) % self.dst) / self.dst
        offs = np.arange(-self.half + 1, self.half + 1, dtype=np.int64)
        idx = base[:, None] + offs[None, :]  # [K, taps] absolute input indices
        taps = self._kernel(frac[:, None] - offs[None, :].astype(np.float64))
        rel = idx - self._hist_start
        valid = (idx >= 0) & (rel < self._hist.shape[0])
        vals = np.where(valid, self._hist[np.clip(rel, 0, max(0, self._hist.shape[0] - 1))], 0.0)
        self._n_out = int(k_end)
        return (vals * taps).sum(axis=1).astype(np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32).reshape(-1)
        if self.src == self.dst:
            return x.copy()
        self._hist = np.concatenate([self._hist, x])
        self._n_in += x.shape[0]
        out = self._emit(self._n_in)
        # keep only the history later outputs can still reach
        first_needed = max(0, (self._n_out * self.src) // self.dst - self.half + 1)
        drop = min(max(0, first_needed - self._hist_start), self._hist.shape[0])
        self._hist = self._hist[drop:]
        self._hist_start += drop
        return out

    def flush(self) -> np.ndarray:
        """Outputs still held back for look-ahead; the input is treated as ending in silence."""
        if self.src == self.dst:
            return np.zeros(0, np.float32)
        total = (self._n_in * self.dst + self.src - 1) // self.src  # ceil(n_in * dst / src)
        pad = np.zeros(self.half + 1, np.float32)
        self._hist = np.concatenate([self._hist, pad])
        out = self._emit(self._n_in + self.half + 1)
        return out[: max(0, total - (self._n_out - out.shape[0]))]
