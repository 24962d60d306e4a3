"""Generator training data without video decoding: VAE latents (posterior means, scaled to unit std),
reference-frame latents and int16 audio per clip, in one safetensors file (or size-capped shards).

Built once per (VAE, pack) on the GPU; a few tens of MB for our data, so it travels to a GPU slot
where the pack and a video decoder would not fit (issue 3 item 5)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from engine.config import EngineConfig
from engine.io.checkpoint import load_weights, save_weights
from engine.train.data import ClipData
from engine.train.gen_task import cache_latents, scale_latents
from engine.vae.model import CausalVAE

log = logging.getLogger(__name__)
AUG_SEP = "~a"  # clip id + AUG_SEP + K: its K-th augmented copy


def build(vae: CausalVAE, clips: list[ClipData], device: torch.device, dtype: torch.dtype,
          short_context: bool = True, augment_copies: int = 0, seed: int = 0) -> list[dict]:
    """Encode clips and set vae.latent_scale -> [{"id", "latents" [C,T,h,w], "refs" [K,C,h,w], "audio"}]
    (audio None for a clip without usable audio). Augmented copies (`cache_latents`) follow their clip, with
    ids CLIP~aK (a clip list entry for CLIP, e.g. --mute-clips, matches them too)."""
    cached = cache_latents(vae, clips, device, dtype, short_context, augment_copies, seed)
    scale_latents(cached, vae)
    for c, d in zip(cached, (d for d in clips for _ in range(1 + augment_copies))):
        k = c.pop("copy")
        c["id"] = d.clip.id if k == 0 else f"{d.clip.id}{AUG_SEP}{k}"
    return cached


def save(path: Path, cached: list[dict], cfg: EngineConfig, latent_scale: float,
         shard_bytes: int | None = None, with_audio: bool = True, encoder_context: str = "short") -> list[Path]:
    """Without audio the file is ~half the size (`load` reads it back from the pack).
    `encoder_context` ("short" or "full", see `cache_latents`) and the clips without usable audio
    ("video_only") are recorded in the metadata."""
    tensors: dict[str, torch.Tensor] = {}
    for c in cached:
        tensors[f"{c['id']}.latents"] = c["latents"].to(torch.bfloat16)
        tensors[f"{c['id']}.refs"] = c["refs"].to(torch.bfloat16)
        if with_audio and c["audio"] is not None:
            tensors[f"{c['id']}.audio"] = (c["audio"].float().clamp(-1, 1) * 32767).round().to(torch.int16)
    extra = {"clips": json.dumps([c["id"] for c in cached]), "latent_scale": repr(latent_scale),
             "encoder_context": encoder_context,
             "video_only": json.dumps([c["id"] for c in cached if c["audio"] is None])}
    return save_weights(path, tensors, cfg, kind="latent_cache", shard_bytes=shard_bytes, extra=extra)


def load(path: Path, pack=None) -> tuple[EngineConfig, list[dict], float]:
    """-> (config, clips, latent scale). Audio missing from the file is read from `pack`; clips recorded
    as video-only get audio None."""
    cfg, state, meta = load_weights(path)
    if meta.get("avacast_kind") != "latent_cache":
        raise ValueError(f"{Path(path).name}: not a latent cache")
    silent = set(json.loads(meta.get("video_only", "[]")))
    out = []
    for cid in json.loads(meta["clips"]):
        if cid in silent:
            audio = None
        elif f"{cid}.audio" in state:
            audio = state[f"{cid}.audio"].float() / 32767
        elif pack is not None:
            audio = torch.from_numpy(pack.load_audio(cid))
        else:
            raise ValueError(f"{Path(path).name}: clip {cid} has no audio; pass the pack it came from")
        out.append({"id": cid, "latents": state[f"{cid}.latents"].float(), "refs": state[f"{cid}.refs"].float(),
                    "audio": audio})
    return cfg, out, float(meta["latent_scale"])


def mute(cached: list[dict], entries: list[str]) -> tuple[int, list[str]]:
    """Drop the audio of the clips whose id equals or starts with one of `entries` (talking clips with poor
    lip sync): they then count as clips without usable audio. In place -> (clips muted, entries that match
    no clip)."""
    used, muted = set(), 0
    for c in cached:
        matched = {e for e in entries if c["id"].startswith(e)}  # an exact id is its own prefix
        if matched:
            used |= matched
            muted += c["audio"] is not None
            c["audio"] = None
    return muted, [e for e in entries if e not in used]


def read_clip_list(path: str | Path) -> list[str]:
    """One clip id (or id prefix) per line; blank lines and # comments skipped."""
    lines = (ln.split("#", 1)[0].strip() for ln in Path(path).read_text().splitlines())
    return [ln for ln in lines if ln]


def load_vae(path: str | Path) -> tuple[EngineConfig, CausalVAE]:
    """The VAE of a VAE export or of a full model file."""
    from engine.io.checkpoint import load_into

    cfg, state, _ = load_weights(path)
    vae = CausalVAE(cfg.vae)
    load_into(vae, state, Path(path).name, prefix="vae.")
    return cfg, vae

