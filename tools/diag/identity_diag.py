"""Identity-loss diagnosis for the shipped Avacast model (v0.3).

Modes (per clip, first 73 frames = 2.92 s, reference = frame 0, the clip's own audio):
  vae       : ground-truth latents (VAE posterior means x latent_scale) decoded block by block through the
              session's streaming decoder (Session._decode, fresh StreamState) - the VAE ceiling.
  free      : free-running generation, the generated block committed as history (what the app does).
  tf        : teacher-forced: same noise, but the GT latent block is committed as history; the generated
              block is decoded.
  free_s8 / free_cfg1 / free_hn03 : sampler variants of `free`.
  gtnoise   : GT latents + Gaussian noise with the same per-block RMS as free-running's latent error,
              decoded (is the decoder fragile to off-distribution latents?).
Everything runs through Session's own pieces (_features, _decode, the KV cache, dit.block_forward), with
the same Euler/CFG/history-noise arithmetic as engine.runtime.graphs.sample_block.
"""
from __future__ import annotations
import os

import argparse
import json
import time

import numpy as np
import torch

from engine.api import load_engine
from engine.config import SAMPLE_RATE, FPS
from engine.flow.sampler import cfg_combine, euler_step, schedule
from engine.nn.conv import StreamState
from engine.runtime.session import to_uint8
from engine.train.losses import psnr, ssim
from engine.train.pack import Pack

DIAG = os.environ.get("AVACAST_DIAG_DIR", "runs/diag")  # outputs of these diagnostics

N_FRAMES = 73  # 4*18+1 -> 19 latent frames (LipNet clips have 75 frames)
WINDOWS = [(0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 3.0)]


def to_t(frames: np.ndarray) -> torch.Tensor:
    """[F,H,W,3] uint8 -> [F,3,H,W] float in [-1,1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1


def frame_metrics(gen: np.ndarray, real: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame: full PSNR, centre-crop (face) PSNR/SSIM, 16x16 low-pass PSNR, mean-colour distance of the
    centre crop (0-255 units), PSNR to frame 0 of the real clip."""
    g, r = to_t(gen), to_t(real)
    h = g.shape[-1]
    a, b = h // 4, 3 * h // 4
    gc, rc = g[..., a:b, a:b], r[..., a:b, a:b]
    pool = lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 16)
    out = {k: [] for k in ("psnr", "psnr_face", "ssim_face", "psnr_lowres", "colour_dist", "psnr_to_ref")}
    r0 = r[0]
    for i in range(len(g)):
        out["psnr"].append(float(psnr(g[i], r[i])))
        out["psnr_face"].append(float(psnr(gc[i], rc[i])))
        out["ssim_face"].append(float(ssim(gc[i:i + 1].clamp(-1, 1), rc[i:i + 1])))
        out["psnr_lowres"].append(float(psnr(pool(g[i:i + 1]), pool(r[i:i + 1]))))
        out["colour_dist"].append(float((gc[i].mean((1, 2)) - rc[i].mean((1, 2))).norm() * 127.5))
        out["psnr_to_ref"].append(float(psnr(g[i], r0)))
    return {k: np.array(v) for k, v in out.items()}


def windowed(m: dict[str, np.ndarray]) -> dict[str, list[float]]:
    res = {}
    for k, v in m.items():
        row = []
        for s0, s1 in WINDOWS:
            i0, i1 = int(round(s0 * FPS)), min(len(v), int(round(s1 * FPS)))
            row.append(float(np.mean(v[i0:i1])) if i1 > i0 else float("nan"))
        res[k] = row
    return res


@torch.no_grad()
def run_generation(engine, ref: np.ndarray, audio: np.ndarray, gt: torch.Tensor, mode: str, seed: int,
                   steps: int | None = None, cfg: float | None = None, history_noise: float | None = None):
    """-> (frames [F,H,W,3] uint8, generated latents [1,C,T,h,w]). gt: scaled GT latents [1,C,T,h,w]."""
    sess = engine.open_session([ref], seed=seed, steps=steps, cfg=cfg, warm_up=False)
    sp = sess.sampler
    hn = sp.history_noise if history_noise is None else history_noise
    # whole audio (plus silence pad so the last block's receptive field exists); never trimmed here
    sess.push_audio(np.concatenate([audio, np.zeros(SAMPLE_RATE, np.float32)]).astype(np.float32), SAMPLE_RATE)
    dit, cache = engine.model.dit, sess._cache
    bf = engine.cfg.dit.block_frames
    T = gt.shape[2]
    sched = schedule(sp.steps, sp.shift)
    guidance = sp.cfg if sess._use_cfg else None
    frames, lats = [], []
    for j0 in range(0, T, bf):
        feat = sess._features(j0, j0 + bf)
        b = feat.shape[0]
        x = torch.randn((1, *gt.shape[1:2], bf, *gt.shape[3:]), generator=sess._gen).to(sess.dtype)
        hnoise = torch.randn(x.shape, generator=sess._gen).to(sess.dtype) if hn > 0 else None
        for t, tn in zip(sched[:-1], sched[1:]):
            tt = torch.full((b,), t, dtype=sess.dtype)
            v = dit.block_forward(cache, x.expand(b, -1, -1, -1, -1), tt, feat, False)
            v = cfg_combine(v[:1], v[1:], guidance) if guidance is not None else v
            x = euler_step(x, v, t, tn)
        hist = x if mode == "free" else gt[:, :, j0:j0 + bf].to(sess.dtype)
        if hnoise is not None:
            hist = (1 - hn) * hist + hn * hnoise
        dit.block_forward(cache, hist.expand(b, -1, -1, -1, -1), torch.full((b,), hn, dtype=sess.dtype), feat, True)
        cache.advance()
        lats.append(x)
        frames.append(to_uint8(sess._decode(x)))
    return np.concatenate(frames), torch.cat(lats, 2)


