"""RMSNorm over the channel axis (the paper's VAE normalisation; also used in the DiT)."""
from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    """Normalise over `dim` (1 for [B,C,...] feature maps, -1 for [B,N,D] tokens).

    Per-position only: no statistics cross time, so it is causal and streaming-exact.
    """

    def __init__(self, channels: int, dim: int = 1, affine: bool = True, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(dim=self.dim, keepdim=True) + self.eps)
        if self.weight is not None:
            shape = [1] * x.ndim
            shape[self.dim] = -1
            y = y * self.weight.float().view(shape)
        return y.to(dtype)
