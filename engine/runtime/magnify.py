"""Motion gain (`SamplerConfig.motion_gain`, `mouth_gain`; session 15): latent motion magnification.

Each latent frame about to be decoded is moved away from a bias-corrected running mean of the latents over
~hold_seconds: z + (gain - 1) x (z - mean). What changes fast (the mouth at speech rates) is scaled by the
gain; what stays (the identity, the portrait's expression) does not move, so a gain cannot push the face away
from the portrait the way scaling the whole latent would. Why: round 13 measured that the VAE's round trip
keeps about 0.4 of the real mouth's amplitude, and the generated mouths open too little. The gain is per
latent cell: `mouth_gain` multiplies it on the mouth's cells (MOUTH_BOX widened by HOLD_MOUTH_MARGIN).

Runs eagerly on the decode path (outside the captured graphs), on a [1,C,bf,h,w] latent: a few small ops.
Measured in session 15 (docs/TRAINING.md round 15): the mouth moves ~1.8x as much at gain 3, lip sync barely
changes, and the frames show stronger artefacts rather than a wider mouth, so the shipped model keeps it off."""
from __future__ import annotations

import torch

from engine.config import SamplerConfig
from engine.runtime.hold import RunningMean, fill_cells


class MotionGain:
    def __init__(self, like: torch.Tensor):
        """like: a [1,C,1,h,w] latent of the session's shape and device."""
        self.mean = RunningMean(like)  # of the latents to be decoded
        self.map = torch.zeros_like(self.mean.acc[:, :1])  # [1,1,1,h,w] gain - 1 per latent cell
        self.active = False

    def configure(self, sp: SamplerConfig) -> None:
        self.mean.configure(sp.hold_seconds)
        fill_cells(self.map, sp.motion_gain - 1.0, sp.motion_gain * sp.mouth_gain - 1.0)
        self.active = sp.motion_gain != 1.0 or sp.mouth_gain != 1.0

    def reset(self) -> None:
        self.mean.reset()

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """z [1,C,bf,h,w] latents -> the same with the fast motion scaled (z itself when off); advances the mean."""
        if not self.active:
            return z
        out = []
        for i in range(z.shape[2]):
            zi = z[:, :, i : i + 1].float()
            out.append(zi + self.map * (zi - self.mean.update(zi)))
        return torch.cat(out, dim=2).to(z.dtype)
