import wave

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # 2 shared CPU cores: more threads only add contention


@pytest.fixture
def speech_wav(tmp_path):
    """A 1.0 s 22.05 kHz 16-bit WAV (the CLI resamples to 16 kHz)."""
    def make(seconds: float = 1.0, rate: int = 22050):
        t = np.arange(int(seconds * rate)) / rate
        x = 0.3 * np.sin(2 * np.pi * 180 * t) * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
        path = tmp_path / "speech.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes((x * 32767).astype("<i2").tobytes())
        return path
    return make
