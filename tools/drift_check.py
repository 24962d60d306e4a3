"""Drift of a long render against its portrait (issue 4's "no drift after 60 s"): frame-to-frame change, mean
distance and PSNR to the portrait as the model sees it, first vs last 10 s (engine.train.evaluate.drift).

Usage: PYTHONPATH=. python tools/drift_check.py RENDER.mp4 PORTRAIT.png [--span-s 10]
(the portrait as the render got it: the cropped image, or the photo with the render's --crop none)
"""
from __future__ import annotations

import argparse

from engine.io import media
from engine.train.evaluate import drift


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("portrait")
    ap.add_argument("--span-s", type=float, default=10.0)
    a = ap.parse_args()
    d = drift(media.read_video(a.video)[0], media.read_image(a.portrait), a.span_s)
    print(f"{a.video}: first / last {d['span_s']:g} s: frame change {d['stability_first']:.4f} / "
          f"{d['stability_last']:.4f}; distance to the portrait {d['to_portrait_first']:.3f} / "
          f"{d['to_portrait_last']:.3f}; PSNR to it {d['psnr_to_portrait_first']:.2f} / "
          f"{d['psnr_to_portrait_last']:.2f} dB")


if __name__ == "__main__":
    main()
