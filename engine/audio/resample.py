"""Streaming sample-rate conversion for live audio (linear interpolation with carried phase).

Chunked conversion equals one-shot conversion of the concatenated signal, so microphone chunk sizes
never change what the engine hears. Files are resampled with PyAV's resampler in engine.io.media instead.
"""
from __future__ import annotations

import numpy as np


class StreamResampler:
    def __init__(self, src_rate: int, dst_rate: int):
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
        self.src, self.dst = src_rate, dst_rate
        self._consumed = 0  # input samples seen so far
        self._produced = 0  # output samples emitted so far
        self._last = np.zeros(1, np.float32)  # last input sample (left neighbour across chunks)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x [S] float32 -> resampled chunk (output sample n sits at input time n*src/dst)."""
        x = np.asarray(x, np.float32).reshape(-1)
        if self.src == self.dst:
            return x.copy()
        total = self._consumed + x.size
        n_end = (total - 1) * self.dst // self.src + 1 if total else 0  # outputs whose time < total
        n = np.arange(self._produced, n_end, dtype=np.int64)
        pos = n * self.src / self.dst - (self._consumed - 1)  # position in [last, *x]
        ext = np.concatenate([self._last, x])
        i = np.clip(np.floor(pos).astype(np.int64), 0, ext.size - 1)
        frac = (pos - i).astype(np.float32)
        j = np.minimum(i + 1, ext.size - 1)
        out = ext[i] * (1 - frac) + ext[j] * frac
        if x.size:
            self._last = x[-1:].copy()
        self._consumed, self._produced = total, n_end
        return out.astype(np.float32)
