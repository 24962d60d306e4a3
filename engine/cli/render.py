"""`avacast render`: portrait(s) + speech file -> MP4 (or NPZ), through the same streaming session as live."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.cli import UserError
from engine.cli.common import add_model_args, crop_portrait, load_engine_from_args
from engine.config import SAMPLE_RATE
from engine.runtime.offline import frame_count, iter_render


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="render a talking portrait from an image and a speech file",
                       description="Render OUT.mp4 (H.264 + AAC, 25 fps) or OUT.npz from portrait(s) and speech.")
    p.add_argument("--ref", action="append", required=True, metavar="IMG", help="portrait image (repeat for 1-8)")
    p.add_argument("--audio", required=True, help="speech: any format with an audio stream")
    p.add_argument("--out", required=True, help="output .mp4 or .npz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crop", choices=["auto", "none"], default="auto",
                   help="auto: head-and-shoulders crop around the largest face (as in training)")
    p.add_argument("--chunk-ms", type=float, default=None, help="feed audio in chunks of MS (default: whole file)")
    add_model_args(p)


def run(args: argparse.Namespace) -> int:
    from engine.io.media import MediaError, read_audio, read_image, write_video

    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".npz"):
        raise UserError(f"{out}: output must end in .mp4 or .npz")
    try:
        refs = [read_image(p) for p in args.ref]
        audio = read_audio(args.audio, SAMPLE_RATE)
    except MediaError as e:
        raise UserError(str(e)) from None
    if args.chunk_ms is not None and args.chunk_ms <= 0:
        raise UserError("--chunk-ms must be positive")
    if args.crop == "auto":
        refs = [crop_portrait(img, path, "avacast render") for img, path in zip(refs, args.ref)]
    engine = load_engine_from_args(args)
    chunk = None if args.chunk_ms is None else max(1, int(round(args.chunk_ms * SAMPLE_RATE / 1000)))
    frames = render_frames(engine, refs, audio, args.seed, chunk)
    try:
        if out.suffix.lower() == ".npz":
            out.parent.mkdir(parents=True, exist_ok=True)
            stacked = np.stack(list(frames))
            np.savez_compressed(out, frames=stacked, audio=audio)
            n = len(stacked)
        else:  # frames go to the encoder as they are made: memory stays flat however long the speech
            n = write_video(out, frames, fps=25, audio=audio, sample_rate=SAMPLE_RATE)
    except (MediaError, OSError) as e:
        raise UserError(str(e).splitlines()[0]) from None
    print(f"wrote {out} ({n} frames, {len(audio) / SAMPLE_RATE:.2f} s, {engine.device_name})")
    return 0


def render_frames(engine, refs: list[np.ndarray], audio: np.ndarray, seed: int = 0,
                  chunk: int | None = None) -> Iterator[np.ndarray]:
    """`audio` through a new session in chunks of `chunk` samples -> RGB frames [H,W,3] uint8 as they are made,
    round(seconds*25) of them, with a progress bar on a terminal. The session opens here (bad references fail
    before anything is written)."""
    try:
        session = engine.open_session(refs, seed=seed)
    except ValueError as e:
        raise UserError(str(e)) from None
    return _progress(iter_render(session, audio, chunk), frame_count(audio))


def _progress(frames: Iterator[np.ndarray], total: int) -> Iterator[np.ndarray]:
    from tqdm import tqdm

    with tqdm(total=total, unit="frame", disable=not sys.stderr.isatty()) as bar:
        for rgb in frames:
            bar.update(1)
            yield rgb
