"""Shared CLI pieces: model selection flags and engine loading with one-line errors."""
from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from engine.cli import UserError

log = logging.getLogger(__name__)


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--weights", help="weights file (.safetensors); default: the shipped model")
    g.add_argument("--preset", choices=["tiny", "base", "paper"],
                   help="random weights of this size (tests and benchmarks only: the picture is noise)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    add_dtype_arg(g)
    g.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    g.add_argument("--cfg", type=float, help="guidance scale (default: the model's)")
    add_hold_args(g)


# the identity hold's, the motion gain's and the model driver's sampler options (SamplerConfig): flag, type, metavar,
# what it sets
_HOLD_ARGS = (
    ("--identity-hold", float, "B", "identity hold 0-1: how strongly the slow drift of the face is pulled back to "
                                    "the portrait (0: off)"),
    ("--hold-seconds", float, "S", "time constant of the identity hold's running mean"),
    ("--hold-free-dims", int, "N", "stored motion directions (mouth, pose) the identity hold leaves alone"),
    ("--hold-history", None, None, "on: the held latents become the generator's history"),
    ("--hold-mouth", float, "M", "the identity hold's strength on the mouth, 0-1 x the rest of the face's (below 1: "
                                 "a portrait's open mouth is not pulled back in every pause)"),
    ("--motion-gain", float, "G", "scales the fast motion (departure from the running mean over the hold's "
                                  "time constant) before decoding, 0-4 (1: off)"),
    ("--mouth-gain", float, "G", "the motion gain on the mouth, x the rest of the face's, 0-4"),
    ("--model-driver", None, None, "on: the model's driver face moves the portrait (off: the generator animates "
                                   "the portrait itself)"),
)


def add_dtype_arg(p) -> None:
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 on a GPU, fp32 on a CPU. bf16 on a CPU with native bf16 (Intel AMX, AMD Zen 4 "
                        "and newer) rendered 2x faster on one (docs/PERFORMANCE.md); other CPUs emulate it")


def torch_dtype(name: str | None):
    """--dtype -> a torch dtype, None for auto."""
    from engine.device import DTYPES

    return DTYPES.get(name or "auto")


def add_hold_args(p, lead: str = "", default: str = "the model's") -> None:
    """The identity hold's flags on parser or group `p`; help = lead + what it sets + the default."""
    for flag, kind, metavar, what in _HOLD_ARGS:
        text = f"{lead}{what} (default: {default})"
        if kind is None:
            p.add_argument(flag, choices=["on", "off"], help=text)
        else:
            p.add_argument(flag, type=kind, metavar=metavar, help=text)


def hold_overrides(args: argparse.Namespace) -> dict:
    """The identity hold's, the motion gain's and the driver's SamplerConfig fields given on the command line
    (`add_hold_args`), on/off as bools."""
    out = {k: getattr(args, k, None) for k in ("identity_hold", "hold_seconds", "hold_free_dims", "hold_mouth",
                                          "motion_gain", "mouth_gain")}
    for flag, field in (("hold_history", "hold_history"), ("model_driver", "use_driver")):
        if getattr(args, flag, None) is not None:
            out[field] = getattr(args, flag) == "on"
    return {k: v for k, v in out.items() if v is not None}


def crop_portrait(img: np.ndarray, path: str, prog: str) -> np.ndarray:
    """The head-and-shoulders crop around the largest face that the app and training use
    (engine.io.portrait); says on stderr when the image has no face (its centre square is used) or several."""
    from engine.io.portrait import portrait_crop

    out, faces = portrait_crop(img)
    if faces == 0:
        print(f"{prog}: no face found in {path}; using its centre square", file=sys.stderr)
    elif faces > 1:
        print(f"{prog}: {faces} faces in {path}; using the largest", file=sys.stderr)
    return out


def load_engine_from_args(args: argparse.Namespace, cfg=None):
    """Engine from `cfg` / --weights / --preset / the shipped default, with sampler overrides (--steps, --cfg
    and the identity hold's flags)."""
    import dataclasses

    from engine.api import CheckpointError, load_engine
    from engine.config import EngineConfig

    try:
        over = {k: getattr(args, k, None) for k in ("steps", "cfg")} | hold_overrides(args)
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
        engine = load_engine(cfg=cfg, weights=weights, device=args.device, backend=getattr(args, "backend", None),
                             dtype=torch_dtype(getattr(args, "dtype", None)))
        if cfg is None and overrides:  # shipped default model
            engine.model.cfg = engine.cfg = dataclasses.replace(
                engine.cfg, sampler=dataclasses.replace(engine.cfg.sampler, **overrides))
        return engine
    except (CheckpointError, RuntimeError, ValueError, FileNotFoundError) as e:
        raise UserError(str(e).splitlines()[0]) from None
