"""The training loop shared by both trainers: one GPU, CPU, or torchrun (DDP; only rank 0 writes).

bf16 autocast on GPU, AdamW with warmup + cosine, gradient clipping, EMA, checkpoints every few minutes
and at the time budget, exact resume, CSV + console logs, and the EMA weights exported as a model file.
"""
from __future__ import annotations

import csv
import logging
import math
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist

from engine.config import EngineConfig
from engine.io.checkpoint import save_weights
from engine.train.config import TrainConfig
from engine.train.data import step_generator
from engine.train.state import EMA, load_train_state, save_train_state

log = logging.getLogger(__name__)
CKPT = Path("ckpt") / "train.safetensors"
TRAINING_ONLY = "training-only.safetensors"  # a task's training-only EMA tensors (e.g. the unknown audio)


def lr_at(tcfg: TrainConfig, step: int) -> float:
    if step < tcfg.warmup_steps:
        return tcfg.lr * (step + 1) / tcfg.warmup_steps
    frac = min(1.0, (step - tcfg.warmup_steps) / max(1, tcfg.total_steps - tcfg.warmup_steps))
    return tcfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def dist_setup(device: str) -> tuple[int, int, torch.device]:
    """-> (rank, world, device). Under torchrun: NCCL on GPUs, gloo on CPU."""
    if "RANK" not in os.environ:
        from engine.device import pick_device
        return 0, 1, pick_device(device)
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return rank, world, torch.device(f"cuda:{local}" if use_cuda else "cpu")


def train(task, cfg: EngineConfig, tcfg: TrainConfig, run_dir: Path, *, resume: bool, device: str = "auto",
          time_budget_min: float | None = None, max_steps: int | None = None,
          shard_mb: float | None = None) -> dict:
    """Run `task` until max_steps or the time budget; returns a summary. Deterministic given the seed."""
    t_start = time.monotonic()
    rank, world, dev = dist_setup(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    module = task.module.to(dev)
    model = torch.nn.parallel.DistributedDataParallel(module) if world > 1 else module
    # A task may split its parameters into groups with their own AdamW settings (the VAE's discriminators);
    # every group follows the same learning-rate schedule, times its "lr_scale", and is clipped on its own
    # (one group's large gradients never shrink another's steps).
    groups = task.param_groups(module) if hasattr(task, "param_groups") else [{"params": list(module.parameters())}]
    opt = torch.optim.AdamW(groups, lr=tcfg.lr, betas=(0.9, 0.99), weight_decay=tcfg.weight_decay)
    ema = EMA(module, tcfg.ema_decay)
    step = 0
    ckpt = run_dir / CKPT
    if resume and ckpt.parent.exists():
        step, _ = load_train_state(ckpt, module, ema, opt)
        log.info("resumed %s at step %d", ckpt, step)
    shard = int(shard_mb * 2**20) if shard_mb else None
    autocast = torch.autocast("cuda", torch.bfloat16) if dev.type == "cuda" else nullcontext()
    logf = open(run_dir / "log.csv", "a", newline="") if rank == 0 else None
    writer = csv.writer(logf) if logf else None
    last_ckpt, t_log, first_step = time.monotonic(), time.monotonic(), step
    losses: list[float] = []
    try:
        while max_steps is None or step < max_steps:
            if _should_stop(t_start, time_budget_min, world, dev):
                break
            g = step_generator(tcfg.seed, step, rank)
            batch = task.batch(g, step, dev)
            for group in opt.param_groups:
                group["lr"] = lr_at(tcfg, step) * group.get("lr_scale", 1.0)
            with autocast:
                loss, logs = task.loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorms = [torch.nn.utils.clip_grad_norm_(group["params"], tcfg.grad_clip) for group in opt.param_groups]
            opt.step()
            ema.update(module, step)
            step += 1
            losses.append(float(loss.detach()))
            if step % tcfg.log_every == 0 and writer is not None:
                rate = (step - first_step) / max(1e-9, time.monotonic() - t_log)
                mem = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else 0.0
                row = {"step": step, "loss": float(loss.detach()), "lr": lr_at(tcfg, step),
                       "grad_norm": float(gnorms[0]),  # the first group's; then grad_norm_1 ... for the others
                       **{f"grad_norm_{i}": float(n) for i, n in enumerate(gnorms[1:], 1)},
                       "steps_per_s": rate, "gpu_mem_gib": mem, **{k: float(v) for k, v in logs.items()}}
                if logf.tell() == 0:
                    writer.writerow(row.keys())
                writer.writerow(row.values())
                logf.flush()
                log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            if rank == 0 and time.monotonic() - last_ckpt > tcfg.checkpoint_minutes * 60:
                save_train_state(run_dir / CKPT, cfg, tcfg, step, module, ema, opt, shard)
                last_ckpt = time.monotonic()
    finally:
        if logf:
            logf.close()
    if rank == 0:
        save_train_state(run_dir / CKPT, cfg, tcfg, step, module, ema, opt, shard)
        save_weights(run_dir / f"{task.name}.safetensors", task.export(ema.shadow), cfg, kind=task.name,
                     shard_bytes=shard, dtype=torch.bfloat16, extra={"step": str(step)})
        own = getattr(task, "export_training_only", lambda _: {})(ema.shadow)
        if own:  # tensors the app never loads, kept apart so the export stays a loadable model
            save_weights(run_dir / TRAINING_ONLY, own, cfg, kind="training-only", extra={"step": str(step)})
    if world > 1:
        dist.barrier()
    return {"step": step, "steps_run": step - first_step, "last_loss": losses[-1] if losses else None,
            "first_loss": losses[0] if losses else None, "seconds": time.monotonic() - t_start}


def _should_stop(t_start: float, budget_min: float | None, world: int, dev: torch.device) -> bool:
    """All ranks stop on the same step: rank 0's clock decides."""
    stop = budget_min is not None and time.monotonic() - t_start > budget_min * 60
    if world > 1:
        flag = torch.tensor([1.0 if stop else 0.0], device=dev)
        dist.broadcast(flag, 0)
        stop = bool(flag.item())
    return stop
