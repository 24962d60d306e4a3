"""Weights as safetensors only (DESIGN.md §5.10), with the EngineConfig JSON in the metadata.

A release can be split into size-capped shards `NAME-00001-of-0000N.safetensors`; a tensor larger than the
cap is cut along dim 0 into parts that the loader joins. Every failure is one line naming the problem.
"""
from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from engine.config import EngineConfig

META_CONFIG = "avacast_config"
META_KIND = "avacast_kind"
_PART = re.compile(r"^(.*)\.__part(\d+)$")
_SHARD = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.safetensors$")


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message says why in one line."""


def save_weights(path: str | Path, state: dict[str, torch.Tensor], cfg: EngineConfig, kind: str = "model",
                 shard_bytes: int | None = None, dtype: torch.dtype | None = None,
                 extra: dict[str, str] | None = None) -> list[Path]:
    """Write `state` (optionally cast to `dtype`) with cfg in the metadata -> written file paths."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {META_CONFIG: cfg.to_json(), META_KIND: kind, **(extra or {})}
    tensors = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in state.items()}
    if shard_bytes is None:
        save_file(tensors, str(path), metadata=meta)
        return [path]
    reserve = len(json.dumps(meta)) + 4096  # header: metadata plus ~100 bytes per tensor entry
    shards = _pack_shards(_split_large(tensors, shard_bytes - reserve), shard_bytes - reserve)
    stem = path.name.removesuffix(".safetensors")
    out = []
    for i, shard in enumerate(shards):
        p = path.with_name(f"{stem}-{i + 1:05d}-of-{len(shards):05d}.safetensors")
        save_file(shard, str(p), metadata=meta)
        out.append(p)
    return out


def _split_large(tensors: dict[str, torch.Tensor], cap: int) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, v in tensors.items():
        size = v.numel() * v.element_size()
        if size <= cap or v.ndim == 0:
            out[k] = v
            continue
        parts = math.ceil(size / cap)
        for i, piece in enumerate(torch.tensor_split(v, parts, dim=0)):
            out[f"{k}.__part{i}"] = piece.contiguous()
    return out


def _pack_shards(tensors: dict[str, torch.Tensor], cap: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for k, v in tensors.items():
        size = v.numel() * v.element_size()
        if used and used + size + 128 * len(shards[-1]) > cap:
            shards.append({})
            used = 0
        shards[-1][k] = v
        used += size
    return shards


def shard_files(path: str | Path) -> list[Path]:
    """The files that make up a weights path: itself, or all `stem-0000i-of-0000N` shards."""
    path = Path(path)
    if path.is_file():
        m = _SHARD.match(path.name)
        if not m:
            return [path]
        path = path.with_name(m.group(1) + ".safetensors")
    stem = path.name.removesuffix(".safetensors")
    found = sorted(path.parent.glob(f"{stem}-*-of-*.safetensors"))
    if not found:
        raise CheckpointError(f"weights file not found: {path}")
    total = int(_SHARD.match(found[0].name).group(3))  # type: ignore[union-attr]
    if len(found) != total:
        raise CheckpointError(f"{path.name}: expected {total} shards, found {len(found)}")
    return found


def load_weights(path: str | Path) -> tuple[EngineConfig, dict[str, torch.Tensor], dict[str, str]]:
    """-> (config, state dict, metadata). Raises CheckpointError with a one-line reason."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    files = shard_files(path)
    state: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {}
    for f in files:
        try:
            from safetensors import safe_open
            with safe_open(str(f), framework="pt") as h:
                meta = h.metadata() or {}
            state.update(load_file(str(f)))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{f.name}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    if META_CONFIG not in meta:
        raise CheckpointError(f"{Path(path).name}: no Avacast config in the metadata (not an Avacast weights file)")
    try:
        cfg = EngineConfig.from_json(meta[META_CONFIG])
    except (ValueError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{Path(path).name}: bad config in metadata: {e}") from None
    return cfg, _join_parts(state), meta


def _join_parts(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    parts: dict[str, list[tuple[int, torch.Tensor]]] = {}
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        m = _PART.match(k)
        if m:
            parts.setdefault(m.group(1), []).append((int(m.group(2)), v))
        else:
            out[k] = v
    for k, pieces in parts.items():
        out[k] = torch.cat([p for _, p in sorted(pieces, key=lambda x: x[0])], dim=0)
    return out


def load_into(module: nn.Module, state: dict[str, torch.Tensor], name: str, prefix: str = "",
              partial: bool = False) -> int:
    """Copy `state` (keys under `prefix`) into `module`, failing on any missing/unexpected/misshapen tensor.
    partial (warm starts): only the module's own tensors are taken, the others keep their values; at least
    one must match. -> the number of tensors copied."""
    own = module.state_dict()
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if partial:
        sub = {k: v for k, v in sub.items() if k in own}
        if not sub:
            raise CheckpointError(f"{name}: no tensor of this model")
    missing = [] if partial else sorted(set(own) - set(sub))
    unexpected = sorted(set(sub) - set(own))
    bad = sorted(k for k in set(own) & set(sub) if own[k].shape != sub[k].shape)
    if missing or unexpected or bad:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for label, keys in (("missing", missing), ("unexpected", unexpected),
                                               ("wrong shape", bad)) if keys)
        raise CheckpointError(f"{name}: tensors do not match its config ({detail})")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sub.items()}, strict=not partial)
    return len(sub)


def default_weights() -> Path | None:
    """The shipped default model in the `resources` package, if present."""
    try:
        root = resources.files("resources")
    except ModuleNotFoundError:
        return None
    for name in ("avacast-base.safetensors",):
        cand = Path(str(root.joinpath("model", name)))
        try:
            return shard_files(cand)[0]
        except CheckpointError:
            continue
    return None


def generator_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A generator export's own tensors: audio encoder + DiT + vae.latent_scale (the scale of the latents it
    was trained on), without the VAE weights it may carry (`avacast release` joins it to a VAE)."""
    return {k: v for k, v in state.items() if not k.startswith("vae.") or k == "vae.latent_scale"}
