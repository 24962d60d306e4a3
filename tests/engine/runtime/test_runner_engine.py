"""The runner around the real tiny engine (CPU)."""
import numpy as np
import pytest

from engine.runtime.runner import Runner
from engine.runtime.sinks import CallbackSink, NullSink


def portrait() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (80, 72, 3), dtype=np.uint8)


def speech(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_runner_frames_equal_direct_session_steps(tiny_engine):
    audio = speech(1.0)
    direct = tiny_engine.open_session([portrait()], seed=5)
    direct.push_audio(audio, 16000)
    expected = direct.step() + direct.flush()

    got = []
    r = Runner(tiny_engine.open_session([portrait()], seed=5), [CallbackSink(got.append), NullSink()],
               realtime=False, device_name=tiny_engine.device_name)
    r.start()
    for i in range(0, len(audio), 320):  # 20 ms mic chunks
        r.push_audio(audio[i:i + 320], 16000)
    r.end_audio()
    assert r.wait(60) and r.error is None
    r.stop()
    assert len(expected) == 25
    assert [f.index for f in got] == [f.index for f in expected]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(got, expected))
    st = r.stats()
    assert st.frames_out == 25 and st.device == "CPU"
    assert {"features", "denoise", "decode"} <= set(st.stage_ms)


def test_live_sampler_change_reaches_the_real_session(tiny_engine):
    s = tiny_engine.open_session([portrait()], seed=0)
    r = Runner(s, [NullSink()], realtime=False)
    r.set_sampler(steps=1, cfg=1.5)
    r.start()
    r.push_audio(speech(0.2), 16000)
    r.end_audio()
    assert r.wait(60) and r.error is None
    r.stop()
    assert (s.sampler.steps, s.sampler.cfg) == (1, 1.5)


def test_automatic_playout_delay_reads_block_and_lookahead_from_the_session(tiny_engine):
    from engine.config import RuntimeConfig

    s = tiny_engine.open_session([portrait()], seed=0)
    cfg = s.cfg
    assert s.frames_per_block == 4 and cfg.audio.lookahead_ms == 40
    assert Runner(s, [NullSink()]).stats().playout_ms == pytest.approx(160 + 40 + 30)
    wider = Runner(s, [NullSink()], cfg=RuntimeConfig(playout_margin_ms=60))
    assert wider.stats().playout_ms == pytest.approx(160 + 40 + 60)


def test_runner_warms_the_session_in_its_own_engine_thread(tiny_engine, monkeypatch):
    """GPU set-up (cuDNN plans, cuBLAS handles) is per thread, so the warm-up must run in the thread that
    steps the session: the runner does it before start() returns, and the frames are unchanged."""
    import threading

    from engine.runtime.session import Session

    audio = speech(0.6)
    direct = tiny_engine.open_session([portrait()], seed=5, warm_up=False)
    direct.push_audio(audio, 16000)
    expected = direct.step() + direct.flush()

    threads: dict[str, set[int]] = {"warm": set(), "step": set()}
    warm, step = Session.warm_up, Session.step
    def warm_spy(self):
        threads["warm"].add(threading.get_ident())
        warm(self)
    def step_spy(self):
        threads["step"].add(threading.get_ident())
        return step(self)
    monkeypatch.setattr(Session, "warm_up", warm_spy)
    monkeypatch.setattr(Session, "step", step_spy)
    s = tiny_engine.open_session([portrait()], seed=5, warm_up=False)
    got = []
    r = Runner(s, [CallbackSink(got.append)], realtime=False, warm_up=True)
    r.start()
    assert s._warm_threads == threads["warm"] and threading.get_ident() not in threads["warm"]
    r.push_audio(audio, 16000)
    r.end_audio()
    assert r.wait(60) and r.error is None
    r.stop()
    assert threads["step"] and threads["step"] == threads["warm"]
    assert [f.index for f in got] == [f.index for f in expected]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(got, expected))


def test_a_failing_warm_up_is_raised_by_start(tiny_engine, monkeypatch):
    from engine.runtime.session import Session

    def boom(self):
        raise RuntimeError("CUDA out of memory (test)")
    monkeypatch.setattr(Session, "warm_up", boom)
    r = Runner(tiny_engine.open_session([portrait()], seed=0, warm_up=False), [NullSink()], warm_up=True)
    with pytest.raises(RuntimeError, match="out of memory"):
        r.start()
    assert not r.running and r.error is not None


def test_warm_up_is_once_per_thread_and_only_before_audio(tiny_engine):
    s = tiny_engine.open_session([portrait()], seed=0, warm_up=True)
    s.push_audio(speech(0.3), 16000)
    s.step()
    s.warm_up()  # the thread it was warmed in: a no-op, even mid-stream
    import threading

    errors = []
    def other():
        try:
            s.warm_up()
        except RuntimeError as e:
            errors.append(str(e))
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors and "before the stream" in errors[0]


def test_live_runner_feeds_the_real_session_a_block_at_a_time_with_the_same_frames(tiny_engine):
    """Live, the session gets one block's audio at a time (so a backlog can be skipped); while nothing is
    skipped its frames are the ones the whole audio at once gives."""
    import time

    from engine.config import RuntimeConfig

    audio = speech(1.0)
    direct = tiny_engine.open_session([portrait()], seed=5)
    direct.push_audio(audio, 16000)
    expected = direct.step() + direct.flush()
    got = []
    r = Runner(tiny_engine.open_session([portrait()], seed=5), [CallbackSink(got.append)], realtime=True,
               cfg=RuntimeConfig(backlog_max_ms=60_000))  # nothing skipped, however loaded the machine
    r.start()
    t0 = time.monotonic()
    for k, i in enumerate(range(0, len(audio), 320)):  # a mic: 20 ms chunks on the wall clock
        r.push_audio(audio[i:i + 320], 16000)
        time.sleep(max(0.0, t0 + (k + 1) * 0.02 - time.monotonic()))
    r.end_audio()
    assert r.wait(60) and r.error is None
    r.stop()
    first = {}
    for f in got:  # a live sink sees a held frame again
        first.setdefault(f.index, f)
    assert sorted(first) == [f.index for f in expected]
    assert all(np.array_equal(first[f.index].rgb, f.rgb) for f in expected)


def test_a_slow_real_session_skips_audio_live_and_its_frames_run_on(tiny_engine, monkeypatch):
    import time

    from engine.config import RuntimeConfig

    s = tiny_engine.open_session([portrait()], seed=0)
    block = s._run_block

    def slow_block():
        time.sleep(0.25)  # 160 ms of video per >= 250 ms: slower than real time
        return block()

    monkeypatch.setattr(s, "_run_block", slow_block)
    got = []
    r = Runner(s, [CallbackSink(got.append)], realtime=True, cfg=RuntimeConfig(backlog_max_ms=300))
    r.start()
    audio, t0 = speech(3.0), time.monotonic()
    for k, i in enumerate(range(0, len(audio), 320)):
        r.push_audio(audio[i:i + 320], 16000)
        time.sleep(max(0.0, t0 + (k + 1) * 0.02 - time.monotonic()))
    r.end_audio()
    assert r.wait(2.0) and r.error is None  # the backlog was skipped, not rendered
    r.stop()
    idx = sorted({f.index for f in got})
    assert idx == list(range(len(idx))) and r.stats().dropped > 10  # the session's frames run on without a gap
