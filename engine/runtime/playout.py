"""Output side of the runner: per-sink frame queues, and live playout at a fixed delay (a jitter buffer).

Live, frame f (pts f/25 s) carries `pushed_at`, the clock time at which the audio at its pts was pushed,
and is shown at `deadline = pushed_at + D`. Every on-time frame then has mic->frame latency exactly D,
and frames follow the microphone's clock instead of a 25 fps clock of our own drifting against it.
D starts at the algorithmic delay (block + audio look-ahead) plus a compute margin, and adapts:

- late:    a frame reached the queue after its deadline (the engine was slow). It is shown at once and
           D rises by the lateness + `RAISE_S`, so the frames after it are on time again (up to a cap).
- relax:   after `RELAX_FRAMES` on-time frames that all had more than `KEEP_S` to spare, D falls by
           `RELAX_S`, or a quarter of the spare when larger, so a hiccup or a too-generous margin does not
           cost latency for long (large steps skip frames once, like any player catching up).
- held:    nothing queued one period after the previous deadline (true underrun): the last frame is
           shown again, because sinks such as a virtual camera want a steady 25 fps.
- dropped: the sink fell behind: a frame more than a period past its deadline is skipped while a
           newer frame is already due too. A stalled sink also hits the queue's drop-oldest bound.

Padding frames (after the last pushed audio, `pushed_at` None) follow the previous deadline at 25 fps.
Offline the runner does not pace at all (see runner.py); only the queue is shared.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from engine.config import FPS
from engine.runtime.sinks import FrameSink
from engine.runtime.timing import Histogram, RateMeter, StageTimes

PERIOD_S = 1.0 / FPS
RAISE_S = 0.005  # added to D on top of a late frame's lateness
RELAX_FRAMES = 50  # on-time frames (2 s) between two steps down: back from a start-up hiccup in seconds
RELAX_S = 0.010  # step down (at least this, when the spare allows)
RELAX_FRACTION = 0.25  # or this share of the spare, when larger: a 2 s hiccup is paid back in ~20 s
KEEP_S = 0.015  # spare time every frame of a relax window keeps after a step down
IDLE_S = 0.1  # poll while nothing has been shown yet
EPS_S = 1e-6  # due within this counts as due (no sub-microsecond sleeps, no float fuss)
LATENCY_WINDOW = 1500  # frames (60 s) kept for p50/p95


def initial_delay(block_frames: int, lookahead_ms: float, margin_ms: float) -> float:
    """Automatic D in seconds: a block's first frame needs the whole block's audio plus the encoder's
    look-ahead before it can be computed, then compute time (the margin)."""
    return block_frames / FPS + (lookahead_ms + margin_ms) / 1000.0


@dataclass
class Item:
    frame: Any
    pushed_at: float | None  # clock() when the audio at the frame's pts was pushed; None for padding
    produced_at: float  # perf_counter() when the engine thread queued it (queue stage time)
    ready_at: float  # clock() when the engine thread queued it (lateness against the deadline)


class FrameQueue:
    """Bounded queue that never blocks the writer: when full, the oldest item is dropped and counted."""

    def __init__(self, maxlen: int) -> None:
        self._q: deque[Any] = deque()
        self.maxlen = maxlen
        self.dropped = 0
        self.closed = False
        self._cond = threading.Condition(threading.Lock())

    def put(self, item: Any, block: bool = False) -> None:
        """Queue `item`; when full, drop the oldest (live) or wait for room (`block`, lossless)."""
        with self._cond:
            if block:
                self._cond.wait_for(lambda: len(self._q) < self.maxlen or self.closed)
                if self.closed:
                    return
            if len(self._q) >= self.maxlen:
                self._q.popleft()
                self.dropped += 1
            self._q.append(item)
            self._cond.notify_all()

    def pop(self) -> Any | None:
        with self._cond:
            if not self._q:
                return None
            self._cond.notify_all()  # room for a blocked lossless put
            return self._q.popleft()

    def peek(self, i: int = 0) -> Any | None:
        """The i-th queued item (0: the head) without removing it; None if there are not that many."""
        with self._cond:
            return self._q[i] if len(self._q) > i else None

    def grow(self, maxlen: int) -> None:
        with self._cond:
            self.maxlen = max(self.maxlen, maxlen)

    def wait(self, timeout: float) -> bool:
        """Wait until an item is queued or the queue is closed; True if an item is there."""
        with self._cond:
            self._cond.wait_for(lambda: self._q or self.closed, timeout)
            return bool(self._q)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        with self._cond:
            return self.closed and not self._q

    def __len__(self) -> int:
        return len(self._q)


class PlayoutDelay:
    """The adaptive D (seconds); see the module docstring for when it moves."""

    def __init__(self, delay: float, max_delay: float) -> None:
        if not 0 <= delay or not max_delay > 0:
            raise ValueError(f"bad playout delay {delay!r} / cap {max_delay!r}")
        self.delay, self.max_delay = min(delay, max_delay), max_delay
        self.late = 0
        self._seen, self._min_spare = 0, math.inf

    def late_by(self, seconds: float) -> None:
        self.late += 1
        self.delay = min(self.max_delay, self.delay + seconds + RAISE_S)
        self._seen, self._min_spare = 0, math.inf

    def on_time(self, spare: float) -> None:
        """A frame reached the queue `spare` seconds before its deadline."""
        self._seen += 1
        self._min_spare = min(self._min_spare, spare)
        if self._seen >= RELAX_FRAMES:
            excess = max(0.0, self._min_spare - KEEP_S)
            self.delay -= min(excess, max(RELAX_S, RELAX_FRACTION * excess))
            self._seen, self._min_spare = 0, math.inf


class Channel:
    """One sink, its queue and its output-side accounting (live: also its playout schedule)."""

    def __init__(self, sink: FrameSink, maxlen: int, clock: Callable[[], float], times: StageTimes,
                 primary: bool, playout: PlayoutDelay | None = None, block: int = 1) -> None:
        self.sink, self.queue, self.clock, self.times = sink, FrameQueue(maxlen), clock, times
        self.primary, self.playout, self._block = primary, playout, block
        self.last: Any = None  # the frame on screen
        self.held = 0
        self.dropped = 0  # skipped to catch up with the schedule (the queue counts its own drops)
        self.frames_out = 0
        self.latency: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.run_latency = Histogram()  # every frame of the run
        self.rate = RateMeter()
        self._shown_at: float | None = None  # deadline of what is on screen (shown, held or skipped)
        self._fit_queue()

    def _fit_queue(self) -> None:
        # frames wait up to D in the queue, and a whole block lands at once: room for both
        if self.playout is not None:
            self.queue.grow(math.ceil(self.playout.delay * FPS) + 2 * self._block)

    def deliver(self, item: Item) -> None:
        t0 = time.perf_counter()
        if self.primary:
            self.times.add("queue", t0 - item.produced_at)
        self.sink.put(item.frame)
        now = self.clock()
        if self.primary:
            self.times.add("output", time.perf_counter() - t0)
            if item.pushed_at is not None:
                self.latency.append(now - item.pushed_at)
                self.run_latency.add(now - item.pushed_at)
        self.rate.tick(now)
        self.last = item.frame
        self.frames_out += 1

    def deadline(self, item: Item, prev: float | None) -> float:
        """When `item` is due, `prev` being the deadline of the frame before it."""
        assert self.playout is not None, "playout is live-only"
        if item.pushed_at is not None:
            return item.pushed_at + self.playout.delay
        return item.ready_at if prev is None else prev + PERIOD_S  # padding: 25 fps on from the last

    def service(self, now: float) -> float | None:
        """Show, skip or hold whatever is due at `now`. Returns seconds until something may be due
        (0: call again at once), None once the queue is closed and drained."""
        item = self.queue.peek()
        if item is None:
            return self._underrun(now)
        assert self.playout is not None
        due = self.deadline(item, self._shown_at)
        if item.pushed_at is not None and item.ready_at > due:  # the engine was late
            self.playout.late_by(item.ready_at - due)
            self._fit_queue()
            self._show(now)
            return 0.0
        if now < due - EPS_S:
            return due - now
        nxt = self.queue.peek(1)
        if now - due > PERIOD_S and nxt is not None and self.deadline(nxt, due) <= now:
            self.queue.pop()  # the sink fell behind: skip to the newest due frame
            self.dropped += 1
            self._shown_at = due
            return 0.0
        if item.pushed_at is not None:
            self.playout.on_time(due - item.ready_at)
        self._show(due)
        return 0.0

    def _show(self, deadline: float) -> None:
        item = self.queue.pop()
        if item is not None:
            self.deliver(item)
            self._shown_at = deadline

    def _underrun(self, now: float) -> float | None:
        if self.queue.finished:
            return None
        if self.last is None or self._shown_at is None:
            return IDLE_S  # nothing shown yet: nothing to hold
        due = self._shown_at + PERIOD_S
        if now < due - EPS_S:
            return due - now
        self.sink.put(self.last)
        self.held += 1
        self._shown_at = due if now - due < PERIOD_S else now  # a stalled sink: no burst of holds
        return 0.0
