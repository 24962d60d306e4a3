"""Causal 3D convolution with explicit streaming state (DESIGN.md §5.4).

Time is causal: output frame t sees input frames <= t. The clip start is padded by repeating the first
frame, so a chunked run that carries the last (k-1) input frames forward equals the whole-clip run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class StreamState:
    """Cached input frames of every causal conv in a network, keyed by module name.

    `started` is False until the first chunk (which holds the clip's first frame) has passed.
    """

    frames: dict[str, torch.Tensor] = field(default_factory=dict)
    started: bool = False


class CausalConv3d(nn.Module):
    """Conv3d, causal in time, 'same' in space. x: [B,C,T,H,W] -> [B,Cout,T,H,W]."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, time_kernel: int = 3):
        super().__init__()
        self.time_pad = time_kernel - 1
        self.conv = nn.Conv3d(cin, cout, (time_kernel, kernel, kernel), padding=(0, kernel // 2, kernel // 2))
        self.key = ""  # set by `name_stream_modules` so states survive model copies

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        if self.time_pad == 0:
            return self.conv(x)
        # Before the clip's first chunk has passed, cached frames (possibly preallocated) are ignored.
        past = state.frames.get(self.key) if state is not None and state.started else None
        if past is None:  # clip start: repeat the first frame
            past = x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1)
        xp = torch.cat([past.to(x.dtype), x], dim=2)  # [B,C,k-1+T,H,W]
        if state is not None:
            new = xp[:, :, -self.time_pad:].detach()
            held = state.frames.get(self.key)
            if held is not None and held.shape == new.shape:
                held.copy_(new)  # in place: a captured CUDA graph keeps reading the same buffer
            else:
                state.frames[self.key] = new.clone()
        return self.conv(xp)


def name_stream_modules(root: nn.Module) -> None:
    """Give every CausalConv3d a unique key (its module path) for StreamState lookups."""
    for name, module in root.named_modules():
        if isinstance(module, CausalConv3d):
            module.key = name


class CausalConv1d(nn.Module):
    """Conv1d causal in time for audio features. x: [B,C,T] -> [B,Cout,T]."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int = 1):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(cin, cout, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))
