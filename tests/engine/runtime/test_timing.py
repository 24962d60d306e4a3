"""Whole-run latency histogram: the percentiles a 9-minute stream reports at its end."""
import numpy as np
import pytest

from engine.runtime.timing import Histogram


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
