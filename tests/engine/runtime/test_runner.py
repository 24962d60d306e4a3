"""Runner logic against a Session double (plumbing, pacing, accounting); the real tiny engine is
exercised in test_runner_engine.py."""
import threading
import time
import tracemalloc

import numpy as np
import pytest

from engine.config import RuntimeConfig
from engine.runtime.playout import FrameQueue
from engine.runtime.runner import Runner
from engine.runtime.sinks import CallbackSink, NullSink

from .doubles import SPF, FakeSession


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * 16000)).astype(np.float32) * 0.1


def direct_frames(audio: np.ndarray, **kw) -> list:
    s = FakeSession(**kw)
    s.push_audio(audio, 16000)
    return s.step() + s.flush()


def runner_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("avacast-")]


class Collect:
    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.frames, self.closed, self.delay, self.gate, self.calls = [], 0, delay, gate, 0

    def put(self, frame) -> None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        self.frames.append(frame)

    def close(self) -> None:
        self.closed += 1


def test_streaming_through_the_runner_gives_the_same_frames_as_direct_stepping():
    audio = speech(2.3)
    expected = direct_frames(audio)
    a, b = Collect(), NullSink()
    r = Runner(FakeSession(), [a, b], realtime=False)
    r.start()
    for i in range(0, len(audio), 320):  # 20 ms mic chunks while the engine runs
        r.push_audio(audio[i:i + 320], 16000)
    r.end_audio()
    assert r.wait(10) and r.error is None
    r.stop()
    assert [f.index for f in a.frames] == list(range(round(2.3 * 25)))
    assert all(np.array_equal(x.rgb, y.rgb) for x, y in zip(a.frames, expected, strict=True))
    assert b.count == len(expected) and a.closed == 1 and b.closed
    st = r.stats()
    assert st.frames_out == len(expected) and st.dropped == 0 and st.held == 0
    assert set(st.stage_ms) >= {"audio_wait", "features", "denoise", "decode", "queue", "output"}
    assert st.device == "FakeCPU" and st.engine_fps > 0


def test_push_audio_resamples_mic_rates_and_mixes_channels():
    r = Runner(FakeSession(), [NullSink()], realtime=False)
    stereo = np.zeros((4800, 2), np.float32)  # 100 ms at 48 kHz
    for i in range(0, 4800, 480):
        r.push_audio(stereo[i:i + 480], 48000)
    r.end_audio()
    assert r.ring.written == 1600
    with pytest.raises(ValueError, match="sample_rate"):
        r.push_audio(np.zeros(10, np.float32), 0)
    r.stop()


def test_latency_is_exact_from_push_times_of_the_frame_audio():
    now = [0.0]
    sink = Collect()
    r = Runner(FakeSession(), [sink], realtime=False, clock=lambda: now[0])
    audio = speech(0.4)
    for k, i in enumerate(range(0, len(audio), SPF)):  # frame k's audio pushed at t = k
        now[0] = float(k)
        r.push_audio(audio[i:i + SPF], 16000)
    now[0] = 100.0  # every frame reaches the sink at t = 100
    r.start()
    r.end_audio()
    assert r.wait(10)
    r.stop()
    st = r.stats()
    assert st.frames_out == 10
    lat = sorted(r._channels[0].latency)
    assert lat == sorted(100.0 - k for k in range(10))
    assert st.latency_p50_ms == pytest.approx(np.percentile([100.0 - k for k in range(10)], 50) * 1000)


