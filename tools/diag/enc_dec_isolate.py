"""Encoder or decoder: which part of the VAE drifts over a long causal clip?

short-context latents: for s = 0, 4, 8, ... encode frames [s, s+5) from scratch (the 5-frame regime the VAE
was trained on) and keep the 4-frame latent (frames s+1..s+4); prepend the single-frame latent of frame 0.
That gives a full-length latent sequence in which no latent saw more than 5 frames of encoder context.
  dec_long_of_short : stream-decode that sequence in one call (decoder sees the whole 2.9 s)
  latent drift      : relative RMSE between long-context (whole clip in one encoder call) and
                      short-context latents, per latent frame
"""
from __future__ import annotations
import os

import json
import sys

import numpy as np
import torch

from engine.api import load_engine
from engine.runtime.session import to_uint8
from engine.train.pack import Pack

DIAG = os.environ.get("AVACAST_DIAG_DIR", "runs/diag")  # outputs of these diagnostics

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from identity_diag import N_FRAMES, frame_metrics, to_t, windowed  # noqa: E402


@torch.no_grad()
def main() -> None:
    clips = sys.argv[1:] or ["LipNet__evaluation_samples_GRID_lbax4n_0000"]
    torch.set_num_threads(2)
    engine = load_engine(device="cpu")
    vae = engine.model.vae
    pack = Pack("/work/packs/shared256")
    out_path = f"{DIAG}/enc_dec_results.json"
    try:
        results = json.load(open(out_path))
    except FileNotFoundError:
        results = {}
    for cid in clips:
        frames = pack.load_frames(cid, engine.cfg.vae.resolution, 0, N_FRAMES)
        video = to_t(frames).permute(1, 0, 2, 3)[None]
        long_lat = vae.encode(video)[0]
        short = [vae.encode(video[:, :, :1])[0]]
        for s in range(0, N_FRAMES - 4, 4):
            short.append(vae.encode(video[:, :, s:s + 5])[0][:, :, 1:2])
        short_lat = torch.cat(short, 2)
        rel = ((long_lat - short_lat).pow(2).mean(dim=(0, 1, 3, 4)).sqrt() / short_lat.std()).tolist()
        refs = vae.ref_features(to_t(frames[:1])[None])
        dec = to_uint8(vae.decode(short_lat, refs))
        m = frame_metrics(dec, frames)
        res = {"latent_rel_rmse_long_vs_short": [round(x, 3) for x in rel],
               "short_std_t": [round(x, 3) for x in short_lat.std(dim=(0, 1, 3, 4)).tolist()],
               "dec_long_of_short": {"windowed": windowed(m), "per_frame_psnr": [round(x, 2) for x in m["psnr"]]}}
        results[cid] = res
        w = res["dec_long_of_short"]["windowed"]
        print(cid[:30], "long-vs-short latent rel RMSE", res["latent_rel_rmse_long_vs_short"])
        print(cid[:30], "short-context latent std", res["short_std_t"])
        print(f"{cid[:30]} dec_long_of_short psnr {['%.2f' % x for x in w['psnr']]} face "
              f"{['%.2f' % x for x in w['psnr_face']]} col {['%.1f' % x for x in w['colour_dist']]}", flush=True)
        json.dump(results, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main()
