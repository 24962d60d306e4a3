"""Per-thread GPU set-up cost: blocks of a warmed-up session stepped in the warming thread vs a new one.

Usage (GPU): PYTHONPATH=. python tools/thread_probe.py [graphs|compile|eager]; prints ms per block."""
import threading, time, sys
import numpy as np, torch
from engine.api import load_engine
from engine.config import EngineConfig
backend = sys.argv[1] if len(sys.argv) > 1 else "graphs"
eng = load_engine(EngineConfig.preset("base"), device="cuda", backend=backend)
ref = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
def run_blocks(sess, tag):
    out = []
    for i in range(12):
        sess.push_audio(np.zeros(2560, np.float32), 16000)
        t0 = time.perf_counter(); sess.step(); torch.cuda.synchronize()
        out.append(round((time.perf_counter() - t0) * 1000, 1))
    print(tag, out, flush=True)
for mode in ["same-thread", "new-thread", "new-thread-again"]:
    t0 = time.perf_counter()
    s = eng.open_session([ref], seed=0)
    print(mode, "open s", round(time.perf_counter() - t0, 1), flush=True)
    if mode == "same-thread":
        run_blocks(s, mode)
    else:
        th = threading.Thread(target=run_blocks, args=(s, mode)); th.start(); th.join()
