"""Reconstruction losses without hub weights (DESIGN.md §2): L1 + SSIM (+ KL in the VAE trainer)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.config import mouth_slices


def _gauss(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=torch.float32) - size // 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of images [N,C,H,W] in [-1,1] (gaussian window 11, sigma 1.5).

    Always fp32: under bf16 autocast E[x^2] - E[x]^2 cancels catastrophically and the gradients explode.
    """
    with torch.autocast(a.device.type, enabled=False):
        return _ssim32((a.float() + 1) / 2, (b.float() + 1) / 2)


def _ssim32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    c = a.shape[1]
    g = _gauss(device=a.device)
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean()


def mouth_weights(h: int, w: int, weight: float) -> torch.Tensor:
    """[h,w] loss weights for a grid of h x w cells (latent cells or pixels): `weight` on what MOUTH_BOX covers
    (at least one cell), 1 elsewhere."""
    out = torch.ones(h, w)
    out[mouth_slices(h, w)] = weight
    return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of tensors in [-1,1] (peak-to-peak 2)."""
    mse = (a.float().clamp(-1, 1) - b.float().clamp(-1, 1)).pow(2).mean()
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-10))


def video_frames(x: torch.Tensor) -> torch.Tensor:
    """[B,C,F,H,W] -> [B*F,C,H,W]."""
    return x.transpose(1, 2).flatten(0, 1)
