"""Model evaluation on a pack's held-out clips (issue 3 item 4; the numbers for resources/MODEL_CARD.md).

- VAE: reconstruction PSNR/SSIM of clip windows (4k+1 frames at the model's resolution) with 0, 1 and 3
  references taken from elsewhere in the same clip (frames outside the window, so the VAE cannot copy).
- Generation (full model files only): each clip with usable audio is rendered through the streaming
  session from its first frame and its own audio; lip-sync score, mouth opening in silence and
  frame-to-frame stability are measured on the render and, with the same functions, on the real clip. With
  portraits, the renders start from other people's photos instead (unseen faces driven by real speech).
- Ceiling (any weights file): the same clips through the VAE alone (bounded-context latents decoded as one
  stream), scored like a render: the lip sync no generator on this VAE can beat.
- Long render: one portrait driven by a speech file looped to N seconds; stability and distance to the
  portrait in the first vs the last 10 s show drift.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.config import FPS, SAMPLE_RATE, SamplerConfig
from engine.train import lipsync
from engine.train.losses import psnr, ssim

log = logging.getLogger(__name__)
FULL_KINDS = ("model", "generator")  # weights files with VAE + DiT + audio encoder
DRIFT_SPAN_S = 10.0
# per-portrait means (eval --portraits)
PORTRAIT_KEYS = ("lipsync", "silence_opening", "pause_opening", "mouth_motion", "stability", "psnr_after_1s")
PRECISIONS = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16}  # eval --precision -> dtype


@dataclass(frozen=True)
class EvalConfig:
    split: str = "val"
    max_clips: int | None = None  # per part (VAE clips, generation clips)
    seconds: float = 10.0  # span of each clip used: VAE windows tile it, generation renders it
    window: int = 33  # VAE window in video frames, 4k+1
    ref_counts: tuple[int, ...] = (0, 1, 3)
    seed: int = 0
    long_seconds: float = 60.0
    history_noise: float | None = None  # generation: overrides of the model's SamplerConfig (None: keep)
    guidance: float | None = None  # the audio CFG scale
    steps: int | None = None  # Euler steps per block
    anchor_first: bool | None = None
    identity_hold: float | None = None
    hold_seconds: float | None = None
    hold_free_dims: int | None = None
    hold_history: bool | None = None
    hold_mouth: float | None = None
    use_driver: bool | None = None  # the model's own driver face (DiTConfig.driver)
    motion_gain: float | None = None
    mouth_gain: float | None = None
    vae: bool = True  # False: generation metrics only (the VAE windows cost most of a CPU eval)
    renders: int = 1  # generation: renders per clip (seeds seed..seed+renders-1), metrics averaged: one
    # render's lip-sync score is mostly sampling noise (v0.5: 0.168 on a GPU draw, 0.062 on a CPU draw)
    renders_dir: str | None = None  # generation: write each render there as MP4 (CLIP_seedN.mp4) ...
    reuse_renders: bool = False  # ... or read them from there instead of rendering (score elsewhere, e.g.
    # with face landmarks on a machine that has mediapipe)
    ceiling: bool = True  # also score the real clips' VAE round trip, any weights file (minutes per clip on a CPU)
    precision: str = "auto"  # "auto" (bf16 on a GPU, fp32 on a CPU: as the app runs), "fp32" or "bf16"
    # generation: the generator animates the clip's own first frame and its motion is moved onto the portrait (the
    # Session's driver; for renders from portraits; a fixed driver face is given to `evaluate` instead)
    driver_own: bool = False
    score: bool = True  # False: only write the generation renders and round trips to renders_dir (a GPU machine
    # without the face detector or landmarks), to be scored elsewhere with reuse_renders

    def __post_init__(self) -> None:
        if self.window < 1 or (self.window - 1) % 4:
            raise ValueError(f"window must be 4k+1 frames (e.g. 33), got {self.window}")
        if self.seconds <= 0 or self.long_seconds <= 0:
            raise ValueError("seconds must be positive")
        if self.max_clips is not None and self.max_clips < 1:
            raise ValueError("max_clips must be at least 1")
        if self.renders < 1:
            raise ValueError("renders must be at least 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.reuse_renders and not self.renders_dir:
            raise ValueError("reusing renders needs the folder they were saved in")
        if not self.score and (not self.renders_dir or self.reuse_renders):
            raise ValueError("renders that are not scored must be saved: give a folder to save them in")


# --- loading ------------------------------------------------------------------------------
def weights_kind(path: str | Path) -> str:
    """The `avacast_kind` of a weights file (first shard's metadata), without loading tensors."""
    from safetensors import safe_open

    from engine.io.checkpoint import META_KIND, CheckpointError, shard_files

    f = shard_files(path)[0]
    try:
        with safe_open(str(f), framework="pt") as h:
            return (h.metadata() or {}).get(META_KIND, "")
    except Exception as e:  # safetensors raises its own error types for a non-safetensors file
        raise CheckpointError(f"{f.name}: not a readable safetensors file ({str(e).splitlines()[0]})") from None


def load_for_eval(weights: str | Path, device: str = "auto", precision: str = "auto"):
    """-> (kind, vae, engine or None). A VAE export gives only its VAE; a full model gives an Engine. precision:
    a key of PRECISIONS ("auto": the app's choice for the device)."""
    from engine import device as dev
    from engine.api import load_engine
    from engine.io.checkpoint import CheckpointError
    from engine.train.latent_cache import load_vae

    kind = weights_kind(weights)
    if kind in FULL_KINDS:
        engine = load_engine(weights=weights, device=device, dtype=PRECISIONS[precision])
        return kind, engine.model.vae, engine
    if kind != "vae":
        raise CheckpointError(f"{Path(weights).name}: a {kind or 'unknown'!s} file; eval needs a model, "
                              "generator or VAE export")
    _, vae = load_vae(weights)
    torch_device = dev.pick_device(device)
    dev.configure(torch_device)
    dtype = PRECISIONS[precision] or dev.default_dtype(torch_device)
    vae = vae.to(torch_device, dtype).eval().requires_grad_(False)
    return kind, vae, None


# --- VAE reconstruction -----------------------------------------------------------------------
def window_starts(n_frames: int, window: int, span: int) -> list[int]:
    """Starts of back-to-back windows inside the first `span` frames (at least one if the clip holds one)."""
    last = min(n_frames, max(span, window)) - window
    return list(range(0, last + 1, window))


def reference_indices(n_frames: int, start: int, window: int, k: int) -> list[int]:
    """k frames evenly spread over the clip outside [start, start+window) (inside only if nothing is outside)."""
    if k == 0:
        return []
    outside = [i for i in range(n_frames) if not start <= i < start + window] or list(range(n_frames))
    return [outside[int(j)] for j in np.linspace(0, len(outside) - 1, k).round()]


def _to_video(frames: np.ndarray, device, dtype) -> torch.Tensor:
    """[F,H,W,3] uint8 -> [1,3,F,H,W] in [-1,1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None]
    return (x.float() / 127.5 - 1.0).to(device, dtype)


@torch.inference_mode()
def vae_window(vae, frames: np.ndarray, start: int, window: int, ref_counts=(0, 1, 3),
               foreign: np.ndarray | None = None) -> dict:
    """Reconstruct frames[start:start+window] of a clip [F,H,W,3] with each reference count ->
    {k: {"psnr", "ssim"}}, plus {"swap": ...} with `foreign` (a frame [H,W,3] of another person) as the one
    reference: if the latent carried motion only, that decode would turn into the other person and score
    low; if it carries the appearance, it scores close to 1 reference. The posterior mean is decoded (what
    the generator is trained to produce)."""
    p = next(vae.parameters())
    video = _to_video(frames[start:start + window], p.device, p.dtype)  # [1,3,F,H,W]
    mean, _ = vae.encode(video)
    target = video[0].transpose(0, 1).float()  # [F,3,H,W]
    sets = {k: frames[reference_indices(len(frames), start, window, k)] for k in ref_counts}
    if foreign is not None:
        sets["swap"] = foreign[None]
    out = {}
    for k, ref_frames in sets.items():
        refs = _to_video(ref_frames, p.device, p.dtype).transpose(1, 2)  # [1,R,3,H,W] (R may be 0)
        recon = vae.decode(mean, vae.ref_features(refs))[0].transpose(0, 1).float()  # [F,3,H,W]
        out[k] = {"psnr": float(psnr(recon, target)), "ssim": float(ssim(recon.clamp(-1, 1), target))}
    return out


@torch.inference_mode()
def vae_stream(vae, frames: np.ndarray, n: int) -> dict[str, float]:
    """The first n (4k+1) frames as one continuous causal stream, as the app decodes the generator's
    latents, with frame 0 as the reference -> PSNR over frames 25.. (after the first second) for latents
    from a whole-clip encode ("full") and from `CausalVAE.encode_short_context` ("short", what the
    generator trains on). The windowed table restarts every `window` frames and hides drift over time."""
    p = next(vae.parameters())
    video = _to_video(frames[:n], p.device, p.dtype)  # [1,3,F,H,W]
    target = video[0].transpose(0, 1).float()[FPS:]  # [F-25,3,H,W]
    out = {}
    for name in ("full", "short"):
        recon = _decode_as_stream(vae, video, name).transpose(0, 1).float()[FPS:]
        out[f"stream_{name}_psnr"] = float(psnr(recon, target))
    return out


def _decode_as_stream(vae, video: torch.Tensor, encode: str) -> torch.Tensor:
    """video [1,3,F,H,W] -> its latents ("full": one whole-clip encode; "short": `encode_short_context`)
    decoded as one continuous stream with frame 0 as the reference -> [3,F,H,W] in about [-1,1]."""
    refs = vae.ref_features(video[:, :, :1].transpose(1, 2))  # [1,M,D]
    mean = vae.encode(video)[0] if encode == "full" else vae.encode_short_context(video)
    return vae.decode(mean, refs)[0]


def vae_clip(vae, frames: np.ndarray, cfg: EvalConfig, foreign: np.ndarray | None = None) -> dict:
    """Mean PSNR/SSIM over the windows of one clip -> {"windows", "psnr_<k>", "ssim_<k>"} (k: the reference
    counts, and "swap" with `foreign` as the reference), plus the continuous-stream PSNRs of `vae_stream`
    when the clip has more than a second."""
    window = min(cfg.window, 4 * ((len(frames) - 1) // 4) + 1)
    starts = window_starts(len(frames), window, int(round(cfg.seconds * FPS)))
    per = [vae_window(vae, frames, s, window, cfg.ref_counts, foreign) for s in starts]
    row: dict = {"windows": len(starts), "window_frames": window}
    for k in (*cfg.ref_counts, *(("swap",) if foreign is not None else ())):
        row[f"psnr_{k}"] = float(np.mean([w[k]["psnr"] for w in per]))
        row[f"ssim_{k}"] = float(np.mean([w[k]["ssim"] for w in per]))
    n = 4 * ((min(len(frames), int(round(cfg.seconds * FPS))) - 1) // 4) + 1
    if n > FPS:
        row.update(vae_stream(vae, frames, n))
    return row


# --- generation ---------------------------------------------------------------------------------
def score_pair(frames: np.ndarray, audio: np.ndarray, method: str = "auto",
               opening: np.ndarray | None = None) -> dict:
    """Lip-sync and steadiness of a talking clip: frames [F,H,W,3] uint8 with its 16 kHz audio (and its mouth
    opening [F] if already measured) -> {"lipsync", "lag", "silence_opening", "pause_opening", "mouth_motion",
    "stability"} (engine.train.lipsync)."""
    frames = np.asarray(frames)
    env = lipsync.speech_envelope(audio, len(frames))
    opening = lipsync.mouth_opening(frames, method) if opening is None else opening
    corr, lag = lipsync.lipsync_score(opening, env)
    return {"lipsync": corr, "lag": lag, "silence_opening": lipsync.silence_opening(opening, env),
            "pause_opening": lipsync.pause_opening(opening, env), "mouth_motion": lipsync.mouth_motion(opening),
            "stability": lipsync.stability(frames)}


def render(engine, refs: list[np.ndarray], audio: np.ndarray, seed: int = 0,
           driver: np.ndarray | None = None) -> np.ndarray:
    """Audio through a streaming session (the live path) -> frames [F,H,W,3], F = round(seconds*25)."""
    session = engine.open_session(refs, seed=seed, driver=driver)
    session.push_audio(audio.astype(np.float32), SAMPLE_RATE)
    frames = [f.rgb for f in session.step()] + [f.rgb for f in session.flush()]
    return np.stack(frames)


def likeness(gen: np.ndarray, real: np.ndarray) -> dict:
    """PSNR (dB) of a render against the real clip it was driven from (same person, same first frame,
    same audio), over frame 1 .. 1 s and over 1 s .. end -> {"psnr_first_s", "psnr_after_1s"}.
    Head motion differs, so even a perfect model stays well below the VAE's PSNR; a drop after the first
    second is the identity being lost (tools/diag/REPORT.md)."""
    n = min(len(gen), len(real))

    def db(a: np.ndarray, b: np.ndarray) -> float | None:  # uint8 frames -> [-1,1] as losses.psnr expects
        return float(psnr(torch.from_numpy(a) / 127.5 - 1, torch.from_numpy(b) / 127.5 - 1)) if len(a) else None

    return {"psnr_first_s": db(gen[1:min(n, FPS)], real[1:min(n, FPS)]), "psnr_after_1s": db(gen[FPS:n], real[FPS:n])}


def still_likeness(real: np.ndarray) -> float | None:
    """The baseline of `likeness`: PSNR (dB) of the first frame held still against the clip after 1 s.
    A render above it keeps the person better than a frozen portrait does, despite moving."""
    return likeness(np.repeat(real[:1], len(real), axis=0), real)["psnr_after_1s"]


def file_id(text: str) -> str:
    """A clip or render id as a portable file name part (anything but letters, digits, '.', '_', '-' -> '_')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def render_path(cfg: EvalConfig, clip_id: str, seed: int | None) -> Path:
    """Where a generation render of `clip_id` with `seed` (None: the VAE round trip) is saved / read."""
    name = file_id(clip_id)
    return Path(cfg.renders_dir) / f"{name}_{'vae' if seed is None else f'seed{seed}'}.mp4"


def _render_or_reuse(engine, frames: np.ndarray, audio: np.ndarray, cfg: EvalConfig, clip_id: str,
                     seed: int, portrait: np.ndarray | None = None, driver: np.ndarray | None = None) -> np.ndarray:
    """One generation render [n,H,W,3] from `portrait` (default frames[0]) and `audio` (n = len(frames)),
    moved by `driver` (or frames[0] with cfg.driver_own) if given: rendered, and saved if cfg.renders_dir; or
    read from there (cfg.reuse_renders)."""
    from engine.io import media

    path = render_path(cfg, clip_id, seed) if cfg.renders_dir else None
    if cfg.reuse_renders:
        if not path.is_file():
            raise ValueError(f"{path}: no saved render (was the eval that saved them run with the same clips, "
                             "seconds, seed and renders?)")
        gen = media.read_video(path)[0]
        if len(gen) < len(frames):
            raise ValueError(f"{path}: {len(gen)} frames, the eval needs {len(frames)}")
        return gen[:len(frames)]
    driver = frames[0] if cfg.driver_own else driver  # a no-op on a render from the clip's own frame
    gen = render(engine, [frames[0] if portrait is None else portrait], audio, seed, driver)
    if path is not None:
        media.write_video(path, gen, audio=audio)
    return gen


@torch.inference_mode()
def vae_roundtrip(vae, frames: np.ndarray) -> np.ndarray:
    """The clip's first 4k+1 frames [F,H,W,3] through the VAE as the generator would have to produce them
    (bounded-context latents, decoded as one stream with frame 0 as the reference) -> uint8 [F',H,W,3].
    Its lip sync is the ceiling of any generator on this VAE."""
    p = next(vae.parameters())
    n = 4 * ((len(frames) - 1) // 4) + 1
    recon = _decode_as_stream(vae, _to_video(frames[:n], p.device, p.dtype), "short")  # [3,F,H,W]
    return ((recon.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).cpu().numpy()


def _roundtrip_or_reuse(vae, frames: np.ndarray, audio: np.ndarray, cfg: EvalConfig, clip_id: str) -> np.ndarray:
    """`vae_roundtrip` of the clip, saved beside the renders (it costs minutes per clip on a CPU), or read from
    there when reusing renders (computed if that eval did not save it)."""
    from engine.io import media

    path = render_path(cfg, clip_id, None) if cfg.renders_dir else None
    if cfg.reuse_renders and path.is_file():
        return media.read_video(path)[0]
    out = vae_roundtrip(vae, frames)
    if path is not None and not cfg.reuse_renders:
        media.write_video(path, out, audio=audio[: len(out) * SAMPLE_RATE // FPS])
    return out


def clip_span(frames: np.ndarray, audio: np.ndarray, cfg: EvalConfig) -> tuple[np.ndarray, np.ndarray]:
    """The part of a clip the lip-sync evals use: its first cfg.seconds -> (frames [n,H,W,3], their audio)."""
    n = min(len(frames), int(round(cfg.seconds * FPS)))
    return frames[:n], audio[: n * SAMPLE_RATE // FPS]


def ceiling_clip(vae, frames: np.ndarray, audio: np.ndarray, cfg: EvalConfig, method: str, clip_id: str) -> dict:
    """The lip sync any generator on this VAE can reach: the real clip's `vae_roundtrip` scored like a render
    (same span as the generation renders), beside the real clip's own score, and how its mouth follows the
    real one (`lipsync.mouth_follow`: the amplitude kept, the frame-by-frame correlation)."""
    frames, audio = clip_span(frames, audio, cfg)  # [n,H,W,3]
    trip = _roundtrip_or_reuse(vae, frames, audio, cfg, clip_id)  # [4k+1 <= n, H, W, 3]
    o_trip, o_real = lipsync.mouth_opening(trip, method), lipsync.mouth_opening(frames, method)
    v = score_pair(trip, audio, method, o_trip)
    gain, corr = lipsync.mouth_follow(o_trip, o_real[: len(trip)])
    return {"vae_lipsync": v["lipsync"], "vae_silence_opening": v["silence_opening"],
            "real_lipsync": score_pair(frames, audio, method, o_real)["lipsync"],
            "vae_mouth_gain": gain, "vae_mouth_corr": corr}


def _save_renders(vae, engine, frames: np.ndarray, audio: np.ndarray, cfg: EvalConfig, clip_id: str,
                  portraits: list[tuple[str, np.ndarray]] | None = None, driver: np.ndarray | None = None) -> None:
    """What a scoring eval with the same cfg reads back: the round trip (if cfg.ceiling) and the generation
    renders (if `engine`; render k from portraits[k] (name, image) if given), over the same span."""
    frames, audio = clip_span(frames, audio, cfg)
    if cfg.ceiling:
        _roundtrip_or_reuse(vae, frames, audio, cfg, clip_id)
    for k in range(cfg.renders if engine is not None else 0):
        rid, image = _render_source(clip_id, portraits, k)
        _render_or_reuse(engine, frames, audio, cfg, rid, cfg.seed + k, image, driver)


def _render_source(clip_id: str, portraits: list[tuple[str, np.ndarray]] | None, k: int):
    """Render k of a clip: (its file id, the portrait it starts from or None for the clip's own first frame)."""
    if not portraits:
        return clip_id, None
    name, image = portraits[k]
    return f"{clip_id}@{name}", image


def generation_clip(engine, frames: np.ndarray, audio: np.ndarray, cfg: EvalConfig, method: str,
                    clip_id: str = "clip", portraits: list[tuple[str, np.ndarray]] | None = None,
                    driver: np.ndarray | None = None) -> dict:
    """Render from the clip's first frame (or render k from portraits[k] = (name, image): other people, unseen
    faces driven by the clip's speech) and its audio, cfg.renders times with other seeds; score the renders
    (averaged) and the real clip alike. Likeness is to the real clip, or to each render's portrait as the model
    sees it."""
    frames, audio = clip_span(frames, audio, cfg)
    draws = []
    for k in range(cfg.renders):
        rid, image = _render_source(clip_id, portraits, k)
        gen = _render_or_reuse(engine, frames, audio, cfg, rid, cfg.seed + k, image, driver)
        target = frames if image is None else np.repeat(model_view(image, frames.shape[1])[None], len(frames), 0)
        draws.append({**score_pair(gen, audio, method), **likeness(gen, target)})
    g, r = _means(draws), score_pair(frames, audio, method)
    row = {"frames": len(frames), "renders": cfg.renders, **{f"gen_{k}": v for k, v in g.items()},
           **{f"real_{k}": v for k, v in r.items()},
           "still_psnr_after_1s": None if portraits else still_likeness(frames)}
    if portraits:  # and each render's scores, for the per-portrait means of the report
        row["portraits"] = [name for name, _ in portraits]
        row["draws"] = [{"portrait": name, **{k: d.get(k) for k in PORTRAIT_KEYS}}
                        for (name, _), d in zip(portraits, draws)]
    row["lipsync_ratio"] = g["lipsync"] / r["lipsync"] if g["lipsync"] is not None and r["lipsync"] > 0.05 else None
    return row


def long_render(engine, portrait: np.ndarray, speech: np.ndarray, cfg: EvalConfig) -> dict:
    """Render `speech` looped to cfg.long_seconds from one portrait (saved as long_seedN.mp4 if
    cfg.renders_dir); compare the first and last 10 s."""
    n = int(round(cfg.long_seconds * SAMPLE_RATE))
    audio = np.tile(speech, math.ceil(n / max(len(speech), 1)))[:n]
    frames = render(engine, [portrait], audio, cfg.seed)
    if cfg.renders_dir and not cfg.reuse_renders:  # to look at what was measured
        from engine.io import media
        media.write_video(Path(cfg.renders_dir) / f"long_seed{cfg.seed}.mp4", frames, audio=audio)
    out = {"seconds": cfg.long_seconds, **drift(frames, portrait, min(DRIFT_SPAN_S, cfg.long_seconds / 2)),
           **{f"all_{k}": v for k, v in score_pair(frames, audio).items()}}
    return out


def drift(frames: np.ndarray, portrait: np.ndarray, span_s: float = DRIFT_SPAN_S) -> dict:
    """A long render [F,H,W,3] against its portrait, first vs last span_s: frame-to-frame change, mean |frame -
    portrait| in [0, 1] and PSNR to the portrait (dB; both move if the identity drifts)."""
    span = int(round(span_s * FPS))
    ref = model_view(portrait, frames.shape[1])

    def to_ref(x: np.ndarray) -> float:
        return float(np.mean([np.abs(f.astype(np.int16) - ref.astype(np.int16)).mean() for f in x]) / 255)

    def db(x: np.ndarray) -> float:  # uint8 -> [-1,1] as losses.psnr expects
        return float(psnr(torch.from_numpy(x) / 127.5 - 1, torch.from_numpy(ref)[None] / 127.5 - 1))

    first, last = frames[:span], frames[-span:]
    out = {"span_s": span / FPS, "stability_first": lipsync.stability(first), "stability_last": lipsync.stability(last),
           "to_portrait_first": to_ref(first), "to_portrait_last": to_ref(last),
           "psnr_to_portrait_first": db(first), "psnr_to_portrait_last": db(last)}
    out["stability_ratio"] = out["stability_last"] / max(out["stability_first"], 1e-9)
    return out


def model_view(image: np.ndarray, size: int) -> np.ndarray:
    """A reference image [H,W,3] uint8 as the session sees it (centre square, resized) -> [size,size,3] uint8."""
    from engine.runtime.session import prepare_references

    x = prepare_references([image], size)[0, 0]  # [3,S,S] in [-1,1]
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


# --- the whole report -----------------------------------------------------------------------------
def select_clips(clips: list, n: int | None) -> list:
    """At most n clips, taken round-robin over identities (first clip of each, then second ...), so a
    small --max-clips still covers many people."""
    if n is None:
        return clips
    by_id: dict[str, list] = {}
    for c in clips:
        by_id.setdefault(c.identity, []).append(c)
    order = sorted(clips, key=lambda c: (by_id[c.identity].index(c), list(by_id).index(c.identity)))
    return order[:n]


def _means(rows: list[dict], skip: tuple[str, ...] = ("id",)) -> dict:
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in skip]  # union, first-seen order
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if isinstance(r.get(k), (int, float)) and np.isfinite(r[k])]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def evaluate(weights: str | Path, pack, cfg: EvalConfig, device: str = "auto", long_audio: np.ndarray | None = None,
             portrait: np.ndarray | None = None, progress: Callable[[str], None] | None = None,
             portraits: list[tuple[str, np.ndarray]] | None = None, driver: np.ndarray | None = None) -> dict:
    """Evaluate a weights file on `pack` (an engine.train.pack.Pack) -> the report dict (JSON-ready).
    portraits: (name, image) pairs; render k of generation clip i then starts from portrait (i + k) mod
    len(portraits) instead of from the clip's own first frame (unseen faces driven by real speech; with as many
    renders as portraits, every clip drives every portrait); driver: the face every render animates in the
    portrait's stead (Session's driver; cfg.driver_own: each clip's own first frame)."""
    say = progress or log.info
    kind, vae, engine = load_for_eval(weights, device, cfg.precision)
    # the SamplerConfig fields EvalConfig carries under the same name, and the guidance scale (SamplerConfig.cfg)
    named = {f.name for f in dataclasses.fields(SamplerConfig)} & {f.name for f in dataclasses.fields(EvalConfig)}
    overrides = {k: v for k, v in ((k, getattr(cfg, k)) for k in (*sorted(named), "guidance")) if v is not None}
    if "guidance" in overrides:
        overrides["cfg"] = overrides.pop("guidance")
    if engine is not None and overrides:
        sampler = dataclasses.replace(engine.cfg.sampler, **overrides)
        engine.model.cfg = engine.cfg = dataclasses.replace(engine.cfg, sampler=sampler)
    size = vae.cfg.resolution
    report: dict = {"weights": str(weights), "kind": kind, "pack": str(pack.root), "split": cfg.split,
                    "resolution": size, "device": str(next(vae.parameters()).device),
                    "dtype": str(next(vae.parameters()).dtype).removeprefix("torch."), "notes": [],
                    "config": {"seconds": cfg.seconds, "window": cfg.window, "ref_counts": list(cfg.ref_counts),
                               "seed": cfg.seed, "max_clips": cfg.max_clips,
                               "portraits": [name for name, _ in portraits or []],
                               "driver": "own" if cfg.driver_own else driver is not None,
                               "model_driver": bool(engine is not None and engine.cfg.dit.driver),
                               "sampler": dataclasses.asdict(engine.cfg.sampler) if engine else None}}
    clips = select_clips(pack.clips(cfg.split), cfg.max_clips)
    if not clips:
        raise ValueError(f"{pack.root}: no clips in split {cfg.split!r}")
    if engine is None and not cfg.vae and not cfg.ceiling:
        raise ValueError(f"{Path(weights).name}: a VAE export has no generation to evaluate (without its windows "
                         "and its ceiling nothing is left)")
    rows = []
    rest = [o for o in pack.clips(cfg.split) if o not in clips]
    for i, c in enumerate(clips if cfg.vae else []):
        say(f"VAE {i + 1}/{len(clips)}: {c.id}")
        other = next((o for o in clips[i + 1:] + clips[:i] + rest if o.identity != c.identity), None)
        foreign = pack.load_frames(other, size, 0, 1)[0] if other is not None else None
        rows.append({"id": c.id, **vae_clip(vae, pack.load_frames(c, size), cfg, foreign)})
    report["vae"] = {"clips": rows, "mean": _means(rows)} if cfg.vae else None
    report["generation"] = report["long"] = report["ceiling"] = None
    method = lipsync.opening_method()
    report["mouth_opening_method"] = method
    gclips = select_clips(pack.clips(cfg.split, audio=True), cfg.max_clips)
    if not gclips:
        report["notes"].append(f"no clips with usable audio in split {cfg.split!r}: lip-sync metrics skipped")

    def portraits_of(i: int) -> list[tuple[str, np.ndarray]] | None:  # one per render of clip i
        return [portraits[(i + k) % len(portraits)] for k in range(cfg.renders)] if portraits else None

    if not cfg.score:
        for i, c in enumerate(gclips):
            say(f"renders {i + 1}/{len(gclips)}: {c.id}")
            _save_renders(vae, engine, pack.load_frames(c, size), pack.load_audio(c), cfg, c.id, portraits_of(i),
                          driver)
        report["notes"].append(f"renders saved in {cfg.renders_dir}, not scored: score them with --from-renders")
        return report
    if cfg.ceiling and gclips:
        crows = []
        for i, c in enumerate(gclips):
            say(f"VAE round trip {i + 1}/{len(gclips)}: {c.id}")
            crows.append({"id": c.id, **ceiling_clip(vae, pack.load_frames(c, size), pack.load_audio(c), cfg,
                                                     method, c.id)})
        report["ceiling"] = {"clips": crows, "mean": _means(crows)}
    if engine is None:
        report["notes"].append(f"{kind} file (VAE only): generation metrics skipped")
        return report
    grows = []
    for i, c in enumerate(gclips):
        say(f"generation {i + 1}/{len(gclips)}: {c.id}")
        grows.append({"id": c.id, **generation_clip(engine, pack.load_frames(c, size), pack.load_audio(c),
                                                    cfg, method, c.id, portraits_of(i), driver)})
    if grows:
        mean = _means(grows)
        real = mean.get("real_lipsync")
        mean["lipsync_ratio_of_means"] = mean["gen_lipsync"] / real if real and real > 0.05 else None
        report["generation"] = {"clips": grows, "mean": mean}
        if portraits:
            report["generation"]["portraits"] = per_portrait(grows)
    if long_audio is not None:
        if portrait is None:
            portrait = pack.load_frames(clips[0], size, 0, 1)[0]
        say(f"long render: {cfg.long_seconds:g} s")
        report["long"] = long_render(engine, portrait, long_audio, cfg)
    return report


def per_portrait(rows: list[dict]) -> dict[str, dict]:
    """Generation rows with their renders' draws (eval --portraits) -> {portrait: means of PORTRAIT_KEYS over its
    renders, and their count}: which faces the model animates and which it does not."""
    by: dict[str, list[dict]] = {}
    for row in rows:
        for d in row.get("draws", []):
            by.setdefault(d["portrait"], []).append(d)
    return {name: {**_means(ds, skip=("portrait",)), "renders": len(ds)} for name, ds in by.items()}


def json_ready(x):
    """NaN/inf -> None, numpy scalars -> Python (strict JSON)."""
    if isinstance(x, dict):
        return {k: json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x
