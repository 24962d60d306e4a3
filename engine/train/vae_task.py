"""VAE training task: random clip windows (progressive length), random reference count including 0,
flip/colour/zoom augmentation; loss L1 + SSIM + KL (DESIGN.md §2: no hub-weight perceptual loss).

Decoder-only rounds (`freeze_encoder`) keep the latent space, so a generator trained on it stays valid; with
`latent_noise` the decoder learns to decode imperfect latents, such as the generator's (round 6: it then
smooths what it decodes, less mouth motion; docs/TRAINING.md). With `encoder_jitter` the encoder sees the clip
in random colours while the target and the references keep theirs, which pushes the colours out of the
latent into the references (session 7: halving the latent channels alone left the appearance in the latent).
With `adversarial` > 0, discriminators of the frame and of the mouth add a term against blur
(engine/train/adversarial.py)."""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from engine.config import EngineConfig
from engine.train.adversarial import Adversary, balanced_weight
from engine.train.config import TrainConfig
from engine.train.data import seeded, ClipData, augment, randint, to_tensor
from engine.train.losses import mouth_weights, psnr, ssim, video_frames
from engine.vae.model import CausalVAE, kl_loss


ENCODER_PARTS = ("e1_in", "e1", "e1_norm", "e2", "e2_out")  # CausalVAE modules that make the latent