@torch.no_grad()
def decode_stream(engine, ref: np.ndarray, lat: torch.Tensor) -> np.ndarray:
    """Scaled latents [1,C,T,h,w] through the session's streaming decoder, one latent frame at a time."""
    sess = engine.open_session([ref], seed=0, warm_up=False)
    sess._dec_state = StreamState()
    return np.concatenate([to_uint8(sess._decode(lat[:, :, j:j + 1])) for j in range(lat.shape[2])])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", default="/work/packs/shared256")
    ap.add_argument("--clips", nargs="+", default=["LipNet__evaluation_samples_GRID_lbax4n_0000",
                                                  "EDTalk__test_data_pose_source2_0010",
                                                  "Wav2Lip-GFPGAN__inputs_kim_7s_raw_0000"])
    ap.add_argument("--modes", nargs="+", default=["vae", "free", "tf", "gtnoise"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=f"{DIAG}/results.json")
    ap.add_argument("--save-frames", default=f"{DIAG}/frames")
    args = ap.parse_args()
    torch.set_num_threads(2)
    engine = load_engine(device="cpu")
    vae, scale = engine.model.vae, float(engine.model.vae.latent_scale)
    print("sampler", engine.cfg.sampler, "latent_scale", scale, flush=True)
    pack = Pack(args.pack)
    size = engine.cfg.vae.resolution
    results = {}
    try:
        results = json.load(open(args.out))
    except FileNotFoundError:
        pass
    for cid in args.clips:
        frames = pack.load_frames(cid, size, 0, N_FRAMES)
        audio = pack.load_audio(cid)[: N_FRAMES * SAMPLE_RATE // FPS]
        video = to_t(frames).permute(1, 0, 2, 3)[None]  # [1,3,F,H,W]
        gt = vae.encode(video)[0] * scale  # [1,C,T,h,w]
        ref = frames[0]
        res = results.setdefault(cid, {})
        free_lat = None
        # control: a frozen copy of the reference frame
        res["copy_ref"] = {"windowed": windowed(frame_metrics(np.repeat(frames[:1], N_FRAMES, 0), frames))}
        for mode in args.modes:
            t0 = time.time()
            extra = {}
            if mode == "vae":
                out = decode_stream(engine, ref, gt)
            elif mode == "gtnoise":
                if free_lat is None:
                    _, free_lat = run_generation(engine, ref, audio, gt, "free", args.seed)
                err = free_lat - gt
                rms = err.pow(2).mean(dim=(0, 1, 3, 4), keepdim=True).sqrt()  # per latent frame
                g = torch.Generator().manual_seed(args.seed + 1)
                out = decode_stream(engine, ref, gt + rms * torch.randn(gt.shape, generator=g))
            else:
                kw = {"free": {}, "tf": {}, "free_s8": {"steps": 8}, "free_s12": {"steps": 12},
                      "free_cfg1": {"cfg": 1.0}, "free_cfg3": {"cfg": 3.0}, "free_hn03": {"history_noise": 0.3},
                      "tf_cfg1": {"cfg": 1.0}}[mode]
                gen_mode = "tf" if mode.startswith("tf") else "free"
                out, lat = run_generation(engine, ref, audio, gt, gen_mode, args.seed, **kw)
                if mode == "free":
                    free_lat = lat
                # latent-space error vs GT per latent frame (relative to GT std)
                rel = ((lat - gt).pow(2).mean(dim=(0, 1, 3, 4)).sqrt() / gt.std()).tolist()
                extra["latent_rel_rmse"] = [round(x, 3) for x in rel]
                extra["latent_std"] = [round(x, 3) for x in lat.std(dim=(0, 1, 3, 4)).tolist()]
            out = out[:N_FRAMES]
            m = frame_metrics(out, frames)
            res[mode] = {"windowed": windowed(m), "per_frame_psnr": [round(x, 2) for x in m["psnr"]],
                         "seconds": round(time.time() - t0, 1), **extra}
            if args.save_frames:
                import os
                os.makedirs(args.save_frames, exist_ok=True)
                np.save(f"{args.save_frames}/{cid}__{mode}.npy", out)
            w = res[mode]["windowed"]
            print(f"{cid[:30]:30s} {mode:10s} psnr {['%.2f' % x for x in w['psnr']]} face "
                  f"{['%.2f' % x for x in w['psnr_face']]} lowres {['%.2f' % x for x in w['psnr_lowres']]} "
                  f"col {['%.1f' % x for x in w['colour_dist']]} ({time.time() - t0:.0f}s)", flush=True)
            json.dump(results, open(args.out, "w"), indent=1)
        np.save(f"{args.save_frames}/{cid}__real.npy", frames)
        print(f"{cid[:30]:30s} copy_ref   psnr {['%.2f' % x for x in res['copy_ref']['windowed']['psnr']]}",
              flush=True)


if __name__ == "__main__":
    main()