def test_set_sampler_applies_at_block_boundaries_on_the_engine_thread():
    calls = []

    class Recording(FakeSession):
        def set_sampler(self, steps=None, cfg=None, identity_hold=None):
            calls.append(threading.current_thread().name)
            super().set_sampler(steps, cfg, identity_hold)

    s = Recording()
    r = Runner(s, [NullSink()], realtime=False)
    audio = speech(2.0)
    r.start()
    r.push_audio(audio[:16000], 16000)
    while s.next_frame < 20:
        time.sleep(0.005)
    r.set_sampler(steps=7)
    r.set_sampler(cfg=1.5)
    r.set_sampler(identity_hold=0.3)
    r.push_audio(audio[16000:], 16000)
    r.end_audio()
    assert r.wait(10) and r.error is None
    r.stop()
    assert calls and all(c == "avacast-engine" for c in calls)
    first = s.sampler_log[0]
    assert first[0] > 4 and s.steps == 7 and s.cfg == 1.5 and s.identity_hold == 0.3
    with pytest.raises(ValueError, match="steps"):
        r.set_sampler(steps=0)
    with pytest.raises(ValueError, match="identity_hold"):
        r.set_sampler(identity_hold=1.5)


def test_engine_error_is_kept_and_stops_the_runner():
    sink = NullSink()
    # a 2 s burst, all of it generated (a live runner skips a burst beyond backlog_max_ms)
    r = Runner(FakeSession(fail_at_block=3), [sink], realtime=True, cfg=RuntimeConfig(backlog_max_ms=3000))
    r.start()
    r.push_audio(speech(2.0), 16000)
    assert r.wait(5)
    assert isinstance(r.error, RuntimeError) and "boom" in str(r.error)
    r.stop()
    assert sink.closed and runner_threads() == []


def test_sink_error_is_kept_and_stops_the_runner():
    def bad(frame):
        raise OSError("camera unplugged")

    r = Runner(FakeSession(), [CallbackSink(bad)], realtime=False)
    r.start()
    r.push_audio(speech(1.0), 16000)
    assert r.wait(5)
    assert isinstance(r.error, OSError)
    r.stop()
    assert runner_threads() == []


def test_stop_joins_every_thread_and_closes_sinks_once():
    sinks = [Collect(), Collect()]
    r = Runner(FakeSession(), sinks, realtime=True)
    r.start()
    r.push_audio(speech(0.5), 16000)
    time.sleep(0.1)
    assert len(runner_threads()) == 3
    r.stop(timeout=2)
    r.stop(timeout=2)
    assert runner_threads() == [] and not r.running
    assert [s.closed for s in sinks] == [1, 1]


def test_stuck_sink_drops_oldest_live_and_blocks_nothing():
    gate = threading.Event()
    sink = Collect(gate=gate)
    s = FakeSession()
    # the 2.8 s burst below is generated in full (a live runner skips a burst beyond backlog_max_ms)
    r = Runner(s, [sink], realtime=True, cfg=RuntimeConfig(queue_frames=8, backlog_max_ms=5000))
    r.start()
    audio = speech(3.0)
    r.push_audio(audio[:3200], 16000)
    deadline = time.monotonic() + 5
    while not sink.calls and time.monotonic() < deadline:  # frame 0 is due: the sink takes it, sticks
        time.sleep(0.005)
    r.push_audio(audio[3200:], 16000)
    while s.next_frame < 70 and time.monotonic() < deadline:  # the engine runs on, sink is stuck
        time.sleep(0.005)
    assert s.next_frame >= 70 and sink.calls == 1
    q = r._channels[0].queue
    assert len(q) == q.maxlen == 5 + 8  # ceil(190 ms * 25 fps) + two blocks
    gate.set()
    r.end_audio()
    assert r.wait(10)
    r.stop()
    idx = sorted(set(f.index for f in sink.frames))
    assert idx[-1] == 74 and len(idx) < 20  # the newest survive; every other frame is counted
    assert r.stats().dropped == 75 - len(idx)


def test_offline_runner_is_lossless_with_a_slow_sink():
    sink = Collect(delay=0.002)
    r = Runner(FakeSession(), [sink, NullSink()], realtime=False, cfg=RuntimeConfig(queue_frames=2))
    r.start()
    r.push_audio(speech(3.0), 16000)
    r.end_audio()
    assert r.wait(10)
    r.stop()
    assert [f.index for f in sink.frames] == list(range(75)) and r.stats().dropped == 0


