"""Training checkpoints: model + EMA + optimizer + step, as safetensors (never pickle; DESIGN.md §5.10).

Batches and noise are drawn from generators seeded by (seed, step, rank), so restoring these tensors is
all an exact resume needs. Optimizer scalars and param-group settings go in the metadata as JSON.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from torch import nn

from engine.config import EngineConfig
from engine.io.checkpoint import CheckpointError, load_weights, save_weights
from engine.train.config import TrainConfig


class EMA:
    """Exponential moving average of a module's float parameters and buffers (fp32 copies)."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().float().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm start: follow closely early on
        for k, v in module.state_dict().items():
            s = self.shadow[k]
            if v.is_floating_point():
                s.lerp_(v.detach().float(), 1 - d)
            else:
                s.copy_(v)


def save_train_state(path: Path, cfg: EngineConfig, tcfg: TrainConfig, step: int, model: nn.Module,
                     ema: EMA, opt: torch.optim.Optimizer, shard_bytes: int | None = None) -> None:
    tensors: dict[str, torch.Tensor] = {}
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    tensors.update({f"ema.{k}": v for k, v in ema.shadow.items()})
    opt_state = opt.state_dict()
    scalars: dict[str, dict[str, float]] = {}
    for idx, st in opt_state["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val) and val.ndim > 0:
                tensors[f"opt.{idx}.{name}"] = val
            else:
                scalars.setdefault(str(idx), {})[name] = float(val)
    extra = {"train_config": tcfg.to_json(), "step": str(step), "opt_scalars": json.dumps(scalars),
             "opt_groups": json.dumps(opt_state["param_groups"])}
    # Write into a fresh folder, then swap folders: a stop mid-write never loses the last checkpoint.
    folder = path.parent
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    for d in (tmp, old):
        shutil.rmtree(d, ignore_errors=True)
    save_weights(tmp / path.name, tensors, cfg, kind="train_state", shard_bytes=shard_bytes, extra=extra)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_train_state(path: Path, model: nn.Module, ema: EMA, opt: torch.optim.Optimizer) -> tuple[int, EngineConfig]:
    cfg, state, meta = load_weights(path)
    if meta.get("avacast_kind") != "train_state":
        raise CheckpointError(f"{path.name}: not a training checkpoint")
    model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    for k, old in ema.shadow.items():  # the checkpoint loads on the CPU; the shadow lives with the model
        ema.shadow[k] = state[f"ema.{k}"].to(old.device, torch.float32).clone()
    scalars = json.loads(meta["opt_scalars"])
    opt_state: dict = {"state": {}, "param_groups": json.loads(meta["opt_groups"])}
    for k, v in state.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            opt_state["state"].setdefault(int(idx), {})[name] = v
    for idx, vals in scalars.items():
        for name, val in vals.items():
            opt_state["state"].setdefault(int(idx), {})[name] = torch.tensor(val)
    opt.load_state_dict(opt_state)
    return int(meta["step"]), cfg


def ema_state(path: Path) -> tuple[EngineConfig, dict[str, torch.Tensor]]:
    """The EMA weights of a training checkpoint (what releases ship)."""
    cfg, state, _ = load_weights(path)
    return cfg, {k[4:]: v for k, v in state.items() if k.startswith("ema.")}
