"""Generator training (paper §Generator): teacher forcing over blocks with the block-causal mask, noise
0..0.7 on history latents, random reference count with null-reference dropout, null-audio dropout (CFG).
The audio encoder trains with the DiT; the VAE is frozen and its latents are cached once per pack.

Two additions of ours (TrainConfig): clips without usable audio may train with a learned "unknown audio"
embedding that only training has (not the CFG null: a null that moves mouths weakens the guidance), and a
share of examples may see the model's own one-step predictions as history instead of the real latents
(error recycling: free-running inference commits its own, blurrier blocks, and the block after them must
still take the person from the references)."""
from __future__ import annotations

import logging

import torch
from torch import nn

from engine.audio.encoder import AudioEncoder
from engine.config import EngineConfig
from engine.dit.model import DiT
from engine.flow.sampler import flow_loss, sample_train_t, velocity_target
from engine.train.config import TrainConfig
from engine.train.data import ClipData, augment, randint, seeded, step_generator, to_tensor
from engine.train.losses import mouth_weights
from engine.vae.model import CausalVAE

log = logging.getLogger(__name__)
REF_POOL = 8  # reference frames cached per clip
SELF_T = (0.5, 1.0)  # noise levels of the one-step predictions used as self-history
UNKNOWN_AUDIO = "video_only_audio"  # training-only parameter: never exported


