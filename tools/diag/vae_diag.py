"""Is the VAE alone stable over 3 s? Reconstruction PSNR per time window with different encode/decode
regimes (reference = frame 0 unless said otherwise).

  full_1ref      : encode all 73 frames in one call, decode all in one call (no streaming), 1 ref (frame 0)
  full_0ref      : same, no reference
  win{N}_1ref    : independent windows of N = 4k+1 frames (encoder and decoder restarted per window),
                   1 ref (frame 0) - the regime the VAE was trained on (5-7 frame clips) when N is 5/9
  late_restart   : frames 48..72 (25 frames) encoded+decoded from scratch: compare with full_1ref on the
                   same frames (is the loss due to elapsed time or to those frames?)
Also prints latent statistics over time for the full-clip encoding (mean/std per latent frame).
"""
from __future__ import annotations
import os

import argparse
import json
import time

import numpy as np
import torch

from engine.api import load_engine
from engine.runtime.session import to_uint8
from engine.train.pack import Pack

import sys
DIAG = os.environ.get("AVACAST_DIAG_DIR", "runs/diag")  # outputs of these diagnostics

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from identity_diag import N_FRAMES, frame_metrics, to_t, windowed  # noqa: E402


@torch.no_grad()
def recon(vae, frames: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
    video = to_t(frames).permute(1, 0, 2, 3)[None]
    mean = vae.encode(video)[0]
    refs = to_t(ref[None])[None] if ref is not None else video.new_zeros(1, 0, 3, *video.shape[3:])
    return to_uint8(vae.decode(mean, vae.ref_features(refs)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", default="/work/packs/shared256")
    ap.add_argument("--clips", nargs="+", default=["LipNet__evaluation_samples_GRID_lbax4n_0000"])
    ap.add_argument("--modes", nargs="+", default=["full_1ref", "full_0ref", "win5_1ref", "win9_1ref",
                                                   "win33_1ref", "late_restart"])
    ap.add_argument("--out", default=f"{DIAG}/vae_results.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    engine = load_engine(device="cpu")
    vae = engine.model.vae
    pack = Pack(args.pack)
    size = engine.cfg.vae.resolution
    try:
        results = json.load(open(args.out))
    except FileNotFoundError:
        results = {}
    for cid in args.clips:
        frames = pack.load_frames(cid, size, 0, N_FRAMES)
        res = results.setdefault(cid, {})
        with torch.no_grad():
            mean = vae.encode(to_t(frames).permute(1, 0, 2, 3)[None])[0]
        res["latent_mean_t"] = [round(x, 3) for x in mean.mean(dim=(0, 1, 3, 4)).tolist()]
        res["latent_std_t"] = [round(x, 3) for x in mean.std(dim=(0, 1, 3, 4)).tolist()]
        print(cid[:30], "latent mean over t", res["latent_mean_t"])
        print(cid[:30], "latent std  over t", res["latent_std_t"], flush=True)
        for mode in args.modes:
            t0 = time.time()
            if mode == "full_1ref":
                out = recon(vae, frames, frames[0])
            elif mode == "full_0ref":
                out = recon(vae, frames, None)
            elif mode.startswith("win"):
                n = int(mode[3:].split("_")[0])
                parts, s = [], 0
                while s < N_FRAMES:
                    m = min(n, N_FRAMES - s)
                    m = 4 * ((m - 1) // 4) + 1
                    parts.append(recon(vae, frames[s:s + m], frames[0]))
                    s += m
                out = np.concatenate(parts)
            elif mode == "late_restart":
                late = recon(vae, frames[48:73], frames[0])
                m_late = frame_metrics(late, frames[48:73])
                res[mode] = {"psnr_mean_frames48_72": float(m_late["psnr"].mean()),
                             "colour_mean": float(m_late["colour_dist"].mean()),
                             "per_frame_psnr": [round(x, 2) for x in m_late["psnr"]]}
                print(f"{cid[:30]:30s} {mode:12s} frames 48-72 psnr {m_late['psnr'].mean():.2f} "
                      f"col {m_late['colour_dist'].mean():.1f} ({time.time() - t0:.0f}s)", flush=True)
                json.dump(results, open(args.out, "w"), indent=1)
                continue
            m = frame_metrics(out, frames)
            res[mode] = {"windowed": windowed(m), "per_frame_psnr": [round(x, 2) for x in m["psnr"]],
                         "psnr_frames48_72": float(m["psnr"][48:73].mean())}
            w = res[mode]["windowed"]
            print(f"{cid[:30]:30s} {mode:12s} psnr {['%.2f' % x for x in w['psnr']]} face "
                  f"{['%.2f' % x for x in w['psnr_face']]} col {['%.1f' % x for x in w['colour_dist']]} "
                  f"({time.time() - t0:.0f}s)", flush=True)
            np.save(f"{DIAG}/frames/{cid}__vae_{mode}.npy", out)
            json.dump(results, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
