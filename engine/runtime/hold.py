"""The identity hold (`SamplerConfig.identity_hold`, session 8) as device state updated in place, so the
block's captured CUDA graph replays it with the denoising and the commit (session 9).

Each generated latent frame is moved by strength x (the portrait's mean latent - a bias-corrected running
mean of the generated latents over ~hold_seconds): what changes fast (the mouth) passes, the slow drift of
the whole face towards an average one is pulled back to the portrait. With `hold_history` the held latent,
not the raw one, becomes the generator's history (the KV cache), so the generator itself continues from
the portrait's identity instead of drifting further from it. `hold_mouth` scales the pull on the mouth's
latent cells, so a portrait's open mouth need not come back in every pause."""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import torch

from engine.config import FPS, HOLD_MOUTH_MARGIN, TEMPORAL_DOWN, SamplerConfig, mouth_slices


class RunningMean:
    """A bias-corrected exponential running mean of latent frames over ~seconds, as device state updated in place
    (a captured CUDA graph replays it; a live change of the time constant needs no re-capture)."""

    def __init__(self, like: torch.Tensor):
        """like: a [1,C,1,h,w] latent of the session's shape and device."""
        self.acc = torch.zeros_like(like, dtype=torch.float32)  # EMA from zero ...
        self.weight = torch.zeros((), device=like.device)  # ... and its total weight
        self.k = torch.zeros((), device=like.device)  # EMA weight of one latent frame

    def configure(self, seconds: float) -> None:
        self.k.fill_(1.0 - math.exp(-TEMPORAL_DOWN / FPS / seconds))

    def reset(self) -> None:
        self.acc.zero_()
        self.weight.zero_()

    def update(self, z: torch.Tensor) -> torch.Tensor:
        """Take one latent frame z [1,C,1,h,w] (float32) in -> the mean, itself included."""
        self.acc.lerp_(z, self.k)
        self.weight.lerp_(torch.ones_like(self.weight), self.k)
        return self.acc / self.weight

    @contextmanager
    def preserved(self) -> Iterator[None]:
        """Put the mean back afterwards (a graph capture's warm-up run must not advance it)."""
        saved = self.acc.clone(), self.weight.clone()
        try:
            yield
        finally:
            self.acc.copy_(saved[0])
            self.weight.copy_(saved[1])


def fill_cells(cells: torch.Tensor, rest: float, mouth: float) -> None:
    """A per-latent-cell map [1,1,1,h,w] in place: `mouth` on the mouth's cells (MOUTH_BOX widened by
    HOLD_MOUTH_MARGIN), `rest` elsewhere."""
    rows, cols = mouth_slices(*cells.shape[-2:], HOLD_MOUTH_MARGIN)
    cells.fill_(rest)
    cells[..., rows, cols] = mouth


class IdentityHold:
    def __init__(self, ref_mean: torch.Tensor, residual: float = 0.0, free: torch.Tensor | None = None):
        """ref_mean [1,C,1,h,w] scaled latents; residual: the model's ref_residual scale (its flow makes
        (latent - ref_mean) x residual); free [k, C*h*w] orthonormal motion directions left alone, or None."""
        self.ref = ref_mean.float()
        self.residual = residual
        self.free = free
        self.mean = RunningMean(self.ref)  # of the generated latents
        self.gain = torch.zeros_like(self.ref[:, :1])  # [1,1,1,h,w] the pull's strength per latent cell

    def configure(self, sp: SamplerConfig) -> None:
        """Strength and time constant, outside graph replays (a live change needs no re-capture)."""
        self.mean.configure(sp.hold_seconds)
        fill_cells(self.gain, sp.identity_hold, sp.identity_hold * sp.hold_mouth)

    def reset(self) -> None:
        self.mean.reset()

    def preserved(self) -> AbstractContextManager[None]:
        """Put the running mean back afterwards (a graph capture's warm-up run must not advance it)."""
        return self.mean.preserved()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [1,C,bf,h,w], the flow's output -> the held output, same space and dtype; advances the mean."""
        z = x.float()
        if self.residual:  # the flow's space -> latents
            z = z / self.residual + self.ref
        out = []
        for i in range(z.shape[2]):
            zi = z[:, :, i : i + 1]
            pull = self.ref - self.mean.update(zi)  # [1,C,1,h,w]
            if self.free is not None:  # minus its part along the free motion directions
                flat = pull.reshape(1, -1)  # [1, C*h*w]
                pull = (flat - (flat @ self.free.T) @ self.free).reshape(pull.shape)
            out.append(zi + self.gain * pull)
        z = torch.cat(out, dim=2)
        if self.residual:
            z = (z - self.ref) * self.residual
        return z.to(x.dtype)
