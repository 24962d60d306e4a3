"""Rectified flow: shifted schedule, Euler steps, classifier-free guidance, loss (paper §Generator).

Convention: x_t = (1 - t) * x0 + t * noise, t=1 is pure noise; the model predicts velocity noise - x0.
"""
from __future__ import annotations

import torch


def shift_time(t: torch.Tensor | float, shift: float):
    """Timestep shift (SD3): spends more steps at high noise for shift > 1."""
    return shift * t / (1.0 + (shift - 1.0) * t)


def schedule(steps: int, shift: float) -> list[float]:
    """Decreasing timesteps from 1 to 0, steps+1 values."""
    return [float(shift_time(1.0 - i / steps, shift)) for i in range(steps + 1)]


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """t broadcast from the left: [B] or [B,T] against x [B,C,T,h,w] via `expand_time`."""
    return (1.0 - t) * x0 + t * noise


def euler_step(x: torch.Tensor, v: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    return x + (t_next - t) * v


def cfg_combine(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    return v_uncond + scale * (v_cond - v_uncond)


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - x0


def flow_loss(v_pred: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return (v_pred.float() - velocity_target(x0, noise).float()).pow(2).mean()


def sample_train_t(shape: tuple[int, ...], shift: float, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Logit-normal timesteps, shifted like the sampler's schedule."""
    u = torch.sigmoid(torch.randn(shape, generator=generator, device=device))
    return shift_time(u, shift)
