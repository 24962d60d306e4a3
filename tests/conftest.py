"""Shared fixtures. Everything runs on CPU with the tiny preset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import EngineConfig

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def randomize(module: torch.nn.Module, std: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Give zero-initialised layers (AdaLN, output heads, residual gates) random values, so equivalence tests
    exercise every path instead of comparing zeros."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim >= 1 and float(p.abs().sum()) == 0.0:
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


@pytest.fixture
def tiny_cfg() -> EngineConfig:
    return EngineConfig.tiny()


@pytest.fixture
def tiny_engine():
    from engine.api import load_engine

    engine = load_engine(EngineConfig.tiny(), device="cpu")
    randomize(engine.model)
    return engine


@pytest.fixture
def portrait() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (96, 80, 3), dtype=np.uint8)


@pytest.fixture
def speech() -> np.ndarray:
    """2 s of speech-like audio: a 150 Hz buzz with syllable-rate (4 Hz) amplitude bursts, 16 kHz."""
    t = np.arange(32000) / 16000
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    return (0.3 * env * np.sign(np.sin(2 * np.pi * 150 * t))).astype(np.float32)
