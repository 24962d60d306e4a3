"""The latent space's motion directions, for the identity hold (session 9).

The hold (`engine/runtime/hold.py`) pulls the slow part of the generated latents to the portrait's latent. Along the
directions in which a person's latents move within a clip (mouth opening, head pose, blinks) that pull does
harm: it imposes the portrait's expression (an open smile stays open in pauses) and flattens the slow
speech/pause rhythm of the mouth. Those directions are the leading eigenvectors of the within-clip covariance
of a latent cache; the hold leaves the first `SamplerConfig.hold_free_dims` of them alone (measured in session 9:
no better than holding them, so the shipped model stores none)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from engine.config import VAEConfig
from engine.io.checkpoint import load_weights


def cache_latents(path: str | Path) -> tuple[VAEConfig, list[torch.Tensor]]:
    """The latents [C,T,h,w] of every clip of a latent cache (`train generator --save-latents`), audio or not."""
    cfg, state, meta = load_weights(path)
    if meta.get("avacast_kind") != "latent_cache":
        raise ValueError(f"{Path(path).name}: not a latent cache (make one with train generator --save-latents)")
    return cfg.vae, [state[f"{cid}.latents"].float() for cid in json.loads(meta["clips"])]


def motion_basis(clips: list[torch.Tensor], dims: int) -> tuple[torch.Tensor, float]:
    """clips: latents [C,T,h,w] -> (basis [dims, C*h*w] with orthonormal rows, the leading eigenvectors of the
    pooled within-clip covariance; the share of the within-clip variance they span). Each clip's first latent
    (a single-frame image latent in the causal VAE) is left out."""
    cov, n = None, 0
    for z in clips:
        x = z[:, 1:].float().permute(1, 0, 2, 3).reshape(z.shape[1] - 1, -1)  # [T-1, D]
        if x.shape[0] < 2:
            continue
        x = x - x.mean(0, keepdim=True)
        cov = x.T @ x if cov is None else cov + x.T @ x  # [D, D]
        n += x.shape[0] - 1
    if cov is None:
        raise ValueError("no clip with 3 or more latent frames: cannot estimate motion directions")
    if not 1 <= dims <= cov.shape[0]:
        raise ValueError(f"motion dims must be in 1..{cov.shape[0]}, got {dims}")
    evals, evecs = torch.linalg.eigh(cov.double() / n)  # ascending
    basis = evecs[:, -dims:].flip(1).T.contiguous().float()  # [dims, D], largest variance first
    return basis, float(evals[-dims:].sum() / evals.clamp(min=0).sum())

