"""`avacast bench`: steady-state speed of a config at the full KV window (issue 5).

    avacast bench --preset paper --steps 12 --cfg 2 --block 4 --window 32 --backend compile --json p.json
    avacast bench --preset tiny --device cpu --seconds 2 --json out.json

Random weights (speed does not depend on them), so any preset can be measured without training.
Phases: fill the KV window (eager) -> count FLOPs of one full-window block -> apply the backend ->
warm up -> time blocks for --seconds -> stream --seconds more through the Runner, fed in 20 ms chunks
on the wall clock and shown at the runner's playout delay, for p50/p95 mic->frame latency.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.cli import UserError
from engine.cli.common import add_dtype_arg
from engine.cli.stream import CHUNK_S, load_model
from engine.config import SAMPLE_RATE, EngineConfig
from engine.device import BACKENDS

log = logging.getLogger(__name__)
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}  # dense tensor-core peaks (datasheets)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("bench", help="measure steady-state FPS, latency, FLOPs and memory",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="base", choices=["tiny", "base", "paper"])
    p.add_argument("--resolution", type=int, metavar="R", help="video size R x R")
    p.add_argument("--steps", type=int, metavar="N", help="sampler steps")
    p.add_argument("--cfg", type=float, metavar="G", help="guidance scale (1 = off)")
    p.add_argument("--identity-hold", type=float, metavar="B", help="identity hold strength 0-1 (default 0: off)")
    p.add_argument("--block", type=int, metavar="B", help="latent frames per block")
    p.add_argument("--window", type=int, metavar="W", help="latent frames in the KV window")
    p.add_argument("--backend", default="eager", choices=list(BACKENDS))
    p.add_argument("--seconds", type=float, default=10.0, metavar="S",
                   help="length of the timed phase and of the paced latency phase (each)")
    p.add_argument("--paced-seconds", type=float, metavar="S",
                   help="length of the paced latency phase (default: --seconds; 0 skips it)")
    p.add_argument("--warmup", type=int, default=3, metavar="K", help="blocks after the backend is applied")
    p.add_argument("--peak-tflops", type=float, help="GPU peak for utilisation (default: known GPUs)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add_dtype_arg(p)
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")


def derive_config(args: argparse.Namespace) -> EngineConfig:
    base = EngineConfig.preset(args.preset)
    try:
        vae = base.vae if args.resolution is None else dataclasses.replace(base.vae, resolution=args.resolution)
        dit = dataclasses.replace(base.dit, **{k: v for k, v in (("block_frames", args.block),
                                                                 ("window_frames", args.window)) if v is not None})
        sampler = dataclasses.replace(base.sampler, **{k: v for k, v in (("steps", args.steps), ("cfg", args.cfg),
                                                                         ("identity_hold", args.identity_hold))
                                                       if v is not None})
        return dataclasses.replace(base, vae=vae, dit=dit, sampler=sampler)
    except ValueError as exc:
        raise UserError(f"invalid configuration: {exc}") from None


class _Feeder:
    """Synthetic speech-like audio pushed exactly as far as the next block needs."""

    def __init__(self, seed: int = 0) -> None:
        self.rng, self.pos = np.random.default_rng(seed), 0

    def chunk(self, n: int) -> np.ndarray:
        t = (self.pos + np.arange(n)) / SAMPLE_RATE
        env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)  # syllables
        x = env * (0.3 * np.sin(2 * np.pi * 150 * t) + 0.05 * self.rng.standard_normal(n))
        self.pos += n
        return x.astype(np.float32)

    def block(self, session: Any) -> list:
        need = session.samples_needed - self.pos
        if need > 0:
            session.push_audio(self.chunk(need), SAMPLE_RATE)
        return session.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(session: Any, feeder: _Feeder) -> tuple[float, int]:
    """FLOPs of one block (torch's flop counter: matmuls, convs, attention) and its frame count."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        frames = feeder.block(session)
    return float(fc.get_total_flops()), len(frames)


def apply_backend(engine: Any, backend: str) -> str:
    from engine import device as dev

    try:
        engine.model = dev.prepare(engine.model, backend)
    except (RuntimeError, ValueError) as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    return f"engine.device.prepare(model, {backend!r})"


def time_blocks(session: Any, feeder: _Feeder, device: torch.device, seconds: float) -> dict[str, Any]:
    """Time whole blocks (step() incl. the frames' host copy) until `seconds` have passed."""
    frames, total, block_s, stages = 0, 0.0, [], {}
    while total < seconds or len(block_s) < 3:
        _sync(device)
        t0 = time.perf_counter()
        out = feeder.block(session)
        _sync(device)
        dt = time.perf_counter() - t0
        frames, total = frames + len(out), total + dt
        block_s.append(dt)
        for k, v in session.timings.items():
            stages.setdefault(k, []).append(v)
    return {"fps": frames / total, "blocks": len(block_s), "frames": frames,
            "block_ms_p50": 1000 * statistics.median(block_s),
            "stage_ms": {k: 1000 * statistics.median(v) for k, v in stages.items()}}


def paced_latency(engine: Any, refs: list[np.ndarray], seconds: float) -> dict[str, Any]:
    """Feed `seconds` of audio in 20 ms chunks on the wall clock through a live Runner."""
    from engine.runtime.runner import Runner
    from engine.runtime.sinks import NullSink

    t_open = time.perf_counter()
    session = engine.open_session(refs, seed=1, warm_up=False)  # compiles/captures here
    runner = Runner(session, [NullSink()], realtime=True, cfg=engine.cfg.runtime,
                    device_name=engine.device_name)
    feeder, chunk = _Feeder(seed=1), int(CHUNK_S * SAMPLE_RATE)
    n = max(1, int(seconds / CHUNK_S))
    cuda = engine.device.type == "cuda"
    mem_start = torch.cuda.memory_allocated(engine.device) if cuda else 0
    runner.start()  # warms the session up in the engine thread
    open_s = time.perf_counter() - t_open
    t0 = time.monotonic()
    try:
        for k in range(n):
            if runner.error is not None:
                break
            runner.push_audio(feeder.chunk(chunk), SAMPLE_RATE)
            time.sleep(max(0.0, t0 + (k + 1) * CHUNK_S - time.monotonic()))
        runner.end_audio()
        runner.wait(max(10.0, 2 * seconds))
    finally:
        runner.stop()
    if runner.error is not None:
        raise RuntimeError(f"paced run failed: {runner.error}") from runner.error
    st = runner.stats()
    mem_end = torch.cuda.memory_allocated(engine.device) if cuda else 0
    return {"latency_p50_ms": st.latency_p50_ms, "latency_p95_ms": st.latency_p95_ms,
            "paced": {**st.to_dict(), "seconds": n * CHUNK_S, "session_open_s": open_s,
                      "gpu_mem_start_bytes": mem_start,
                      "gpu_mem_end_bytes": mem_end}}


def peak_tflops(name: str, given: float | None) -> float | None:
    if given:
        return given
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        raise UserError("--seconds must be > 0")
    cfg = derive_config(args)
    if args.backend == "tensorrt" and importlib.util.find_spec("torch_tensorrt") is None:
        raise UserError("--backend tensorrt needs torch-tensorrt, which is not installed "
                        "(pip install torch-tensorrt on a machine with TensorRT); use --backend compile")
    engine = load_model(argparse.Namespace(weights=None, device=args.device, dtype=args.dtype), cfg)
    from engine.device import prepare
    prepare(engine.model, "eager")  # fill the window and count FLOPs eagerly; --backend applies after
    device = engine.device
    res = cfg.vae.resolution
    refs = [np.random.default_rng(0).integers(0, 256, (res, res, 3), dtype=np.uint8)]
    session, feeder = engine.open_session(refs, seed=0), _Feeder()
    with torch.no_grad():
        window_blocks = cfg.dit.window_frames // cfg.dit.block_frames
        for _ in range(window_blocks + 1):  # the KV window is full (and has rolled once) from here on
            feeder.block(session)
        flops, fr = count_flops(session, feeder)
        note = apply_backend(engine, args.backend)
        for _ in range(args.warmup):
            feeder.block(session)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        timed = time_blocks(session, feeder, device, args.seconds)
        peak_mem = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    paced_s = args.seconds if args.paced_seconds is None else args.paced_seconds
    latency = paced_latency(engine, refs, paced_s) if paced_s > 0 else {}
    flops_per_frame = flops / max(fr, 1)
    peak = peak_tflops(engine.device_name, args.peak_tflops) if device.type == "cuda" else None
    tflops = flops_per_frame * timed["fps"] / 1e12
    result = {
        "preset": args.preset, "resolution": res, "steps": cfg.sampler.steps, "cfg": cfg.sampler.cfg,
        "identity_hold": cfg.sampler.identity_hold,
        "block_frames": cfg.dit.block_frames, "window_frames": cfg.dit.window_frames,
        "frames_per_block": session.frames_per_block, "backend": args.backend, "backend_note": note,
        "device": str(device), "device_name": engine.device_name, "dtype": str(engine.dtype),
        "torch": torch.__version__, "python": platform.python_version(),
        **timed, "flops_per_frame": flops_per_frame, "tflops_achieved": tflops,
        "peak_tflops": peak, "utilisation": (tflops / peak) if peak else None,
        "compute_floor_fps": (peak * 1e12 / flops_per_frame) if peak and flops_per_frame else None,
        "peak_gpu_mem_bytes": int(peak_mem), "peak_gpu_mem_gib": peak_mem / 2**30, **latency,
    }
    _report(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _report(r: dict[str, Any]) -> None:
    stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stage_ms"].items())
    print(f"{r['preset']} {r['resolution']}px steps {r['steps']} cfg {r['cfg']} block {r['block_frames']} "
          f"window {r['window_frames']} | {r['backend']} on {r['device_name']} ({r['dtype']})")
    print(f"  {r['fps']:.1f} FPS at the full window ({r['blocks']} blocks, {r['block_ms_p50']:.2f} ms/block; "
          f"{stages} ms)")
    util = f", {100 * r['utilisation']:.1f}% of peak" if r["utilisation"] else ""
    print(f"  {r['flops_per_frame'] / 1e9:.2f} GFLOP/frame -> {r['tflops_achieved']:.2f} TFLOP/s{util}; "
          f"peak GPU memory {r['peak_gpu_mem_gib']:.2f} GiB")
    if "paced" in r:
        p = r["paced"]
        print(f"  paced (playout delay now {p['playout_ms']:.0f} ms): latency p50 {r['latency_p50_ms']:.0f} ms, "
              f"p95 {r['latency_p95_ms']:.0f} ms, late {p['late']}, held {p['held']}, dropped {p['dropped']}; "
              f"session open {p['session_open_s']:.1f} s")
