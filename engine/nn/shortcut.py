"""Causal residual resampling: DC-AE's space<->channel shortcut, extended to time (paper §VAE).

Down: fold a 2x step of time or space into channels, then average channel groups to the target width.
Up: duplicate channels, then unfold into time or space. The learned path resamples the same way and is
summed with the shortcut. The first frame is its own latent frame: on the way down it is folded with
itself, on the way up only the last of its two unfolded frames is kept.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.nn.conv import CausalConv3d, StreamState


def channel_average(x: torch.Tensor, cout: int) -> torch.Tensor:
    """[B,C,...] -> [B,cout,...] by averaging groups of C/cout adjacent channels."""
    c = x.shape[1]
    if c % cout:
        raise ValueError(f"cannot average {c} channels into {cout}")
    return x.unflatten(1, (cout, c // cout)).mean(dim=2)


def channel_repeat(x: torch.Tensor, cout: int) -> torch.Tensor:
    """[B,C,...] -> [B,cout,...] by repeating each channel cout/C times."""
    c = x.shape[1]
    if cout % c:
        raise ValueError(f"cannot duplicate {c} channels into {cout}")
    return x.repeat_interleave(cout // c, dim=1)


def time_fold(x: torch.Tensor, first: bool) -> torch.Tensor:
    """[B,C,T,H,W] -> [B,2C,T',H,W]. With `first`, frame 0 is folded with itself (T = 1 + 2k -> 1 + k)."""
    if first:
        head = torch.cat([x[:, :, :1], x[:, :, :1]], dim=1)  # [B,2C,1,H,W]
        x = x[:, :, 1:]
    b, c, t, h, w = x.shape
    if t % 2:
        raise ValueError(f"time fold needs an even frame count after the first, got {t}")
    body = x.view(b, c, t // 2, 2, h, w).transpose(2, 3).reshape(b, 2 * c, t // 2, h, w)
    return torch.cat([head, body], dim=2) if first else body


def time_unfold(x: torch.Tensor, first: bool) -> torch.Tensor:
    """[B,2C,T,H,W] -> [B,C,2T(-1),H,W]; with `first`, latent frame 0 yields one frame."""
    b, c2, t, h, w = x.shape
    y = x.view(b, c2 // 2, 2, t, h, w).transpose(2, 3).reshape(b, c2 // 2, 2 * t, h, w)
    return y[:, :, 1:] if first else y


def space_fold(x: torch.Tensor) -> torch.Tensor:
    """[B,C,T,H,W] -> [B,4C,T,H/2,W/2]."""
    b, c, t, h, w = x.shape
    y = F.pixel_unshuffle(x.transpose(1, 2).reshape(b * t, c, h, w), 2)  # [BT,4C,H/2,W/2]
    return y.view(b, t, 4 * c, h // 2, w // 2).transpose(1, 2)


def space_unfold(x: torch.Tensor) -> torch.Tensor:
    """[B,4C,T,H,W] -> [B,C,T,2H,2W]."""
    b, c4, t, h, w = x.shape
    y = F.pixel_shuffle(x.transpose(1, 2).reshape(b * t, c4, h, w), 2)  # [BT,C,2H,2W]
    return y.view(b, t, c4 // 4, 2 * h, 2 * w).transpose(1, 2)


class Resample(nn.Module):
    """One 2x resampling step in time or space, down or up, with the residual shortcut."""

    def __init__(self, cin: int, cout: int, axis: str, up: bool, time_kernel: int):
        super().__init__()
        if axis not in ("time", "space"):
            raise ValueError(axis)
        self.axis, self.up, self.cout = axis, up, cout
        factor = 2 if axis == "time" else 4
        conv_out = cout * factor if up else cout // factor
        if not up and cout % factor:
            raise ValueError(f"{cout} channels do not split into {factor} groups")
        # Space steps mix no time (kernel 1 in t): 3x fewer weights in the widest convolutions.
        self.conv = CausalConv3d(cin, conv_out, 3, time_kernel if axis == "time" else 1)
        # Validate the shortcut's channel arithmetic at build time, not at first use.
        (channel_repeat if up else channel_average)(torch.zeros(1, cin * (1 if up else factor)),
                                                    cout * (factor if up else 1))

    def _move(self, x: torch.Tensor, first: bool) -> torch.Tensor:
        if self.axis == "time":
            return time_unfold(x, first) if self.up else time_fold(x, first)
        return space_unfold(x) if self.up else space_fold(x)

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        first = state is None or not state.started
        if self.up:
            factor = 2 if self.axis == "time" else 4
            short = self._move(channel_repeat(x, self.cout * factor), first)
        else:
            short = channel_average(self._move(x, first), self.cout)
        return short + self._move(self.conv(x, state), first)
