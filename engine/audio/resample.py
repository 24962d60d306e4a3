"""Band-limited streaming resampling (Kaiser-windowed sinc), pure numpy: the one resampler of the engine.

Live chunks (microphone callbacks) and whole files give identical samples: the same kernel is evaluated
at the same absolute positions. Used at the edges: mic rate -> 16 kHz, and files in engine.io.media.
"""
from __future__ import annotations

import math

import numpy as np


def _kernel_setup(src_rate: int, dst_rate: int, zeros: int) -> tuple[int, int, int, float]:
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    g = math.gcd(int(src_rate), int(dst_rate))
    up, down = int(dst_rate) // g, int(src_rate) // g
    cutoff = min(1.0, up / down) * 0.97  # a little below Nyquist of the lower rate: no aliasing
    half = int(math.ceil(zeros / cutoff))  # input taps each side of the output position
    return up, down, half, cutoff


class StreamResampler:
    """Windowed-sinc rational resampler with state, for live audio chunks.

    Pushing a signal in any chunking and then calling `flush()` gives exactly `resample()` of the
    whole signal: the same kernel is evaluated at the same absolute positions, and an output sample
    is only emitted once all input it depends on has arrived (a look-ahead of `latency_samples`).
    """

    def __init__(self, src_rate: int, dst_rate: int, zeros: int = 16) -> None:
        self.up, self.down, self.half, self.cutoff = _kernel_setup(src_rate, dst_rate, zeros)
        self.src_rate, self.dst_rate = int(src_rate), int(dst_rate)
        self._weights = self._phase_weights()  # [up, 2*half]
        self._buf = np.zeros(0, np.float32)  # input samples [buf_start, buf_start + len)
        self._buf_start = 0
        self._n_in = 0
        self._n_out = 0

    @property
    def latency_samples(self) -> int:
        """Input samples the resampler must see past an output position before emitting it."""
        return self.half

    def _phase_weights(self) -> np.ndarray:
        frac = np.arange(self.up, dtype=np.float64)[:, None] / self.up  # [up, 1]
        taps = np.arange(-self.half + 1, self.half + 1, dtype=np.float64)[None, :]  # [1, 2h]
        d = taps - frac  # distance (in input samples) from the output position to each tap
        win = np.kaiser(2 * self.half + 1, 8.6)  # sampled Kaiser, evaluated by interpolation
        w_at = np.interp(d / self.half, np.linspace(-1, 1, 2 * self.half + 1), win, 0.0, 0.0)
        return (self.cutoff * np.sinc(self.cutoff * d) * w_at).astype(np.float32)

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Feed float mono samples [S]; returns every output sample that is now complete."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, x])
        self._n_in += len(x)
        # Output m sits at input position m*down/up; it needs inputs up to floor(pos) + half.
        m_end = -(-(self._n_in - self.half) * self.up // self.down) if self._n_in > self.half else 0
        return self._emit(max(m_end, self._n_out))

    def flush(self) -> np.ndarray:
        """Ends the stream: pads zeros and returns the tail, so the total output length is
        ceil(n_in * dst / src)."""
        total = -(-self._n_in * self.up // self.down)
        self._buf = np.concatenate([self._buf, np.zeros(self.half + 1, np.float32)])
        return self._emit(total)

    def _emit(self, m_end: int, chunk: int = 16_384) -> np.ndarray:
        outs = []
        for m0 in range(self._n_out, m_end, chunk):
            m = np.arange(m0, min(m0 + chunk, m_end), dtype=np.int64)  # output indices [M]
            pos = m * self.down
            base, phase = pos // self.up, pos % self.up  # integer input index, sub-sample phase
            idx = base[:, None] + np.arange(-self.half + 1, self.half + 1)[None, :]  # [M, 2h]
            rel = idx - self._buf_start
            valid = rel >= 0  # before the stream start the signal is zero
            vals = self._buf[np.clip(rel, 0, len(self._buf) - 1)] * valid if len(self._buf) else 0.0
            outs.append(np.sum(vals * self._weights[phase], axis=1, dtype=np.float32))
        self._n_out = max(self._n_out, m_end)
        self._trim()
        return np.concatenate(outs) if outs else np.zeros(0, np.float32)

    def _trim(self) -> None:
        # Keep only the input the next output can still reach: bounded memory for hours of audio.
        keep_from = (self._n_out * self.down) // self.up - self.half
        drop = max(0, keep_from - self._buf_start)
        if drop:
            self._buf = self._buf[drop:]
            self._buf_start += drop


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling of float mono samples [S] -> [ceil(S * dst / src)] (pure numpy)."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if int(src_rate) == int(dst_rate):
        return x.copy()
    r = StreamResampler(src_rate, dst_rate)
    head = r.process(x)
    return np.concatenate([head, r.flush()])
