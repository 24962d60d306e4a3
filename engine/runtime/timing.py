"""Per-stage timing and the `Stats` snapshot of a running stream (issue 5, DESIGN.md §3).

Stages: audio_wait (engine thread waiting for the mic), features / denoise / decode (from
`Session.timings`, which the session measures with CUDA events on CUDA, perf_counter on CPU), queue
(frame produced -> taken by the output; live, mostly the wait for its playout deadline), output (time
inside `sink.put`); step is the wall time of a `step()` that ran blocks (host overhead shows as
step > features + denoise + decode). Every window here is bounded so hours of streaming keep memory flat.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAGES = ("audio_wait", "features", "denoise", "decode", "step", "queue", "output")


@dataclass(frozen=True)
class Stats:
    """A snapshot of a stream; latency is mic->frame (push of the frame's audio -> frame at the sink)."""

    fps: float = 0.0  # new frames per second reaching the primary sink (recent window)
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    frames_out: int = 0  # new frames delivered to the primary sink
    dropped: int = 0  # frames skipped to catch up with a slow sink, dropped by a full queue (all sinks), or never
    # made because the live engine skipped audio it could not keep up with (Runner._catch_up)
    held: int = 0  # times a sink re-showed its last frame because no frame was there (underrun, all sinks)
    late: int = 0  # frames that reached a sink's queue after their deadline; each raised D (all sinks)
    playout_ms: float = 0.0  # current playout delay D of the primary sink (0 when not paced)
    overflow_samples: int = 0  # audio overwritten before the engine read it
    stage_ms: dict[str, float] = field(default_factory=dict)  # median ms per stage, per step/frame
    device: str = "CPU"
    engine_fps: float = 0.0  # frames per second of pure step() time: capacity, so headroom = engine_fps / 25
    run_latency_p50_ms: float = 0.0  # over every frame since the start (1 ms bins), not just the last 60 s
    run_latency_p95_ms: float = 0.0

    def line(self) -> str:
        """One human line for CLIs."""
        stages = " ".join(f"{k}={v:.1f}" for k, v in self.stage_ms.items())
        return (f"fps {self.fps:5.1f} | engine {self.engine_fps:6.1f} fps | latency p50 "
                f"{self.latency_p50_ms:6.1f} ms p95 {self.latency_p95_ms:6.1f} ms | playout "
                f"{self.playout_ms:5.0f} ms | out {self.frames_out} late {self.late} dropped {self.dropped} "
                f"held {self.held} overflow {self.overflow_samples} | ms: {stages}")

    def to_dict(self) -> dict[str, Any]:
        return {"fps": self.fps, "latency_p50_ms": self.latency_p50_ms,
                "latency_p95_ms": self.latency_p95_ms, "frames_out": self.frames_out,
                "dropped": self.dropped, "held": self.held, "late": self.late,
                "playout_ms": self.playout_ms, "overflow_samples": self.overflow_samples,
                "stage_ms": dict(self.stage_ms), "device": self.device, "engine_fps": self.engine_fps,
                "run_latency_p50_ms": self.run_latency_p50_ms, "run_latency_p95_ms": self.run_latency_p95_ms}

    def run_line(self) -> str:
        """Whole-run latency, for a stream's last line."""
        return f"whole run: latency p50 {self.run_latency_p50_ms:.0f} ms p95 {self.run_latency_p95_ms:.0f} ms"


def percentile_ms(values_s: Any, q: float) -> float:
    """q-th percentile of durations given in seconds, in ms (0 when empty)."""
    arr = np.asarray(list(values_s), np.float64)
    return float(np.percentile(arr, q) * 1000.0) if arr.size else 0.0


class Histogram:
    """Whole-run percentiles in bounded memory: counts in `bin_ms` bins up to `max_ms` (the last bin
    also holds everything above it). Thread-safe."""

    def __init__(self, max_ms: float = 10_000.0, bin_ms: float = 1.0) -> None:
        self._bin = bin_ms
        self._counts = np.zeros(int(max_ms / bin_ms) + 1, np.int64)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        i = min(max(int(seconds * 1000.0 / self._bin), 0), self._counts.size - 1)
        with self._lock:
            self._counts[i] += 1

    def percentile_ms(self, q: float) -> float:
        """The upper edge of the bin holding the q-th percentile (0 when empty)."""
        with self._lock:
            cum = np.cumsum(self._counts)
        if cum[-1] == 0:
            return 0.0
        i = int(np.searchsorted(cum, q / 100.0 * cum[-1], side="left"))
        return (i + 1) * self._bin


class StageTimes:
    """Bounded, thread-safe window of recent durations (seconds) per stage."""

    def __init__(self, window: int = 1000) -> None:
        self._d: dict[str, deque[float]] = {}
        self._window = window
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._d.setdefault(stage, deque(maxlen=self._window)).append(float(seconds))

    def add_all(self, timings: dict[str, float]) -> None:
        for k, v in timings.items():
            self.add(k, v)

    def medians_ms(self) -> dict[str, float]:
        with self._lock:
            snap = {k: list(v) for k, v in self._d.items()}
        order = [s for s in STAGES if s in snap] + sorted(k for k in snap if k not in STAGES)
        return {k: percentile_ms(snap[k], 50) for k in order if snap[k]}


class RateMeter:
    """Events per second over a sliding time window up to now, driven by an injectable clock."""

    def __init__(self, window_s: float = 2.0, max_events: int = 256) -> None:
        self.window_s = window_s
        self._t: deque[float] = deque(maxlen=max_events)  # bounded even when frames come unpaced
        self._first: float | None = None  # the first event ever
        self._lock = threading.Lock()

    def tick(self, now: float) -> None:
        with self._lock:
            self._first = now if self._first is None else self._first
            self._t.append(now)
            while self._t and now - self._t[0] > self.window_s:
                self._t.popleft()

    def rate(self, now: float) -> float:
        with self._lock:
            while self._t and now - self._t[0] > self.window_s:
                self._t.popleft()
            if len(self._t) < 2:
                return 0.0
            if now - self._first >= self.window_s and len(self._t) < self._t.maxlen:
                # the events of the whole window: frames that come in bursts (a slow engine's blocks) read as
                # their average rate, not the rate inside a burst
                return len(self._t) / self.window_s
            return (len(self._t) - 1) / max(now - self._t[0], 1e-9)  # the first window, or more than max_events
