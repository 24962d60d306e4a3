import numpy as np
import pytest

from engine.runtime.resample import StreamResampler


def tone(freq: float, sr: int, seconds: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def run_chunks(r: StreamResampler, x: np.ndarray, chunk: int) -> np.ndarray:
    out = [r.process(x[i:i + chunk]) for i in range(0, len(x), chunk)]
    return np.concatenate(out + [r.flush()])


@pytest.mark.parametrize("src", [48000, 44100, 8000])
def test_chunking_does_not_change_the_output(src):
    x = tone(440, src, 0.5)
    whole = run_chunks(StreamResampler(src, 16000), x, len(x))
    small = run_chunks(StreamResampler(src, 16000), x, src // 100)  # 10 ms mic callbacks
    np.testing.assert_allclose(small, whole, atol=1e-6)
    assert len(whole) == int(np.ceil(len(x) * 16000 / src))


def test_tone_survives_and_high_frequencies_are_removed():
    y = run_chunks(StreamResampler(48000, 16000), tone(1000, 48000, 1.0), 480)
    ref = tone(1000, 16000, 1.0)
    mid = slice(200, 15800)  # away from the edges
    assert np.max(np.abs(y[mid] - ref[mid])) < 0.01
    alias = run_chunks(StreamResampler(48000, 16000), tone(15000, 48000, 1.0), 480)
    assert np.sqrt(np.mean(alias[mid] ** 2)) < 0.01  # 15 kHz would alias to 1 kHz without the filter


def test_same_rate_is_a_copy():
    x = tone(300, 16000, 0.1)
    r = StreamResampler(16000, 16000)
    np.testing.assert_array_equal(r.process(x), x)
    assert r.flush().size == 0


def test_bad_rate_is_rejected():
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(0, 16000)
