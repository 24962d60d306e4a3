"""The engine bridge with the real tiny engine and the real Runner."""
import threading
import time

import numpy as np
import pytest

from app.audio.sources import ArraySource, speech_like
from app.bridge import EngineBridge


def _threads():
    return {t for t in threading.enumerate() if t.name.startswith("avacast")}


@pytest.fixture
def bridge(qtbot):
    b = EngineBridge(stats_interval_ms=100)
    yield b
    b.shutdown()


def load_tiny(qtbot, bridge, tiny_engine_factory):
    with qtbot.waitSignal(bridge.engine_ready, timeout=60_000) as blocker:
        bridge.load(tiny_engine_factory(None))
    qtbot.waitUntil(lambda: not bridge.busy)  # the worker thread ends just after its signal
    return blocker.args[0]


def test_signals_frames_stats_and_audio_energy(qtbot, bridge, tiny_engine_factory):
    device = load_tiny(qtbot, bridge, tiny_engine_factory)
    assert device.upper().startswith("CPU")
    frames, stats = [], []
    bridge.frame_ready.connect(lambda f: frames.append(bridge.take_frame() or f))
    bridge.stats_updated.connect(stats.append)
    source = ArraySource(speech_like(1.0), loop=False)
    with qtbot.waitSignal(bridge.state_changed, check_params_cb=lambda s: s == "running",
                          timeout=60_000):
        bridge.start([np.full((128, 128, 3), 128, np.uint8)], source, steps=1, identity_hold=0.4)
    qtbot.waitUntil(lambda: source.finished.is_set(), timeout=10_000)
    qtbot.waitUntil(lambda: bridge.runner.stats().frames_out >= 20, timeout=60_000)
    qtbot.waitUntil(lambda: len(stats) > 0 and len(frames) > 0, timeout=10_000)
    assert bridge.pipeline.energy_in > 1.0  # the voice passed the gate into the engine
    sampler = bridge.runner.session.sampler  # the UI's settings, from the session's first block
    assert sampler.steps == 1 and sampler.identity_hold == 0.4
    assert frames[-1].rgb.dtype == np.uint8 and frames[-1].rgb.ndim == 3
    assert stats[-1].device.upper().startswith("CPU")
    bridge.stop()
    assert bridge.runner is None and bridge.state == "stopped"


def test_start_stop_cycles_leak_no_threads(qtbot, bridge, tiny_engine_factory):
    load_tiny(qtbot, bridge, tiny_engine_factory)
    baseline = _threads()
    for _ in range(3):
        source = ArraySource(speech_like(0.5), loop=True)
        bridge.start([np.zeros((64, 64, 3), np.uint8)], source)
        qtbot.waitUntil(lambda: bridge.state == "running", timeout=60_000)
        qtbot.waitUntil(lambda: bridge.preview.frames > 0, timeout=60_000)
        bridge.stop()
        assert _threads() == baseline, _threads() - baseline


def test_stop_while_starting_does_not_leave_a_runner(qtbot, bridge, tiny_engine_factory):
    load_tiny(qtbot, bridge, tiny_engine_factory)
    bridge.start([np.zeros((64, 64, 3), np.uint8)], ArraySource(speech_like(0.5)))
    bridge.stop()  # immediately: the worker may still be opening the session
    assert bridge.runner is None
    time.sleep(0.2)
    assert not _threads()


def test_load_failure_is_a_message_not_a_crash(qtbot, bridge, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")

    def factory():
        from engine.api import load_engine
        return load_engine(weights=bad, device="cpu")
    with qtbot.waitSignal(bridge.error, timeout=30_000) as blocker:
        bridge.load(factory)
    assert "bad.safetensors" in blocker.args[0] and "\n" not in blocker.args[0]
    assert bridge.engine is None


def test_start_without_engine_says_so(qtbot, bridge):
    with qtbot.waitSignal(bridge.error) as blocker:
        bridge.start([np.zeros((8, 8, 3), np.uint8)], ArraySource(speech_like(0.1)))
    assert "model" in blocker.args[0].lower()


def test_engine_thread_error_reaches_the_ui(qtbot, bridge, tiny_engine_factory, monkeypatch):
    load_tiny(qtbot, bridge, tiny_engine_factory)
    real_open = bridge.engine.open_session

    def open_broken(refs, seed=0, **kw):
        session = real_open(refs, seed=seed, **kw)

        def step():
            raise RuntimeError("CUDA out of memory (simulated)")
        session.step = step
        return session
    monkeypatch.setattr(bridge.engine, "open_session", open_broken)
    with qtbot.waitSignal(bridge.error, timeout=60_000) as blocker:
        bridge.start([np.zeros((64, 64, 3), np.uint8)], ArraySource(speech_like(1.0)))
    assert "out of memory" in blocker.args[0]
    assert bridge.runner is None and bridge.source is None
    assert not _threads()
