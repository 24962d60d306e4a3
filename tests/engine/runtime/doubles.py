"""A duck-typed Session double for runner tests (the real engine is tested where main provides it).

It follows the engine contract: the first block yields 1 frame, later blocks `frames_per_block`;
a block needs its audio plus one frame of look-ahead; flush pads with silence to round(s * 25) frames.
Frame pixels are a pure function of the block's audio, the seed and the sampler, so any reordering,
loss or duplication in the runner shows up as a mismatch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

SPF = 640  # samples per frame


@dataclass(frozen=True)
class FakeFrame:
    rgb: np.ndarray
    index: int
    pts_s: float


class FakeSession:
    device_name = "FakeCPU"

    def __init__(self, seed: int = 0, frames_per_block: int = 4, step_delay: float = 0.0,
                 size: int = 8, fail_at_block: int | None = None) -> None:
        self.frames_per_block = frames_per_block
        self.seed, self.step_delay, self.size, self.fail_at_block = seed, step_delay, size, fail_at_block
        self.audio = np.zeros(0, np.float32)
        self.base = 0  # absolute index of audio[0]: consumed audio is trimmed so memory stays flat
        self.next_frame = 0
        self.blocks = 0
        self.steps, self.cfg, self.identity_hold = 2, 2.0, 0.0
        self.sampler_log: list[tuple[int, int, float]] = []  # (block, steps, cfg) when applied
        self.timings: dict[str, float] = {}
        self._pending: dict = {}

    def push_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        assert sample_rate == 16000
        self.audio = np.concatenate([self.audio, np.asarray(samples, np.float32)])

    @property
    def n_samples(self) -> int:
        return self.base + self.audio.shape[0]

    def _trim(self) -> None:
        cut = self.next_frame * SPF - self.base
        if cut > 0:
            self.audio, self.base = self.audio[cut:].copy(), self.base + cut

    def _block_frames(self) -> int:
        return 1 if self.next_frame == 0 else self.frames_per_block

    @property
    def samples_needed(self) -> int:
        return (self.next_frame + self._block_frames() + 1) * SPF  # + one frame of look-ahead

    def set_sampler(self, steps=None, cfg=None, identity_hold=None) -> None:
        for k, v in (("steps", steps), ("cfg", cfg), ("identity_hold", identity_hold)):
            if v is not None:
                self._pending[k] = v

    def _block(self) -> list[FakeFrame]:
        if self.fail_at_block is not None and self.blocks == self.fail_at_block:
            raise RuntimeError("boom in block")
        for k, v in self._pending.items():
            setattr(self, k, v)
        if self._pending:
            self.sampler_log.append((self.blocks, self.steps, self.cfg))
        self._pending = {}
        if self.step_delay:
            time.sleep(self.step_delay)
        n = self._block_frames()
        out = []
        for i in range(self.next_frame, self.next_frame + n):
            seg = self.audio[i * SPF - self.base:(i + 1) * SPF - self.base]
            v = int(abs(float(seg.sum())) * 1000 + self.seed * 7 + self.steps * 3 + self.cfg) % 256
            out.append(FakeFrame(np.full((self.size, self.size, 3), v, np.uint8), i, i / 25))
        self.next_frame += n
        self.blocks += 1
        self._trim()
        self.timings = {"features": 0.001, "denoise": 0.002, "decode": 0.001}
        return out

    def step(self) -> list[FakeFrame]:
        out = []
        while self.n_samples >= self.samples_needed:
            out += self._block()
        return out

    def flush(self) -> list[FakeFrame]:
        total = int(round(self.n_samples / 16000 * 25))
        pad = max(0, (total + self.frames_per_block + 1) * SPF - self.n_samples)
        self.audio = np.concatenate([self.audio, np.zeros(pad, np.float32)])
        out = []
        while self.next_frame < total:
            out += self._block()
        return [f for f in out if f.index < total]
