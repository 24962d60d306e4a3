"""What a driver face and the motion gain cost the live session: the time to open a session (warm-up and
graph capture included, as the app's Start does) and the time per block at steady state, each variant
against the plain portrait. Variants alternate round by round (A B C A B C ...) so drift of the machine
hits all; medians. Session 15 (H100, bf16, backend compile, v0.8's weights with GRID lrwp9a as the driver, the
astronaut portrait, 5 rounds):

    PYTHONPATH=. python tools/session_cost.py --weights MODEL --portrait P.png --driver D.png [--rounds 5]

    | variant | session open (s), median | x portrait | block (ms), median | x portrait |
    | portrait | 0.651 | 1.00 | 8.18 | 1.000 |
    | driver | 0.690 | 1.06 | 8.13 | 0.994 |
    | driver + motion gain 2 | 0.665 | 1.02 | 8.19 | 1.002 |

The driver's extra reference encode costs ~40 ms at open and nothing per block, so caching its latent is not
worth the code; the motion gain's few eager ops per block do not show.
"""
import argparse
import dataclasses
import statistics
import time

import numpy as np
import torch

from engine.api import load_engine
from engine.config import SAMPLE_RATE
from engine.io.media import read_image

VARIANTS = {  # name: (driver on, SamplerConfig changes)
    "portrait": (False, {"use_driver": False}),
    "driver": (True, {}),
    "driver + motion gain 2": (True, {"motion_gain": 2.0}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--portrait", required=True)
    ap.add_argument("--driver", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=6.0, help="speech-like audio streamed per session")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    engine = load_engine(weights=args.weights, device=args.device)
    portrait, driver = read_image(args.portrait), read_image(args.driver)
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(args.seconds * SAMPLE_RATE))).astype(np.float32)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    opens: dict[str, list[float]] = {k: [] for k in VARIANTS}
    blocks: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for r in range(args.rounds + 1):  # round 0 warms the process up (first CUDA use, compile caches)
        for name, (use, change) in VARIANTS.items():
            sampler = dataclasses.replace(engine.cfg.sampler, **change)
            engine.model.cfg = engine.cfg = dataclasses.replace(engine.cfg, sampler=sampler)
            sync()
            t = time.perf_counter()
            session = engine.open_session([portrait], seed=r, driver=driver if use else None)
            sync()
            t_open = time.perf_counter() - t
            step = session.frames_per_block * (SAMPLE_RATE // 25)
            times = []
            for i in range(0, len(audio) - step, step):
                session.push_audio(audio[i : i + step], SAMPLE_RATE)
                t = time.perf_counter()
                session.step()  # its frames' host copy synchronises
                times.append(time.perf_counter() - t)
            if r:
                opens[name].append(t_open)
                blocks[name] += times[len(times) // 2 :]  # the steady half (KV window full)
    base_open, base_block = statistics.median(opens["portrait"]), statistics.median(blocks["portrait"])
    print(f"{engine.device} {engine.dtype}, backend {getattr(engine.model, 'backend', 'eager')}, {args.rounds} rounds")
    print("| variant | session open (s), median | x portrait | block (ms), median | x portrait |")
    print("|---|---|---|---|---|")
    for name in VARIANTS:
        o, b = statistics.median(opens[name]), statistics.median(blocks[name])
        print(f"| {name} | {o:.3f} | {o / base_open:.2f} | {b * 1e3:.2f} | {b / base_block:.3f} |")


if __name__ == "__main__":
    main()
