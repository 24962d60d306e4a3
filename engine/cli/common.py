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
    g.add_argument("--identity-hold", type=float, metavar="B",
                   help="identity hold 0-1: how strongly the slow drift of the face is pulled back to the portrait "
                        "(0: off; default: the model's)")
    g.add_argument("--hold-free-dims", type=int, metavar="N",
                   help="motion directions the identity hold leaves alone (mouth, pose; default: the model's)")
    g.add_argument("--hold-history", choices=["on", "off"],
                   help="on: the held latents become the generator's history (default: the model's)")


def load_engine_from_args(args: argparse.Namespace, cfg=None):
    """Engine from `cfg` / --weights / --preset / the shipped default, with sampler overrides (--steps, --cfg,
    --identity-hold, --hold-free-dims)."""
    import dataclasses

    from engine.api import CheckpointError, load_engine
    from engine.config import EngineConfig

    try:
        over = {k: getattr(args, k, None) for k in ("steps", "cfg", "identity_hold", "hold_free_dims")}
        if getattr(args, "hold_history", None) is not None:
            over["hold_history"] = args.hold_history == "on"
        weights, preset = getattr(args, "weights", None), getattr(args, "preset", None)
        if cfg is None and preset:
            cfg = EngineConfig.preset(preset)
        if cfg is None and weights:
            from engine.io.checkpoint import load_weights
            cfg = load_weights(weights)[0]
        overrides = {k: v for k, v in over.items() if v is not None}
        if cfg is not None and overrides:
            cfg = dataclasses.replace(cfg, sampler=dataclasses.replace(cfg.sampler, **overrides))
        if preset and not weights:
            log.warning("preset %s with random weights: the output is noise (for tests and benchmarks)", preset)
        engine = load_engine(cfg=cfg, weights=weights, device=args.device, backend=getattr(args, "backend", None))
        if cfg is None and overrides:  # shipped default model
            engine.model.cfg = engine.cfg = dataclasses.replace(
                engine.cfg, sampler=dataclasses.replace(engine.cfg.sampler, **overrides))
        return engine
    except (CheckpointError, RuntimeError, ValueError, FileNotFoundError) as e:
        raise UserError(str(e).splitlines()[0]) from None