@torch.no_grad()
def cache_latents(vae: CausalVAE, clips: list[ClipData], device: torch.device, dtype: torch.dtype,
                  short_context: bool = True, augment_copies: int = 0, seed: int = 0) -> list[dict]:
    """Posterior means of each clip (first 4k+1 frames) and of REF_POOL single frames -> unscaled latents.
    short_context: encode with the bounded context of `CausalVAE.encode_short_context` (else the whole
    clip in one causal call, which drifts with our VAE: see there).
    augment_copies: K more entries per clip, each the clip and its reference frames under one random colour
    change and zoom (`data.augment`, seeded by (seed, clip, copy)), mirrored in the odd copies, with the same
    audio: other-looking people for the reference pathway (a portrait the model has never seen)."""
    out = []
    for i, c in enumerate(clips):
        n = 4 * ((len(c.frames) - 1) // 4) + 1
        pick = torch.linspace(0, len(c.frames) - 1, REF_POOL).round().long().tolist()
        video, refs = to_tensor(c.frames[:n]), to_tensor(c.frames[pick]).transpose(0, 1)  # [3,F,H,W], [K,3,H,W]
        audio = None if c.audio is None else torch.from_numpy(c.audio)  # None: a video-only clip
        for k in range(1 + augment_copies):
            v, r = (video, refs) if k == 0 else augment(video, refs, step_generator(seed, i, k), flip=k % 2 == 1)
            mean = _encode(vae, v[None].to(device, dtype), short_context)[0].float().cpu()  # [C,T,h,w]
            ref_lat = vae.encode_refs(r[None].to(device, dtype))[1][0].float().cpu()  # [K,C,h,w]
            out.append({"latents": mean, "refs": ref_lat, "audio": audio, "copy": k})
    return out


def _encode(vae: CausalVAE, video: torch.Tensor, short_context: bool) -> torch.Tensor:
    """[1,3,F,H,W] -> posterior mean [1,C,T,h,w]."""
    return vae.encode_short_context(video) if short_context else vae.encode(video)[0]


def weighted_flow_loss(v: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """The flow loss with per-cell weights [h,w] on v, x0, noise [B,C,T,h,w], normalised by their mean (uniform
    errors give the plain loss; an error on cells of weight W counts W / mean(weights) as much)."""
    err = (v.float() - velocity_target(x0, noise).float()).pow(2)  # [B,C,T,h,w]
    return (err * cells).mean() / cells.mean()


class GeneratorStep(nn.Module):
    def __init__(self, cfg: EngineConfig, mouth_weight: float = 1.0):
        super().__init__()
        self.cfg, self.mouth_weight = cfg, mouth_weight
        self.audio = AudioEncoder(cfg.audio)
        self.dit = DiT(cfg)
        self.video_only_audio = nn.Parameter(torch.zeros(cfg.audio.feature_dim))  # [A] for clips without audio

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        x0, noise, hnoise = batch["x0"], batch["noise"], batch["hist_noise"]  # [B,C,T,h,w]
        bf = self.cfg.dit.block_frames
        feats = torch.cat([self.audio.encode_samples(a[None], j0, j0 + x0.shape[2])
                           for a, j0 in zip(batch["audio"], batch["j0"])]).to(x0.dtype)  # [B,T,A]
        drop_a, mute = batch["drop_audio"][:, None, None], batch["video_only"][:, None, None]
        feats = torch.where(drop_a, self.dit.null_audio.to(feats.dtype).expand_as(feats), feats)
        feats = torch.where(mute, self.video_only_audio.to(feats.dtype).expand_as(feats), feats)
        ref_tok = self.dit.ref_tokens(batch["refs"], drop=batch["drop_refs"])
        def per_frame(t: torch.Tensor) -> torch.Tensor:  # [B,nb] -> [B,1,T,1,1]
            return t.repeat_interleave(bf, dim=1)[:, None, :, None, None]
        t, th = batch["t"], batch["t_hist"]
        noisy = (1 - per_frame(t)) * x0 + per_frame(t) * noise
        hist = (1 - per_frame(th)) * x0 + per_frame(th) * hnoise
        if "self_history" in batch:  # [B] bool: these examples' history is the model's own prediction
            with torch.no_grad():
                ts = batch["t_self"]  # [B,nb]
                noisy_s = (1 - per_frame(ts)) * x0 + per_frame(ts) * batch["self_noise"]
                v_s = self.dit.forward_train(hist, th, noisy_s, ts, feats, ref_tok, first=batch["first"])
                x0_hat = (noisy_s - per_frame(ts) * v_s).to(x0.dtype)  # [B,C,T,h,w] one-step x0
            own = (1 - per_frame(th)) * x0_hat + per_frame(th) * hnoise
            hist = torch.where(batch["self_history"][:, None, None, None, None], own, hist)
        v = self.dit.forward_train(hist, th, noisy, t, feats, ref_tok, first=batch["first"])
        if self.mouth_weight == 1:
            loss = flow_loss(v, x0, noise)
            return loss, {"flow": loss.detach()}
        loss = weighted_flow_loss(v, x0, noise, mouth_weights(*x0.shape[-2:], self.mouth_weight).to(v.device))
        return loss, {"flow": flow_loss(v, x0, noise).detach(), "weighted": loss.detach()}


class GeneratorTask:
    name = "generator"

    def __init__(self, cfg: EngineConfig, tcfg: TrainConfig, cached: list[dict], latent_scale: float,
                 vae_state: dict[str, torch.Tensor] | None = None):
        self.cfg, self.tcfg = cfg, tcfg
        # Shipped with the export, unchanged; without it the export holds audio + DiT + the latent scale
        # and `avacast release` joins it to a VAE.
        self.vae_state = dict(vae_state or {})
        self.vae_state["vae.latent_scale"] = torch.tensor(latent_scale)
        self.n_lat = tcfg.blocks * cfg.dit.block_frames
        longest = max(c["latents"].shape[1] for c in cached)
        self.n_lat = min(self.n_lat, longest - longest % cfg.dit.block_frames)
        usable = [c for c in cached if c["latents"].shape[1] >= self.n_lat]
        self.clips = [c for c in usable if c["audio"] is not None]  # talking clips: {"latents", "refs", "audio"}
        # Clips without audio train with the "unknown audio" embedding, only if asked for.
        self.silent = [c for c in usable if c["audio"] is None] if tcfg.video_only_share > 0 else []
        if not self.clips:
            raise ValueError("no clips with usable audio")
        self.module = seeded(GeneratorStep, cfg, tcfg.mouth_weight, seed=tcfg.seed)
        if tcfg.freeze_audio_convs:  # what a phonetic pretext trained (AudioEncoder.mel_features)
            for part in (self.module.audio.inp, self.module.audio.layers):
                part.requires_grad_(False)

    def batch(self, g: torch.Generator, step: int, device: torch.device) -> dict:
        tc, bf = self.tcfg, self.cfg.dit.block_frames
        nb, b = self.n_lat // bf, tc.batch
        r = 1 + randint(g, tc.max_refs)
        x0, audio, refs, j0s, silent = [], [], [], [], []
        for _ in range(b):
            mute = bool(self.silent) and float(torch.rand(1, generator=g)) < tc.video_only_share
            pool = self.silent if mute else self.clips
            c = pool[randint(g, len(pool))]
            silent.append(mute)
            t_lat = c["latents"].shape[1]
            j0 = 0 if randint(g, 4) == 0 else bf * randint(g, (t_lat - self.n_lat) // bf + 1)
            x0.append(c["latents"][:, j0 : j0 + self.n_lat])
            audio.append(torch.zeros(1) if mute else c["audio"])  # the encoder pads with zeros
            refs.append(c["refs"][torch.randint(c["refs"].shape[0], (r,), generator=g)])
            j0s.append(j0)
        shift = self.cfg.sampler.shift
        x, ref = torch.stack(x0), torch.stack(refs)  # [B,C,T,h,w], [B,r,C,h,w]
        if self.cfg.dit.ref_residual:  # what the flow makes: the latents' departure from the references
            x = to_residual(x, ref, self.cfg.dit.ref_residual)
        mute = torch.tensor(silent)
        out = {
            "x0": x.to(device), "noise": torch.randn(x.shape, generator=g).to(device),
            "hist_noise": torch.randn(x.shape, generator=g).to(device),
            "t": sample_train_t((b, nb), shift, g).to(device),
            "t_hist": (torch.rand(b, nb, generator=g) * tc.history_noise_max).to(device),
            "audio": [a.to(device) for a in audio], "j0": j0s,
            "first": torch.tensor([j == 0 for j in j0s], device=device),
            "refs": ref.to(device),
            "drop_audio": ((torch.rand(b, generator=g) < tc.audio_drop) & ~mute).to(device),
            "video_only": mute.to(device),
            "drop_refs": (torch.rand(b, generator=g) < tc.ref_drop).to(device),
        }
        if tc.self_history > 0:  # drawn last: without it the batches of older runs stay the same
            lo, hi = SELF_T
            out["self_history"] = (torch.rand(b, generator=g) < tc.self_history).to(device)
            out["t_self"] = (lo + (hi - lo) * torch.rand(b, nb, generator=g)).to(device)
            out["self_noise"] = torch.randn(x.shape, generator=g).to(device)
        return out

    def loss(self, module: nn.Module, batch: dict):
        return module(batch)

    def export(self, ema: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A full model: the frozen VAE plus the EMA audio encoder and DiT."""
        return {**self.vae_state, **{k: v for k, v in ema.items() if k != UNKNOWN_AUDIO}}

    def export_training_only(self, ema: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What a continued run needs besides the export (`--init GEN --init RUN/training-only.safetensors`):
        the learned "unknown audio" embedding, when this run trained it (else it would restart at zero)."""
        return {UNKNOWN_AUDIO: ema[UNKNOWN_AUDIO]} if self.tcfg.video_only_share > 0 else {}


def to_residual(x: torch.Tensor, refs: torch.Tensor, scale: float) -> torch.Tensor:
    """Latents [B,C,T,h,w] -> (x - mean reference latent) * scale; refs [B,R,C,h,w], R >= 1."""
    return (x - refs.mean(1).unsqueeze(2)) * scale


def residual_scale(cached: list[dict]) -> float:
    """1 / std of the cached (scaled) latents minus one reference latent of their clip: the unit-std scale
    of `DiTConfig.ref_residual` for one portrait, the app's usual case (more references average to a
    smaller residual)."""
    res = torch.cat([(c["latents"] - c["refs"][0].unsqueeze(1)).flatten() for c in cached])
    return 1.0 / max(res.std().item(), 1e-6)


def scale_latents(cached: list[dict], vae: CausalVAE) -> float:
    """Set vae.latent_scale so cached latents have unit std; scales the cache in place."""
    std = torch.cat([c["latents"].flatten() for c in cached]).std().item()  # raw posterior means
    scale = 1.0 / max(std, 1e-6)
    vae.latent_scale.fill_(scale)
    for c in cached:
        c["latents"] *= scale
        c["refs"] *= scale
    log.info("latent std %.4f -> latent_scale %.4f", std, scale)
    return scale

