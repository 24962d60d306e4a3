"""Rotary position embedding over (t, y, x) with absolute positions (paper §Generator: 3D RoPE).

Angles are computed in float64 so hours of streaming (large t) keep exact relative phases.
Head dims beyond sum(split) are left unrotated.
"""
from __future__ import annotations

import torch


def rope_angles(pos: torch.Tensor, split: tuple[int, ...], head_dim: int, base: float = 10_000.0) -> torch.Tensor:
    """pos: [N, A] positions per axis -> angles [N, head_dim/2] (float64; zeros on unrotated pairs)."""
    parts = []
    for axis, dims in enumerate(split):
        inv = base ** (-torch.arange(0, dims, 2, dtype=torch.float64, device=pos.device) / dims)  # [dims/2]
        parts.append(pos[:, axis, None].double() * inv)
    rest = head_dim // 2 - sum(split) // 2
    parts.append(torch.zeros(pos.shape[0], rest, dtype=torch.float64, device=pos.device))
    return torch.cat(parts, dim=1)


def rope_tables(pos: torch.Tensor, split: tuple[int, ...], head_dim: int,
                dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (cos, sin), each [N, head_dim/2]."""
    ang = rope_angles(pos, split, head_dim)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B,heads,N,hd] rotated pairwise (interleaved pairs) by cos/sin [N,hd/2]."""
    x2 = x.float().unflatten(-1, (-1, 2))  # [B,h,N,hd/2,2]
    a, b = x2[..., 0], x2[..., 1]
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return out.flatten(-2).to(x.dtype)


def grid_positions(t: int, h: int, w: int, t0: int = 0, device: torch.device | None = None) -> torch.Tensor:
    """Token positions of a [t,h,w] latent grid in (t,y,x) order, frames starting at t0 -> [t*h*w, 3]."""
    tt, yy, xx = torch.meshgrid(
        torch.arange(t0, t0 + t, device=device), torch.arange(h, device=device),
        torch.arange(w, device=device), indexing="ij")
    return torch.stack([tt, yy, xx], dim=-1).reshape(-1, 3)
