"""Offline render throughput of models through the streaming session (the eval's `render` path): the first
validation clip's 8 s from its first frame, REPEATS renders per model after one warm-up render, median
frames/s. Models alternate (A B A B) so drift of the machine hits both. Session 12 (H100, bf16):

    PYTHONPATH=. python tools/render_throughput.py --pack VALPACK MODEL_A MODEL_B [--rounds 2 --repeats 3]
"""
import argparse
import time

import numpy as np
import torch

from engine.api import load_engine
from engine.train.evaluate import render, select_clips
from engine.train.pack import Pack


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model files (first shard)")
    ap.add_argument("--pack", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    pack = Pack(args.pack)
    clip = select_clips(pack.clips("val", audio=True), 1)[0]
    frames, audio = pack.load_frames(clip, 256)[:200], pack.load_audio(clip)[:200 * 640].astype(np.float32)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for _ in range(args.rounds):
        for path in args.models:
            engine = load_engine(weights=path, device=args.device)
            fps = []
            for _ in range(args.repeats + 1):  # the first one warms up
                sync()
                t = time.perf_counter()
                n = len(render(engine, [frames[0]], audio))
                sync()
                fps.append(n / (time.perf_counter() - t))
            print(f"{path}: {[round(x) for x in fps]} frames/s, median after warm-up {np.median(fps[1:]):.0f}")


if __name__ == "__main__":
    main()
