"""Attention helpers: multi-head projections around torch's fused SDPA (flash / memory-efficient)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.nn.norm import RMSNorm
from engine.nn.rope import apply_rope


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B,N,D] -> [B,heads,N,D/heads]."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B,heads,N,hd] -> [B,N,heads*hd]."""
    return x.transpose(1, 2).flatten(2)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """q [B,h,Nq,hd], k/v [B,h,Nk,hd], mask [Nq,Nk] or [1,Nk] bool (True = visible) -> [B,h,Nq,hd]."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class CrossAttention(nn.Module):
    """Queries from x, keys/values from a context sequence; QK-normalised. [B,N,D] x [B,M,Dc] -> [B,N,D]."""

    def __init__(self, dim: int, ctx_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(ctx_dim, 2 * dim)
        self.q_norm = RMSNorm(dim // heads, dim=-1)
        self.k_norm = RMSNorm(dim // heads, dim=-1)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, rope_q=None, rope_k=None) -> torch.Tensor:
        q = self.q_norm(split_heads(self.q(x), self.heads))
        k, v = (split_heads(t, self.heads) for t in self.kv(ctx).chunk(2, dim=-1))
        k = self.k_norm(k)
        if rope_q is not None:
            q = apply_rope(q, *rope_q)
        if rope_k is not None:
            k = apply_rope(k, *rope_k)
        return self.out(merge_heads(attend(q, k, v)))
