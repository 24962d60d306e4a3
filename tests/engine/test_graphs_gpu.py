"""The CUDA-graph fast paths (plain, and torch.compile'd) stream the same frames as eager execution (GPU only)."""
import dataclasses

import numpy as np
import pytest
import torch

from engine.api import load_engine
from engine.config import EngineConfig

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def frames(backend: str, preset: str, seconds: float = 3.0, sampler: dict | None = None, live: dict | None = None,
           driver: bool = False):
    """sampler: overrides at open; live: a set_sampler() halfway through; driver: a random driver face."""
    cfg = EngineConfig.preset(preset)
    cfg = dataclasses.replace(cfg, sampler=dataclasses.replace(cfg.sampler, **(sampler or {})))
    engine = load_engine(cfg, device="cuda", backend=backend)
    res = engine.cfg.vae.resolution
    ref = np.random.default_rng(0).integers(0, 256, (res, res, 3), dtype=np.uint8)
    t = np.arange(int(16000 * seconds)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    face = np.random.default_rng(1).integers(0, 256, (res, res, 3), dtype=np.uint8) if driver else None
    s = engine.open_session([ref], seed=0, driver=face)
    out = []
    for i in range(0, len(audio), 640):
        if live and i == len(audio) // 640 // 2 * 640:
            s.set_sampler(**live)
        s.push_audio(audio[i:i + 640], 16000)
        out += s.step()
    out += s.flush()
    return np.stack([f.rgb for f in out]).astype(np.int16), s


@pytest.mark.parametrize("backend", ["graphs", "compile"])
@pytest.mark.parametrize("preset", ["tiny", "base"])
def test_graphs_match_eager(preset, backend):
    eager, _ = frames("eager", preset)
    graphed, session = frames(backend, preset)
    assert session._block_graph is not None and session._decode_graph is not None  # the fast path ran
    assert session._fill_graph is not None  # and the KV window filled through the masked graph
    assert eager.shape == graphed.shape
    assert np.abs(eager - graphed).mean() < 1.0  # bf16: identical up to rounding


@pytest.mark.parametrize("hold", [{"identity_hold": 0.75}, {"identity_hold": 1.0, "hold_history": True},
                                  {"identity_hold": 0.75, "hold_mouth": 0.25}])
def test_graphs_match_eager_with_the_identity_hold(hold):
    """The hold runs inside the captured block graph (its running mean advancing in place, its history
    committed with hold_history); a live strength change needs no re-capture and still matches eager."""
    eager, _ = frames("eager", "tiny", sampler=hold, live={"identity_hold": 0.3})
    graphed, session = frames("compile", "tiny", sampler=hold, live={"identity_hold": 0.3})
    assert session._block_graph is not None and session._block_graph.key[-2:] == (True, hold.get("hold_history", False))
    assert session.sampler.identity_hold == 0.3
    assert np.abs(eager - graphed).mean() < 1.0
    plain, _ = frames("compile", "tiny")
    assert np.abs(plain - graphed).mean() > 1.0  # and the hold did change the stream


def test_graphs_match_eager_with_a_driver_face():
    """The driver's shift is added before the captured decode graph: the fast path streams eager's frames."""
    eager, _ = frames("eager", "tiny", driver=True)
    graphed, session = frames("compile", "tiny", driver=True)
    assert session._decode_graph is not None and session._shift is not None
    assert np.abs(eager - graphed).mean() < 1.0
    plain, _ = frames("compile", "tiny")
    assert np.abs(plain - graphed).mean() > 1.0


def test_graphs_match_eager_with_the_motion_gain():
    """The motion gain runs eagerly on the latent before the captured decode graph: the fast path streams
    eager's frames, and the gain does change them."""
    gain = {"motion_gain": 2.0, "mouth_gain": 1.5}
    eager, _ = frames("eager", "tiny", sampler=gain, driver=True)
    graphed, session = frames("compile", "tiny", sampler=gain, driver=True)
    assert session._decode_graph is not None and session._gain.active
    assert np.abs(eager - graphed).mean() < 1.0
    plain, _ = frames("compile", "tiny", driver=True)
    assert np.abs(plain - graphed).mean() > 1.0