def test_offline_push_longer_than_the_ring_waits_instead_of_overwriting():
    s = FakeSession(frames_per_block=1, size=2)
    r = Runner(s, [NullSink()], realtime=False, cfg=RuntimeConfig(ring_seconds=1.0))
    r.start()
    r.push_audio(speech(5.0), 16000)  # 5 ring capacities in one call
    r.end_audio()
    assert r.wait(10)
    r.stop()
    assert r.stats().frames_out == 125 and r.stats().overflow_samples == 0


def test_underrun_holds_the_last_frame_and_never_blocks_the_producer():
    sink = Collect()
    s = FakeSession(step_delay=0.25)  # 160 ms of video per 250 ms of compute: too slow
    r = Runner(s, [sink], realtime=True)
    r.start()
    audio, worst, t0 = speech(1.2), 0.0, time.monotonic()
    for k, i in enumerate(range(0, len(audio), 320)):  # a mic: 20 ms chunks on the wall clock
        a = time.perf_counter()
        r.push_audio(audio[i:i + 320], 16000)
        worst = max(worst, time.perf_counter() - a)
        time.sleep(max(0.0, t0 + (k + 1) * 0.02 - time.monotonic()))
    assert worst < 0.02  # the engine is busy 250 ms at a time; the producer never waited on it
    assert r.ring.written == len(audio)
    r.stop()
    st = r.stats()
    assert st.held > 0
    idx = [f.index for f in sink.frames]
    assert any(a == b for a, b in zip(idx, idx[1:]))  # the same frame shown again
    assert all(a <= b for a, b in zip(idx, idx[1:]))


def feed_like_a_mic(r: Runner, audio: np.ndarray) -> None:
    """20 ms chunks on the wall clock."""
    t0 = time.monotonic()
    for k, i in enumerate(range(0, len(audio), 320)):
        r.push_audio(audio[i:i + 320], 16000)
        time.sleep(max(0.0, t0 + (k + 1) * 0.02 - time.monotonic()))


def test_a_too_slow_engine_skips_old_audio_to_stay_live_and_stops_within_one_block():
    """An engine slower than real time (a CPU) must not fall ever further behind the voice, and Stop must not
    wait for a backlog of blocks (the app joins the runner when its window closes)."""
    sink = Collect()
    s = FakeSession(step_delay=0.25)  # 160 ms of video per 250 ms of compute: 0.64x real time
    r = Runner(s, [sink], realtime=True, cfg=RuntimeConfig(backlog_max_ms=300))
    r.start()
    feed_like_a_mic(r, speech(5.0))  # without skipping the engine would end ~1.8 s behind the mic
    t0 = time.monotonic()
    r.stop()
    assert time.monotonic() - t0 < 0.45 and not runner_threads()  # at most the block in flight
    st, lat = r.stats(), list(r._channels[0].latency)
    assert max(lat[-8:]) < 1.0  # skip cap 0.3 + the block and its look-ahead 0.2 + compute 0.25, give or take
    assert st.dropped >= 20 and r.ring.written - r._cursor < 0.3 * 16000 + 6 * SPF
    idx = [f.index for f in sink.frames]
    assert idx == sorted(idx)  # in order (an underrun shows the last frame again)


def test_a_too_slow_engine_ends_a_live_stream_without_rendering_its_backlog():
    r = Runner(FakeSession(step_delay=0.25), [NullSink()], realtime=True, cfg=RuntimeConfig(backlog_max_ms=300))
    r.start()
    feed_like_a_mic(r, speech(4.0))  # ~1.4 s behind by now: 2.3 s of blocks to render it all
    r.end_audio()
    assert r.wait(1.5) and r.error is None  # the backlog past 300 ms skipped, the rest flushed
    r.stop()
    assert r.stats().dropped >= 20


