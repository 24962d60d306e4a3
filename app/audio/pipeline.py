"""What every captured audio block goes through before it reaches the engine.

level meter (raw input) -> noise gate -> runner ring buffer, and the raw block -> pass-through delay
line. Called from the audio callback thread: numpy on one small block plus copies.
"""
from __future__ import annotations

import numpy as np

from app.audio.processing import DelayLine, LevelMeter, NoiseGate


class AudioPipeline:
    def __init__(self, push_audio, gate: NoiseGate, meter: LevelMeter):
        self._push = push_audio  # Runner.push_audio: copies into the ring buffer
        self.gate = gate
        self.meter = meter
        self.delay_line: DelayLine | None = None  # set while pass-through runs
        self.samples_in = 0
        self.energy_in = 0.0  # sum of squares that reached the engine (tests, diagnostics)

    def __call__(self, samples: np.ndarray, sample_rate: int) -> None:
        block = np.asarray(samples, dtype=np.float32).reshape(-1)  # [n] mono
        self.meter.update(block)
        delay_line = self.delay_line
        if delay_line is not None:
            delay_line.write(block)
        gated = self.gate.process(block, sample_rate)
        self.samples_in += gated.size
        self.energy_in += float(np.dot(gated, gated))
        self._push(gated, sample_rate)
