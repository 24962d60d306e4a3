"""How much appearance does the VAE latent carry, and how much comes from the reference?

For pairs of validation clips of different people (A, B): encode A's first 33 frames (5-frame context, as the
generator's training latents), then stream-decode A's latents with A's own frame 0 as the reference, and with
B's frame 0. If the latent carried motion only (the paper's aim: appearance from the references), the swapped
decode would look like B; if it carries the appearance, it stays A and scores as A.
  own     : PSNR(decode(z_A, ref_A), A)
  swapped : PSNR(decode(z_A, ref_B), A)   close to `own` -> the reference adds little
  to_B    : PSNR(decode(z_A, ref_B), B's frames)
`avacast eval` reports `swapped` for every eval clip as the VAE row "1, of another person" (windowed encode);
this tool adds the picture sheet and `to_B`, on the generator's 5-frame-context latents, decoded as one causal
stream (what the app decodes).
Usage: PYTHONPATH=. python tools/diag/ref_swap.py --weights MODEL_OR_VAE --pack VALPACK [--pairs 6] [--sheet OUT.png]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from engine.runtime.session import to_uint8
from engine.train.evaluate import load_for_eval
from engine.train.pack import Pack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from identity_diag import to_t  # noqa: E402

N = 33  # frames: 9 latent frames


def mean_psnr(a: np.ndarray, b: np.ndarray) -> float:
    from engine.train.losses import psnr
    return float(np.mean([float(psnr(x, y)) for x, y in zip(to_t(a), to_t(b))]))


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--pack", required=True)
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--sheet", help="PNG: per pair A, decode with ref A, decode with ref B, B (frame 20)")
    args = ap.parse_args()
    _, vae, _ = load_for_eval(args.weights, device="cpu")  # a model or a VAE export
    vae = vae.float()
    size = vae.cfg.resolution

    def decode(ref: np.ndarray, z: torch.Tensor) -> np.ndarray:  # z [1,C,T,h,w] -> [F,H,W,3] uint8
        refs = vae.ref_features(to_t(ref[None])[None])  # [1,M,D]
        return to_uint8(vae.decode(z, refs))
    pack = Pack(args.pack)
    by_id: dict[str, object] = {}
    for c in pack.clips("val"):
        if c.frames >= N:
            by_id.setdefault(c.identity, c)
    clips = list(by_id.values())
    rows, tiles = [], []
    for i in range(min(args.pairs, len(clips) - 1)):
        a, b = clips[i], clips[i + 1]
        fa, fb = pack.load_frames(a, size, count=N), pack.load_frames(b, size, count=N)
        z = vae.encode_short_context(to_t(fa).permute(1, 0, 2, 3)[None])  # [1,C,T,h,w]
        own, swap = decode(fa[0], z), decode(fb[0], z)
        rows.append((a.identity, b.identity, mean_psnr(own, fa), mean_psnr(swap, fa), mean_psnr(swap, fb)))
        print("%-28s ref %-28s own %.2f  swapped %.2f  to_B %.2f" % rows[-1], flush=True)
        tiles.append(np.concatenate([fa[20], own[20], swap[20], fb[20]], 1))
    m = np.array([r[2:] for r in rows])
    print("mean: own %.2f dB, swapped %.2f dB (to A), %.2f dB (to B)" % tuple(m.mean(0)))
    if args.sheet:
        import cv2
        cv2.imwrite(args.sheet, cv2.cvtColor(np.concatenate(tiles, 0), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
