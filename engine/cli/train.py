"""`avacast train vae|generator`: resumable training on a pack, on one GPU, CPU, or under torchrun."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from engine.cli import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train the VAE or the generator on a pack")
    p.add_argument("task", choices=["vae", "generator"])
    p.add_argument("--preset", default="base", choices=["tiny", "base", "paper"])
    p.add_argument("--pack", required=True, help="pack written by `avacast prepare`")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.csv, exported weights)")
    p.add_argument("--vae", help="generator only: trained VAE weights (vae.safetensors of a VAE run)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/ckpt")
    p.add_argument("--time-budget-min", type=float, help="stop cleanly (with a checkpoint) after M minutes")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--total-steps", type=int, help="length of the cosine schedule")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20, help="steps between log lines")
    p.add_argument("--device", default="auto")
    p.add_argument("--shard-mb", type=float, help="split checkpoints into files of at most this size")
    p.add_argument("--workers", type=int, default=8, help="threads decoding the pack")


def run(args: argparse.Namespace) -> int:
    from engine.config import EngineConfig
    from engine.train.config import TrainConfig
    from engine.train.loop import train
    from engine.train.pack import Pack, PackError

    cfg = EngineConfig.preset(args.preset)
    overrides = {k: v for k, v in (("batch", args.batch), ("lr", args.lr), ("total_steps", args.total_steps))
                 if v is not None}
    tcfg = TrainConfig(task=args.task, seed=args.seed, log_every=args.log_every, **overrides)
    try:
        pack = Pack(args.pack)
    except PackError as e:
        raise UserError(str(e)) from None
    if args.task == "vae":
        task = _vae_task(cfg, tcfg, pack, args.workers)
    else:
        cfg, task = _generator_task(cfg, tcfg, pack, args)
    summary = train(task, cfg, tcfg, Path(args.out), resume=args.resume, device=args.device,
                    time_budget_min=args.time_budget_min, max_steps=args.max_steps, shard_mb=args.shard_mb)
    print(json.dumps(summary))
    return 0


def _vae_task(cfg, tcfg, pack, workers):
    from engine.train.data import load_clips
    from engine.train.vae_task import VAETask

    clips = pack.clips("train")
    if not clips:
        raise UserError(f"{pack.root}: no training clips")
    return VAETask(cfg, tcfg, load_clips(pack, clips, cfg.vae.resolution, with_audio=False, workers=workers))


def _generator_task(cfg, tcfg, pack, args):
    import torch

    from engine.device import default_dtype
    from engine.io.checkpoint import CheckpointError, load_into, load_weights
    from engine.train.data import load_clips
    from engine.train.gen_task import GeneratorTask, cache_latents, scale_latents
    from engine.train.loop import dist_setup
    from engine.vae.model import CausalVAE

    if not args.vae:
        raise UserError("generator training needs --vae (the VAE run's vae.safetensors)")
    try:
        vcfg, state, _ = load_weights(args.vae)
        vae = CausalVAE(vcfg.vae)
        load_into(vae, state, Path(args.vae).name, prefix="vae.")
    except CheckpointError as e:
        raise UserError(str(e)) from None
    cfg = dataclasses.replace(cfg, vae=vcfg.vae)
    clips = pack.clips("train", audio=True)
    if not clips:
        raise UserError(f"{pack.root}: no training clips with usable audio")
    _, _, dev = dist_setup(args.device)
    dtype = default_dtype(dev)
    vae = vae.to(dev, dtype).eval().requires_grad_(False)
    cached = cache_latents(vae, load_clips(pack, clips, cfg.vae.resolution, True, args.workers), dev, dtype)
    scale_latents(cached, vae)
    vae_state = {f"vae.{k}": v.detach().float().cpu() for k, v in vae.state_dict().items()}
    del vae
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return cfg, GeneratorTask(cfg, tcfg, cached, vae_state)
