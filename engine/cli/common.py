"""Shared CLI pieces: model selection flags and engine loading with one-line errors."""
from __future__ import annotations

import argparse
import logging

from engine.cli import UserError

log = logging.getLogger(__name__)


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--weights", help="weights file (.safetensors); default: the shipped model")
    g.add_argument("--preset", choices=["tiny", "base", "paper"],
                   help="random weights of this size (tests and benchmarks only: the picture is noise)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    g.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    g.add_argument("--cfg", type=float, help="guidance scale (default: the model's)")


def load_engine_from_args(args: argparse.Namespace):
    """Engine from --weights / --preset / the shipped default, with sampler overrides."""
    import dataclasses

    from engine.api import CheckpointError, load_engine
    from engine.config import EngineConfig

    try:
        cfg = EngineConfig.preset(args.preset) if args.preset else None
        if cfg is None and args.weights:
            from engine.io.checkpoint import load_weights
            cfg = load_weights(args.weights)[0]
        if cfg is not None and (args.steps or args.cfg is not None):
            sampler = dataclasses.replace(cfg.sampler, **{k: v for k, v in (("steps", args.steps), ("cfg", args.cfg))
                                                          if v is not None})
            cfg = dataclasses.replace(cfg, sampler=sampler)
        if args.preset and not args.weights:
            log.warning("preset %s with random weights: the output is noise (for tests and benchmarks)", args.preset)
        engine = load_engine(cfg=cfg, weights=args.weights, device=args.device)
        if cfg is None and (args.steps or args.cfg is not None):
            engine.model.cfg = engine.cfg = dataclasses.replace(engine.cfg, sampler=dataclasses.replace(
                engine.cfg.sampler, **{k: v for k, v in (("steps", args.steps), ("cfg", args.cfg)) if v is not None}))
        return engine
    except (CheckpointError, RuntimeError, ValueError) as e:
        raise UserError(str(e).splitlines()[0]) from None
