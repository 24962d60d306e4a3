import threading
import time

import numpy as np
import pytest

from engine.runtime.ringbuffer import (SAMPLES_PER_FRAME, AudioRing, PushLog, RingUnderflow,
                                       frame_pts, frame_to_sample, frames_covered, sample_to_frame,
                                       seconds_to_samples)


def ramp(a: int, b: int) -> np.ndarray:
    return np.arange(a, b, dtype=np.float32)


def test_reads_across_the_seam_return_absolute_samples():
    ring = AudioRing(10)
    ring.write(ramp(0, 7))
    assert ring.read(0, 7).tolist() == ramp(0, 7).tolist()
    ring.write(ramp(7, 15))  # wraps: physical slots 7..9 then 0..4
    assert ring.written == 15 and ring.oldest == 5
    np.testing.assert_array_equal(ring.read(5, 10), ramp(5, 15))
    np.testing.assert_array_equal(ring.read(8, 4), ramp(8, 12))  # straddles the seam


def test_underflow_distinguishes_future_from_overwritten():
    ring = AudioRing(10)
    ring.write(ramp(0, 12))
    with pytest.raises(RingUnderflow) as future:
        ring.read(10, 3)
    assert not future.value.overwritten
    with pytest.raises(RingUnderflow) as past:
        ring.read(1, 3)
    assert past.value.overwritten
    np.testing.assert_array_equal(ring.read(2, 10), ramp(2, 12))


def test_overflow_counts_only_unread_overwritten_samples():
    ring = AudioRing(10)
    ring.write(ramp(0, 10))
    ring.read(0, 6)  # reader is at 6
    ring.write(ramp(10, 14))  # overwrites 0..3: all already read
    assert ring.overflow_samples == 0
    ring.write(ramp(14, 19))  # overwrites 4..8: 6, 7, 8 were never read
    assert ring.overflow_samples == 3
    ring.write(ramp(19, 44))  # one write larger than the ring: keeps the newest 10
    assert ring.overflow_samples == 3 + (34 - 9)
    np.testing.assert_array_equal(ring.read(34, 10), ramp(34, 44))


def test_concurrent_writer_and_reader_see_a_gapless_ramp():
    ring = AudioRing(4096)
    total = 200_000

    read_pos = [0]

    def produce():
        for a in range(0, total, 320):  # 20 ms chunks
            while a - read_pos[0] > 2048:  # stay within the ring so this tests seams, not overflow
                time.sleep(0)
            ring.write(ramp(a, min(a + 320, total)))

    t = threading.Thread(target=produce)
    t.start()
    got = []
    while read_pos[0] < total:
        ring.wait_for(read_pos[0] + 1, 1.0)
        end = ring.written
        got.append(ring.read(read_pos[0], end - read_pos[0]))
        read_pos[0] = end
    t.join()
    np.testing.assert_array_equal(np.concatenate(got), ramp(0, total))
    assert ring.overflow_samples == 0


def test_sample_frame_mapping():
    assert SAMPLES_PER_FRAME == 640
    assert frame_to_sample(0) == 0 and frame_to_sample(25) == 16000
    assert sample_to_frame(639) == 0 and sample_to_frame(640) == 1 and sample_to_frame(16000) == 25
    assert frame_pts(50) == 2.0
    assert frames_covered(seconds_to_samples(1.5)) == 37  # 24000 samples = 37.5 frames
    for f in (0, 1, 7, 1234):
        assert sample_to_frame(frame_to_sample(f)) == f
        assert frame_to_sample(f) / 16000 == pytest.approx(frame_pts(f))


def test_push_log_maps_samples_to_the_chunk_that_carried_them():
    log = PushLog()
    log.append(320, 1.0)  # samples 0..319 pushed at t=1
    log.append(640, 2.0)
    log.append(1280, 3.0)
    assert log.time_of(0) == 1.0
    assert log.time_of(320) == 2.0
    assert log.time_of(700) == 3.0
    assert len(log) == 1  # entries before the looked-up sample are gone
    assert log.time_of(1280) is None  # never pushed (silence padding)


def test_push_log_is_bounded_and_does_not_guess_for_forgotten_samples():
    log = PushLog(max_entries=4)
    for k in range(1, 11):
        log.append(k * 100, float(k))
    assert len(log) == 4
    assert log.time_of(50) is None  # its entry was dropped: no wrong latency
    assert log.time_of(650) == 7.0
