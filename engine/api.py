"""The engine's public surface: the only module the app uses (DESIGN.md §4).

    engine = load_engine()                      # shipped default model, best device
    session = engine.open_session([portrait_rgb], seed=0)
    session.push_audio(chunk_float32, 16000)
    for frame in session.step(): show(frame.rgb)
    frames = session.flush()                    # at the end of a file
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from engine import device as dev
from engine.bundle import AvacastModel
from engine.config import FPS, SAMPLE_RATE, EngineConfig
from engine.io.checkpoint import CheckpointError, default_weights, load_into, load_weights
from engine.runtime.offline import Cancelled, frame_count, iter_render
from engine.runtime.session import Frame, Session

__all__ = ["load_engine", "Engine", "Session", "Frame", "EngineConfig", "CheckpointError", "FPS", "SAMPLE_RATE",
           "iter_render", "frame_count", "Cancelled"]
log = logging.getLogger(__name__)


class Engine:
    def __init__(self, model: AvacastModel, device: torch.device, dtype: torch.dtype, weights: Path | None):
        self.model, self.cfg = model, model.cfg
        self.device, self.dtype = device, dtype
        self.device_name = dev.device_name(device)
        self.weights = weights

    def open_session(self, references: list[np.ndarray], seed: int = 0, warm_up: bool | None = None,
                     steps: int | None = None, cfg: float | None = None,
                     identity_hold: float | None = None, driver: np.ndarray | None = None,
                     use_driver: bool | None = None) -> Session:
        """steps/cfg/identity_hold override the model's sampler from the first block (graphs are captured with
        them); warm_up (default: on GPUs): run the first KV window on silence at open, then rewind (Session);
        driver: an RGB face the generator animates in the portrait's stead, its motion moved onto the portrait;
        use_driver: whether the model's own driver face does that (SamplerConfig.use_driver) when none is given."""
        over = {k: v for k, v in (("steps", steps), ("cfg", cfg), ("identity_hold", identity_hold),
                                  ("use_driver", use_driver))
                if v is not None}
        sampler = dataclasses.replace(self.cfg.sampler, **over) if over else None
        return Session(self.model, list(references), seed, self.device, self.dtype, warm_up, sampler, driver)


def build_model(cfg: EngineConfig, seed: int = 0) -> AvacastModel:
    """A randomly initialised model; deterministic, and leaves the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AvacastModel(cfg)


def load_engine(cfg: EngineConfig | None = None, weights: str | Path | None = None,
                device: str = "auto", backend: str | None = None, dtype: torch.dtype | None = None) -> Engine:
    """Weights given: their config is used (a different architecture in `cfg` is an error; its sampler is
    kept). Only cfg: random weights (tests, benchmarks). Neither: the shipped default model.
    backend: eager | graphs (CUDA graphs) | compile (torch.compile inside CUDA graphs; the default on GPUs)
    | tensorrt (see engine.device). dtype: None picks the device's default (bf16 on GPUs, fp32 on CPUs)."""
    if weights is None and cfg is None:
        weights = default_weights()
        if weights is None:
            raise CheckpointError("no shipped default model found in resources/model; "
                                  "pass weights=... or a preset")
    torch_device = dev.pick_device(device)
    dev.configure(torch_device)
    dtype = dtype or dev.default_dtype(torch_device)
    state = None
    if weights is not None:
        wcfg, state, _ = load_weights(weights)
        if cfg is not None:
            if (cfg.vae, cfg.dit, cfg.audio) != (wcfg.vae, wcfg.dit, wcfg.audio):
                raise CheckpointError(f"{Path(weights).name}: its architecture ({wcfg.name}) differs from the "
                                      f"requested config ({cfg.name})")
            wcfg = EngineConfig(wcfg.name, wcfg.vae, wcfg.audio, wcfg.dit, cfg.sampler, cfg.runtime)
        cfg = wcfg
    assert cfg is not None
    model = build_model(cfg)
    if state is not None:
        load_into(model, state, Path(weights).name)  # type: ignore[arg-type]
    model = dev.prepare(model.to(torch_device, dtype).eval().requires_grad_(False),
                        backend or dev.default_backend(torch_device))
    log.info("engine %s on %s (%s)", cfg.name, dev.device_name(torch_device), dtype)
    return Engine(model, torch_device, dtype, Path(weights) if weights else None)
