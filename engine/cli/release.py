"""`avacast release`: join a VAE export and a generator export into one shippable model file (bf16,
size-capped shards), checked by loading it."""
from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import UserError
from engine.cli.common import add_hold_args, hold_overrides


def add_parser(sub) -> None:
    p = sub.add_parser("release", help="join trained VAE + generator weights into one model file")
    p.add_argument("--vae", required=True, help="vae.safetensors of a VAE run (or any full model)")
    p.add_argument("--generator", required=True, help="generator.safetensors of a generator run")
    p.add_argument("--out", required=True, help="output .safetensors (shards NAME-0000i-of-0000N)")
    p.add_argument("--shard-mb", type=float, default=15.0)
    p.add_argument("--anchor-first", choices=["on", "off"],
                   help="ship the sampler with streams that start on the portrait's own latent (default: the "
                        "generator's setting)")
    add_hold_args(p, "ship the sampler with: ", "the generator's setting")
    p.add_argument("--motion-basis", metavar="LATENTS",
                   help="latent cache of this model's VAE (train generator --save-latents): store the leading "
                        "within-clip motion directions of its latents, which the identity hold can leave alone")
    p.add_argument("--driver", metavar="IMG",
                   help="store this face in the model (already cropped like a training frame): the generator animates "
                        "it and its motion moves the user's portrait (--model-driver off at render time skips it)")
    p.add_argument("--motion-dims", type=int, default=64, metavar="K",
                   help="with --motion-basis: directions stored (default 64)")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from engine.api import load_engine
    from engine.io.checkpoint import CheckpointError, generator_tensors, load_weights, save_weights

    try:
        vcfg, vstate, _ = load_weights(args.vae)
        gcfg, gstate, gmeta = load_weights(args.generator)
        if vcfg.vae.latent_space() != gcfg.vae.latent_space():
            raise UserError("the generator was trained on latents of a different VAE architecture")
        state = {k: v for k, v in vstate.items() if k.startswith("vae.")}
        state.update(generator_tensors(gstate))
        gcfg = dataclasses.replace(gcfg, vae=vcfg.vae)  # with the VAE file's motion basis and fine fusion, if any
        if args.motion_basis:
            gcfg = _add_motion_basis(gcfg, state, args.motion_basis, args.motion_dims)
        if args.driver:
            gcfg = _add_driver(gcfg, state, args.driver)
        anchor = None if args.anchor_first is None else args.anchor_first == "on"
        shipped = hold_overrides(args) | ({} if anchor is None else {"anchor_first": anchor})
        try:
            gcfg = dataclasses.replace(gcfg, sampler=dataclasses.replace(gcfg.sampler, **shipped))
        except ValueError as e:
            raise UserError(f"invalid sampler setting: {e}") from None
        if gcfg.sampler.hold_free_dims > gcfg.vae.motion_dims:
            raise UserError(f"--hold-free-dims {gcfg.sampler.hold_free_dims}: the model stores "
                            f"{gcfg.vae.motion_dims} motion directions (add them with --motion-basis)")
        out = Path(args.out)
        step = gmeta.get("step", gmeta.get("generator_step", "?"))  # a released model as --generator keeps its step
        files = save_weights(out, state, gcfg, kind="model", shard_bytes=int(args.shard_mb * 2**20),
                             dtype=torch.bfloat16, extra={"generator_step": step})
        load_engine(weights=files[0], device="cpu")  # fails loudly if anything is missing
    except CheckpointError as e:
        raise UserError(str(e)) from None
    print(f"wrote {len(files)} file(s): " + ", ".join(f"{f.name} ({f.stat().st_size / 2**20:.1f} MiB)" for f in files))
    return 0


def _add_driver(cfg, state: dict, path: str):
    """The face at `path` as the session sees it into state["dit.driver"] -> cfg with dit.driver."""
    import dataclasses

    import torch

    from engine.io.media import MediaError, read_image
    from engine.train.evaluate import model_view

    try:
        image = read_image(path)
    except MediaError as e:
        raise UserError(f"--driver: {e}") from None
    state["dit.driver"] = torch.from_numpy(model_view(image, cfg.vae.resolution))
    return dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, driver=True))


def _add_motion_basis(cfg, state: dict, cache: str, dims: int):
    """Estimate the motion directions from a latent cache into state["vae.motion_basis"] -> cfg with motion_dims."""
    import dataclasses

    from engine.train.motion import cache_latents, motion_basis

    try:
        ccfg, clips = cache_latents(cache)
        if ccfg.latent_space() != cfg.vae.latent_space():
            raise UserError("--motion-basis: that latent cache was made with a different VAE architecture")
        basis, share = motion_basis(clips, dims)
    except ValueError as e:
        raise UserError(f"--motion-basis: {e}") from None
    print(f"motion basis: {dims} directions span {share:.1%} of the within-clip latent variance ({len(clips)} clips)")
    state["vae.motion_basis"] = basis
    return dataclasses.replace(cfg, vae=dataclasses.replace(cfg.vae, motion_dims=dims))
