"""VAE building blocks: causal residual blocks, encoder/decoder stages, the reference fusion block."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.nn.attention import CrossAttention
from engine.nn.conv import CausalConv3d, StreamState
from engine.nn.norm import RMSNorm
from engine.nn.shortcut import Resample


class ResBlock3d(nn.Module):
    """RMSNorm-SiLU-conv twice, plus identity. [B,C,T,H,W] -> same."""

    def __init__(self, channels: int, time_kernel: int):
        super().__init__()
        self.norm1 = RMSNorm(channels)
        self.conv1 = CausalConv3d(channels, channels, 3, time_kernel)
        self.norm2 = RMSNorm(channels)
        self.conv2 = CausalConv3d(channels, channels, 3, time_kernel)
        nn.init.zeros_(self.conv2.conv.weight)  # start as identity: stable deep residual stacks
        nn.init.zeros_(self.conv2.conv.bias)

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)), state)
        h = self.conv2(F.silu(self.norm2(h)), state)
        return x + h


class Stage(nn.Module):
    """A run of residual blocks and resampling steps, applied in order, all sharing one stream state."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, state)
        return x


def down_stage(cin: int, cout: int, blocks: int, time_down: bool, tk: int) -> Stage:
    """Blocks at cin, then (time step, then) space step to cout: the paper's 'temporal then spatial'."""
    layers: list[nn.Module] = [ResBlock3d(cin, tk) for _ in range(blocks)]
    if time_down:
        layers.append(Resample(cin, cin, "time", up=False, time_kernel=tk))
    layers.append(Resample(cin, cout, "space", up=False, time_kernel=tk))
    return Stage(layers)


def up_stage(cin: int, cout: int, blocks: int, time_up: bool, tk: int) -> Stage:
    """Mirror of `down_stage`: space step to cout, (time step,) then blocks at cout."""
    layers: list[nn.Module] = [Resample(cin, cout, "space", up=True, time_kernel=tk)]
    if time_up:
        layers.append(Resample(cout, cout, "time", up=True, time_kernel=tk))
    layers += [ResBlock3d(cout, tk) for _ in range(blocks)]
    return Stage(layers)


class RefFusionBlock(nn.Module):
    """D_ref block: per-frame self-attention, cross-attention to reference features, MLP. [B,N,D]."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = RMSNorm(dim, dim=-1)
        self.self_attn = CrossAttention(dim, dim, heads)
        self.norm2 = RMSNorm(dim, dim=-1)
        self.cross_attn = CrossAttention(dim, dim, heads)
        self.norm3 = RMSNorm(dim, dim=-1)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        for lin in (self.self_attn.out, self.cross_attn.out, self.mlp[2]):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, refs: torch.Tensor, rope_x, rope_r) -> torch.Tensor:
        """x [B',N,D] frame tokens, refs [B',M,D] reference tokens (a learned null token first)."""
        h = self.norm1(x)
        x = x + self.self_attn(h, h, rope_x, rope_x)
        x = x + self.cross_attn(self.norm2(x), refs, rope_x, rope_r)
        return x + self.mlp(self.norm3(x))