def test_live_frames_are_shown_at_push_time_plus_the_playout_delay():
    r = Runner(FakeSession(), [NullSink()], realtime=True, playout_delay=0.3)
    r.start()
    feed_like_a_mic(r, speech(1.6))  # the fake needs 180 ms of audio after a block's first frame
    r.end_audio()
    assert r.wait(5) and r.error is None
    r.stop()
    lat = np.array(r._channels[0].latency)
    st = r.stats()
    assert len(lat) == 40 and st.frames_out == 40  # fewer than RELAX_FRAMES: D has no reason to move
    assert abs(np.median(lat) - 0.3) < 0.005 and np.all(np.abs(lat - 0.3) < 0.02)
    assert (st.held, st.dropped, st.late, st.playout_ms) == (0, 0, 0, 300.0)
    assert 300 <= st.run_latency_p50_ms <= 306 and 300 <= st.run_latency_p95_ms <= 321  # whole run, 1 ms bins


def test_a_late_block_raises_the_live_delay_once_and_later_frames_are_on_time():
    class Hiccup(FakeSession):
        def _block(self):
            if self.blocks == 3:
                time.sleep(0.3)
            return super()._block()

    r = Runner(Hiccup(), [NullSink()], realtime=True, playout_delay=0.25)
    r.start()
    feed_like_a_mic(r, speech(3.0))
    r.stop()
    st, lat = r.stats(), list(r._channels[0].latency)
    # block 3 (frames 9-12) is due ~70 ms after it normally lands, so it comes ~0.23 s late
    assert st.late == 1 and 450 < st.playout_ms < 550 and st.dropped == 0
    assert all(abs(x - st.playout_ms / 1000) < 0.02 for x in lat[-40:])  # on time at the new D


def test_playout_delay_defaults_to_block_plus_margin_and_can_be_set():
    assert Runner(FakeSession(), [NullSink()]).stats().playout_ms == pytest.approx(160 + 30)
    cfg = RuntimeConfig(playout_ms=250, playout_margin_ms=10)
    assert Runner(FakeSession(), [NullSink()], cfg=cfg).stats().playout_ms == 250
    assert Runner(FakeSession(), [NullSink()], cfg=cfg, playout_delay=0.1).stats().playout_ms == 100
    assert Runner(FakeSession(), [NullSink()], realtime=False).stats().playout_ms == 0  # not paced
    with pytest.raises(ValueError, match="playout"):
        RuntimeConfig(playout_ms=-1)


def test_frame_queue_counts_drops_and_reports_finished():
    q = FrameQueue(2)
    for i in range(5):
        q.put(i)
    assert q.dropped == 3 and q.pop() == 3 and not q.finished
    q.close()
    assert q.pop() == 4 and q.finished and not q.wait(0.01)


def test_two_thousand_blocks_keep_host_memory_flat():
    s = FakeSession(frames_per_block=1, size=4)
    r = Runner(s, [NullSink()], realtime=False)
    r.start()
    chunk = speech(0.4)  # 10 blocks per push

    def stream(blocks: int) -> int:
        """Stream `blocks` more blocks, let the engine go idle, return traced bytes."""
        target = s.blocks + blocks
        while s.blocks < target:
            if r.ring.written - s.next_frame * SPF < 16000:  # keep ~1 s queued, never overflow
                r.push_audio(chunk, 16000)
            else:
                time.sleep(0.0005)
        while s.n_samples < r.ring.written or s.n_samples >= s.samples_needed or len(r._channels[0].queue):
            time.sleep(0.001)
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    base = stream(1600)  # warm-up: the bounded windows (1500 latencies, 1000 per stage) fill up
    grown = stream(2000) - base
    tracemalloc.stop()
    r.stop()
    assert r.error is None and r.stats().overflow_samples == 0
    assert grown < 32 * 1024, f"host memory grew {grown} bytes over 2000 blocks"
