import dataclasses

import pytest
import torch

from engine.api import load_engine
from engine.config import EngineConfig
from engine.io.checkpoint import CheckpointError, load_weights, save_weights
from tests.conftest import randomize


def _save(engine, path, **kw):
    return save_weights(path, engine.model.state_dict(), engine.cfg, **kw)


def test_round_trip_reads_config_from_metadata(tmp_path, tiny_engine):
    _save(tiny_engine, tmp_path / "m.safetensors")
    loaded = load_engine(weights=tmp_path / "m.safetensors", device="cpu")
    assert loaded.cfg == tiny_engine.cfg
    for (k, a), (_, b) in zip(tiny_engine.model.state_dict().items(), loaded.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)


def test_sharded_weights_join(tmp_path, tiny_engine):
    files = _save(tiny_engine, tmp_path / "m.safetensors", shard_bytes=64 * 1024)
    assert len(files) > 2 and all(f.stat().st_size <= 64 * 1024 for f in files)
    cfg, state, _ = load_weights(tmp_path / "m.safetensors")
    assert cfg == tiny_engine.cfg
    for k, v in tiny_engine.model.state_dict().items():
        torch.testing.assert_close(state[k], v)
    files[1].unlink()
    with pytest.raises(CheckpointError, match="shards"):
        load_weights(tmp_path / "m.safetensors")


def test_truncated_file(tmp_path, tiny_engine):
    p = _save(tiny_engine, tmp_path / "m.safetensors")[0]
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_engine(weights=p, device="cpu")


def test_not_a_safetensors_file(tmp_path):
    p = tmp_path / "m.safetensors"
    p.write_bytes(b"PK\x03\x04 this is a zip, maybe a pickle")
    with pytest.raises(CheckpointError) as e:
        load_engine(weights=p, device="cpu")
    assert "\n" not in str(e.value)


def test_tensors_not_matching_config(tmp_path, tiny_engine):
    state = tiny_engine.model.state_dict()
    state.pop("dit.null_audio")
    bigger = dataclasses.replace(tiny_engine.cfg, dit=dataclasses.replace(tiny_engine.cfg.dit, depth=3))
    save_weights(tmp_path / "m.safetensors", state, bigger)
    with pytest.raises(CheckpointError, match="do not match its config") as e:
        load_engine(weights=tmp_path / "m.safetensors", device="cpu")
    assert "missing" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_engine(weights=tmp_path / "nope.safetensors", device="cpu")


def test_random_init_is_deterministic_and_leaves_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = load_engine(EngineConfig.tiny(), device="cpu")
    after = torch.rand(1)
    b = load_engine(EngineConfig.tiny(), device="cpu")
    assert torch.equal(before, after)
    torch.testing.assert_close(a.model.state_dict(), b.model.state_dict())
