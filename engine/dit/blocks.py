"""DiT building blocks: timestep embedding and the AdaLN transformer block."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.nn.attention import merge_heads, split_heads
from engine.nn.norm import RMSNorm
from engine.nn.rope import apply_rope

AttnFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of t in [0,1] (scaled by 1000). t: [...] -> [..., dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    ang = 1000.0 * t.float()[..., None] * freqs
    return torch.cat([ang.cos(), ang.sin()], dim=-1)


class TimestepEmbed(nn.Module):
    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t [...] -> [..., D]."""
        return self.mlp(timestep_features(t, self.freq_dim).to(self.mlp[0].weight.dtype))


class DiTBlock(nn.Module):
    """Pre-norm attention + MLP with per-block AdaLN (shift, scale, gate) x 2 and QK-norm."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1 = RMSNorm(dim, dim=-1, affine=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(dim // heads, dim=-1)
        self.k_norm = RMSNorm(dim // heads, dim=-1)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = RMSNorm(dim, dim=-1, affine=False)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def qkv_heads(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]):
        """h [B,N,D] -> q, k, v [B,heads,N,hd] with QK-norm and RoPE."""
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(h).chunk(3, dim=-1))
        q, k = self.q_norm(q), self.k_norm(k)
        return apply_rope(q, *rope), apply_rope(k, *rope), v

    def forward(self, x: torch.Tensor, cond: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                attn: AttnFn) -> torch.Tensor:
        """x [B,G,L,D] tokens in G groups of L (one timestep per group), cond [B,G,D] -> [B,G,L,D]."""
        b, g, l, d = x.shape
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(F.silu(cond)).unsqueeze(2).chunk(6, dim=-1)  # [B,G,1,D] each
        h = (self.norm1(x) * (1 + sc1) + sh1).reshape(b, g * l, d)
        q, k, v = self.qkv_heads(h, rope)
        o = self.proj(merge_heads(attn(q, k, v))).view(b, g, l, d)
        x = x + g1 * o
        return x + g2 * self.mlp(self.norm2(x) * (1 + sc2) + sh2)