def clip_frames(tcfg: TrainConfig, step: int) -> int:
    """Progressive clip length: 4k+1 frames from start to end over the first half of training."""
    k0, k1 = (tcfg.clip_frames_start - 1) // 4, (tcfg.clip_frames_end - 1) // 4
    frac = min(1.0, step / max(1, tcfg.total_steps // 2))
    return 4 * (k0 + int(round(frac * (k1 - k0)))) + 1


def colour_jitter(video: torch.Tensor, strength: float, g: torch.Generator) -> torch.Tensor:
    """Per clip of video [B,3,F,H,W] in [-1,1]: a random 3x3 colour mix around the identity (off-diagonal up
    to strength/2), channel gains 1 +- strength and a brightness shift of up to +-strength/2 -> same shape."""
    b = video.shape[0]
    mix = torch.eye(3) + strength * 0.5 * (2 * torch.rand(b, 3, 3, generator=g) - 1) * (1 - torch.eye(3))
    mix = mix * (1 + strength * (2 * torch.rand(b, 3, 1, generator=g) - 1))  # [B,3,3]
    shift = strength * 0.5 * (2 * torch.rand(b, 1, generator=g) - 1)  # [B,1]
    out = torch.einsum("bij,bjfhw->bifhw", mix.to(video), video) + shift.to(video).view(b, 1, 1, 1, 1)
    return out.clamp(-1, 1)


class VAEStep(nn.Module):
    """The trained module; forward returns the loss so DDP sees one call per step."""

    def __init__(self, cfg: EngineConfig, freeze_encoder: bool = False, adversarial: bool = False,
                 adversarial_mouth: float = 1.0):
        super().__init__()
        self.vae = CausalVAE(cfg.vae)
        self.freeze_encoder = freeze_encoder
        # training only: never exported
        self.adversary = Adversary(mouth_weight=adversarial_mouth) if adversarial else None
        if freeze_encoder:  # E1 also makes the reference features: they stay as the encoder made them
            for part in ENCODER_PARTS:
                getattr(self.vae, part).requires_grad_(False)

    def forward(self, video: torch.Tensor, refs: torch.Tensor, noise: torch.Tensor, tcfg: TrainConfig,
                corrupt: tuple[torch.Tensor, torch.Tensor] | None = None, enc_video: torch.Tensor | None = None,
                adv_weight: torch.Tensor | float = 0.0):
        """video [B,3,F,H,W] (the target), refs [B,R,3,H,W], noise like the latent, corrupt = (sigma [B] in
        latent stds, noise like the latent) or None, enc_video: what the encoder sees instead of video (a
        colour-jittered copy) or None, adv_weight: this step's weight of the adversarial term relative to the
        reconstruction loss, by their gradients at the decoder's output layer (the discriminators train
        whenever there are any) -> (loss, logs)."""
        with torch.no_grad() if self.freeze_encoder else nullcontext():
            mean, logvar = self.vae.encode(video if enc_video is None else enc_video)
        z = mean + torch.exp(0.5 * logvar) * noise
        if corrupt is not None:
            sigma, extra = corrupt
            z = z + sigma.view(-1, 1, 1, 1, 1) * mean.detach().float().std() * extra
        recon = self.vae.decode(z, self.vae.ref_features(refs))
        a, b = video_frames(recon.float()), video_frames(video.float())  # [N,3,H,W]
        err = (a - b).abs()
        l1 = err.mean()
        s = ssim(a, b)
        kl = kl_loss(mean.float(), logvar.float())
        logs = {"l1": l1.detach(), "ssim": s.detach(), "kl": kl.detach(), "psnr": psnr(a, b).detach()}
        if tcfg.mouth_weight != 1:  # the mouth's pixels count more (what lip sync needs; a small share of L1)
            w = mouth_weights(*a.shape[-2:], tcfg.mouth_weight).to(err.device)  # [H,W]
            l1 = (err * w).mean() / w.mean()
            logs["l1_weighted"] = l1.detach()
        loss = l1 + tcfg.ssim_weight * (1 - s) + tcfg.kl_weight * kl
        if self.adversary is not None:
            g, d = self.adversary(a, b)
            weight = loss.new_zeros(())
            if torch.is_grad_enabled() and float(adv_weight) > 0:
                weight = balanced_weight(loss, g, self.vae.d2_out.conv.weight, adv_weight)
            loss = loss + weight * g + d
            logs |= {"g_adv": g.detach(), "d_hinge": d.detach(), "adv_effective": weight}
        return loss, logs


class VAETask:
    name = "vae"

    def __init__(self, cfg: EngineConfig, tcfg: TrainConfig, clips: list[ClipData]):
        self.cfg, self.tcfg = cfg, tcfg
        longest = max(len(c.frames) for c in clips)
        self.clips = [c for c in clips if len(c.frames) >= min(tcfg.clip_frames_end, longest)]
        if not self.clips:
            raise ValueError("no training clips long enough")
        self.module = seeded(VAEStep, cfg, tcfg.freeze_encoder, tcfg.adversarial > 0, tcfg.adversarial_mouth,
                             seed=tcfg.seed)

    def batch(self, g: torch.Generator, step: int, device: torch.device) -> dict:
        f = clip_frames(self.tcfg, step)
        r = randint(g, self.tcfg.max_refs + 1)  # one count per step (0 included): stackable batches
        videos, refs = [], []
        for _ in range(self.tcfg.batch):
            c = self.clips[randint(g, len(self.clips))]
            f_use = min(f, 4 * ((len(c.frames) - 1) // 4) + 1)
            start = randint(g, len(c.frames) - f_use + 1)
            video = to_tensor(c.frames[start : start + f_use])[:, :f]
            idx = [randint(g, len(c.frames)) for _ in range(r)]
            ref = to_tensor(c.frames[idx]).permute(1, 0, 2, 3) if r else torch.zeros(0, 3, *video.shape[2:])
            video, ref = augment(video, ref, g)
            videos.append(video)
            refs.append(ref)
        n = min(v.shape[1] for v in videos)
        video = torch.stack([v[:, :n] for v in videos]).to(device)
        t = 1 + (n - 1) // 4
        s = self.cfg.vae.latent_size
        shape = (len(videos), self.cfg.vae.latent_channels, t, s, s)
        out = {"video": video, "refs": torch.stack(refs).to(device),
               "noise": torch.randn(shape, generator=g).to(device),
               # [] on the CPU (reading it never waits for the GPU), a tensor like the rest of the batch
               "adv_weight": torch.tensor(self.tcfg.adversarial if step >= self.tcfg.adversarial_start else 0.0)}
        if self.tcfg.latent_noise > 0:  # drawn last: runs without it keep their batches
            sigma = self.tcfg.latent_noise * torch.rand(len(videos), generator=g)
            out["corrupt"] = (sigma.to(device), torch.randn(shape, generator=g).to(device))
        if self.tcfg.encoder_jitter > 0:  # drawn after everything else, likewise
            out["enc_video"] = colour_jitter(video, self.tcfg.encoder_jitter, g).to(device)
        return out

    def loss(self, module: nn.Module, batch: dict):
        return module(batch["video"], batch["refs"], batch["noise"], self.tcfg, batch.get("corrupt"),
                      batch.get("enc_video"), batch["adv_weight"])

    def param_groups(self, module: nn.Module) -> list[dict]:
        """AdamW groups: the VAE with the loop's settings; its fine reference fusion (if any) with its own
        learning-rate scale; the discriminators (if any) with the usual GAN settings, betas (0.5, 0.9) and no
        weight decay, and their own learning-rate scale."""
        def kind(name: str) -> str:
            if name.startswith("adversary."):
                return "adv"
            return "fine" if name.removeprefix("vae.").startswith(CausalVAE.FINE_PREFIXES) else "vae"

        params: dict[str, list] = {"vae": [], "fine": [], "adv": []}
        for n, p in module.named_parameters():
            params[kind(n)].append(p)
        groups = [{"params": params["vae"]}]
        if params["fine"]:
            groups.append({"params": params["fine"], "lr_scale": self.tcfg.fine_refs_lr_scale})
        if params["adv"]:
            groups.append({"params": params["adv"], "betas": (0.5, 0.9), "weight_decay": 0.0,
                           "lr_scale": self.tcfg.disc_lr_scale})
        return groups

    def export(self, ema: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """EMA VAE weights under the `vae.` prefix of a full model (discriminators: in the checkpoint only)."""
        return {k: v for k, v in ema.items() if k.startswith("vae.")}  # keys as in AvacastModel
