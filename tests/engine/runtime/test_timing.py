"""Whole-run latency histogram (the percentiles a 9-minute stream reports at its end) and the fps meter."""
import numpy as np
import pytest

from engine.runtime.timing import Histogram, RateMeter


def test_histogram_percentiles_match_numpy_to_one_bin():
    x = np.random.default_rng(0).gamma(4.0, 0.05, 20_000)  # seconds, a long right tail
    h = Histogram()
    for v in x:
        h.add(float(v))
    for q in (50, 95, 99):
        assert h.percentile_ms(q) == pytest.approx(np.percentile(x, q) * 1000, abs=1.0)


def test_histogram_is_bounded_and_empty_is_zero():
    h = Histogram(max_ms=100)
    assert h.percentile_ms(50) == 0.0
    for v in (0.01, 5.0, 60.0):  # 10 ms, then two beyond the range: clamped into the last bin
        h.add(v)
    assert h.percentile_ms(30) == 11.0 and h.percentile_ms(95) == 101.0


def test_fps_meter_reads_new_frames_per_second_also_when_they_come_in_bursts():
    """A CPU engine shows a block of 4 frames at 25 fps every 1.6 s: the status line must say ~2.5 fps,
    not the 25 fps inside a burst (nor 0 between bursts); a steady stream reads 25."""
    steady = RateMeter()
    for k in range(100):
        steady.tick(k * 0.04)
    assert steady.rate(99 * 0.04 + 0.02) == pytest.approx(25.0, rel=0.03)
    bursts, readings = RateMeter(), []
    for b in range(10):
        for i in range(4):
            bursts.tick(b * 1.6 + i * 0.04)
        readings += [bursts.rate(b * 1.6 + 0.12 + d) for d in (0.0, 0.5, 1.0, 1.45)]
    assert all(1.5 < r < 4.5 for r in readings[8:])  # past the first window
    assert np.mean(readings[8:]) == pytest.approx(2.5, rel=0.35)
    assert steady.rate(99 * 0.04 + 3.0) == 0.0  # nothing new for longer than the window
    fast = RateMeter()  # unpaced (an offline render on a GPU): more events in the window than it keeps
    for k in range(2000):
        fast.tick(k * 0.002)
    assert fast.rate(1999 * 0.002) == pytest.approx(500.0, rel=0.01)
