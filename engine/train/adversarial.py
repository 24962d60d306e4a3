"""Adversarial term for the VAE (`train vae --adversarial W`, session 10's next step for lip sync).

L1 + SSIM average what the decoder is unsure of: at 29 dB PSNR the reconstructed mouth is a blurred, nearly
closed one (docs/TRAINING.md round 10). A discriminator that tells real frames from reconstructions punishes
that blur. Two PatchGAN discriminators (pix2pix / VQGAN style, trained from scratch: no downloaded weights,
DESIGN.md §2) judge the whole frame and the mouth crop (`engine.config.MOUTH_BOX` widened by MOUTH_MARGIN).

One optimiser trains the VAE and the discriminators together (the training loop has one; the discriminators
are its second parameter group, with GAN betas: `VAETask.param_groups`): the VAE's term sees the discriminators
through detached parameters (`frozen_call`), and the discriminators' hinge loss sees detached reconstructions,
so each side gets only its own gradient.

The term's weight is balanced (VQGAN's adaptive weight): `train vae --adversarial W` makes its gradient at the
decoder's output layer W times the reconstruction loss's there, whatever the discriminators' scale. A fixed
weight was fragile (docs/TRAINING.md round 11): 0.1 took the VAE from 27.5 to 16.5 dB PSNR within 300 steps of
a strong discriminator, 0.003 changed nothing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from engine.config import mouth_slices

MOUTH_MARGIN = 0.1  # of the crop's side, added around MOUTH_BOX: the lips, teeth and chin edge


class PatchDiscriminator(nn.Module):
    """Frames [N,3,H,W] in [-1,1] -> real/fake logits [N,1,H/2^L,W/2^L] (one per overlapping patch)."""

    def __init__(self, width: int = 64, layers: int = 3):
        super().__init__()
        chans = [3] + [width * min(2 ** i, 8) for i in range(layers)]
        body: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(chans, chans[1:])):
            body.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1))
            if i:  # no norm on the first layer (pix2pix)
                body.append(nn.GroupNorm(min(32, cout // 4), cout))
            body.append(nn.LeakyReLU(0.2))
        body.append(nn.Conv2d(chans[-1], 1, 3, padding=1))
        self.net = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def mouth_crop(frames: torch.Tensor) -> torch.Tensor:
    """[N,3,H,W] -> the mouth region [N,3,h,w] (MOUTH_BOX widened by MOUTH_MARGIN, clipped to the frame)."""
    rows, cols = mouth_slices(*frames.shape[-2:], MOUTH_MARGIN)
    return frames[..., rows, cols]


def frozen_call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) with its parameters detached: gradients reach x, never the module."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return functional_call(module, params, (x,))


def balanced_weight(rec: torch.Tensor, g: torch.Tensor, layer: torch.Tensor, w: float | torch.Tensor,
                    cap: float = 1e4) -> torch.Tensor:
    """The weight [] that makes w * weight * grad(g) as large as grad(rec) at the parameter `layer` (by norm):
    w * |grad rec| / |grad g|, capped, without gradient. The graph stays for the step's backward."""
    grad_rec, = torch.autograd.grad(rec, layer, retain_graph=True)
    grad_g, = torch.autograd.grad(g, layer, retain_graph=True)
    return (w * grad_rec.float().norm() / (grad_g.float().norm() + 1e-6)).clamp(max=cap).detach()


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss on logits: real pushed above +1, fake below -1."""
    return F.relu(1 - real.float()).mean() + F.relu(1 + fake.float()).mean()


class Adversary(nn.Module):
    """The frame and mouth discriminators -> (VAE term, discriminator term) for one batch of frames."""

    def __init__(self, width: int = 64, mouth_weight: float = 1.0):
        super().__init__()
        self.frame = PatchDiscriminator(width)
        self.mouth = PatchDiscriminator(width)
        self.mouth_weight = mouth_weight  # the mouth discriminator's share of the VAE's term, x the frame's

    def forward(self, recon: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """recon, real [N,3,H,W] in [-1,1] -> (g, d): g (to minimise by the VAE) = -mean logit of the
        reconstructions (the mouth's counted mouth_weight times); d (to minimise by the discriminators) = hinge
        loss, reconstructions detached."""
        g = d = recon.new_zeros((), dtype=torch.float32)
        for disc, crop, w in ((self.frame, lambda x: x, 1.0), (self.mouth, mouth_crop, self.mouth_weight)):
            g = g - w * frozen_call(disc, crop(recon)).float().mean()
            d = d + hinge_d_loss(disc(crop(real)), disc(crop(recon.detach())))
        return g, d
