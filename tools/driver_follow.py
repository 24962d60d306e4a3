"""How a photo moved by the driver face follows the driver itself (session 15).

A photo render with `--driver D` and the driver's own render (`--portraits D`, no driver) of the same clip and seed
share the generated latent stream; only the decode differs. Pairs them: lip sync of each, and how the photo's
landmark mouth follows the driver's frame by frame (`lipsync.mouth_follow`: slope and correlation), overall and
per photo. Render k of clip i starts from photo (i + k) mod N with seed k, as `avacast eval --portraits` renders.
Session 15 (H100 renders, landmarks here; 12 clips x seeds 0-3, lrwp9a): photo 0.142 vs driver 0.187 (17 / 31),
follow correlation 0.13, slope 0.27.

    PYTHONPATH=. python tools/driver_follow.py --pack VALPACK --portraits P/*.png --photo-renders R_PHOTOS \\
        --driver-renders R_DRIVER --driver grid_lrwp9a --seeds 4     # needs mediapipe (face landmarks)
"""
import argparse
from pathlib import Path

import numpy as np

from engine.io import media
from engine.train import lipsync
from engine.train.evaluate import EvalConfig, clip_span, render_path, select_clips
from engine.train.pack import Pack


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", required=True)
    ap.add_argument("--portraits", nargs="+", required=True, help="the eval's photos, in its order")
    ap.add_argument("--photo-renders", required=True, help="renders dir of the eval with --driver")
    ap.add_argument("--driver-renders", required=True, help="renders dir of the eval with --portraits DRIVER")
    ap.add_argument("--driver", required=True, help="the driver's portrait name (its file stem)")
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    photos = [Path(p).stem for p in args.portraits]
    cfg = EvalConfig(seconds=args.seconds)
    at = {d: EvalConfig(renders_dir=d) for d in (args.photo_renders, args.driver_renders)}
    pack, rows = Pack(args.pack), []
    for i, clip in enumerate(select_clips(pack.clips("val", audio=True), args.clips)):
        frames, audio = clip_span(pack.load_frames(clip, 256), pack.load_audio(clip), cfg)
        env = lipsync.speech_envelope(audio, len(frames))
        for k in range(args.seeds):
            photo = photos[(i + k) % len(photos)]
            drv, img = (lipsync.mouth_opening(media.read_video(render_path(at[d], f"{clip.id}@{name}", k))[0]
                                              [: len(frames)], "landmarks")
                        for d, name in ((args.driver_renders, args.driver), (args.photo_renders, photo)))
            slope, corr = lipsync.mouth_follow(img, drv)
            rows.append((photo, lipsync.lipsync_score(drv, env)[0], lipsync.lipsync_score(img, env)[0],
                         np.nan if slope is None else slope, corr))
        print(f"scored {clip.id}", flush=True)
    a = np.array([r[1:] for r in rows], float)
    d = a[:, 1] - a[:, 0]
    print(f"{len(a)} pairs: driver lip sync {a[:, 0].mean():.3f}, photo {a[:, 1].mean():.3f} (better / worse "
          f"{(d > 0).sum()} / {(d < 0).sum()}, t {d.mean() / d.std(ddof=1) * len(d) ** 0.5:.2f}); the photo's mouth "
          f"follows the driver's with slope {np.nanmean(a[:, 2]):.2f}, correlation {a[:, 3].mean():.2f}")
    for name in photos:
        b = a[[r[0] == name for r in rows]]
        if len(b):
            print(f"| {name} | {len(b)} | driver {b[:, 0].mean():.2f} | photo {b[:, 1].mean():.2f} | "
                  f"slope {np.nanmean(b[:, 2]):.2f} | corr {b[:, 3].mean():.2f} |")


if __name__ == "__main__":
    main()
