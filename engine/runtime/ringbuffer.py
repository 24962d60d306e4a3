"""Audio ring buffer indexed by absolute sample count, and sample<->frame time mapping (issue 5).

The microphone callback only copies into the ring (DESIGN.md §3); the engine thread reads from its own
cursor. Indices are absolute (sample 0 is the first sample ever written), so frame timestamps, push
times and session cursors all share one time axis that never wraps.
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np

from engine.config import FPS, SAMPLE_RATE

SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640: video frame f starts at sample f * 640 (t = f / 25 s)


# --- pure time mapping -------------------------------------------------------------------------
def frame_to_sample(frame: int) -> int:
    """First 16 kHz sample of video frame `frame` (frame f is shown at f / 25 s)."""
    return frame * SAMPLES_PER_FRAME


def sample_to_frame(sample: int) -> int:
    """Video frame whose 40 ms span contains `sample` (floor)."""
    return sample // SAMPLES_PER_FRAME


def frames_covered(samples: int) -> int:
    """Whole video frames fully covered by the first `samples` samples."""
    return samples // SAMPLES_PER_FRAME


def frame_pts(frame: int) -> float:
    """Presentation time of video frame `frame` in seconds."""
    return frame / FPS


def seconds_to_samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


def samples_to_seconds(samples: int) -> float:
    return samples / SAMPLE_RATE


class RingUnderflow(LookupError):
    """A read asked for samples not yet written (`overwritten` False) or already overwritten (True)."""

    def __init__(self, msg: str, overwritten: bool) -> None:
        super().__init__(msg)
        self.overwritten = overwritten


class AudioRing:
    """Float32 mono samples at 16 kHz, addressed by absolute sample index.

    `write` is cheap and thread-safe (one lock, one or two memcpy). The reader is expected to follow
    with `read(start, count)`; samples overwritten before any read reached them are counted in
    `overflow_samples` (the reader fell more than `capacity` behind).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be >= 1 sample")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, np.float32)
        self._written = 0
        self._consumed = 0  # end of the furthest read so far
        self._overflow = 0
        self._cond = threading.Condition(threading.Lock())

    # --- producer side -----------------------------------------------------------------------
    def write(self, samples: np.ndarray) -> int:
        """Append samples; returns the absolute index one past the last written sample."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        with self._cond:
            n = x.shape[0]
            old_oldest = max(0, self._written - self.capacity)
            if n > self.capacity:  # only the newest `capacity` samples can survive this write
                x = x[n - self.capacity:]
            start = (self._written + n - x.shape[0]) % self.capacity
            first = min(x.shape[0], self.capacity - start)
            self._buf[start:start + first] = x[:first]
            self._buf[:x.shape[0] - first] = x[first:]
            self._written += n
            new_oldest = max(0, self._written - self.capacity)
            lost_from = max(self._consumed, old_oldest)
            if new_oldest > lost_from:
                self._overflow += new_oldest - lost_from
            self._cond.notify_all()
            return self._written

    # --- consumer side -----------------------------------------------------------------------
    @property
    def written(self) -> int:
        """Absolute count of samples ever written."""
        return self._written

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self._written - self.capacity)

    @property
    def overflow_samples(self) -> int:
        """Samples overwritten before the reader got to them."""
        return self._overflow

    def read(self, start: int, count: int) -> np.ndarray:
        """Copy of samples [start, start + count); raises RingUnderflow if any is unavailable."""
        if count < 0 or start < 0:
            raise ValueError("start and count must be >= 0")
        with self._cond:
            if start + count > self._written:
                raise RingUnderflow(
                    f"samples up to {start + count} requested, only {self._written} written", False)
            if start < self.oldest:
                raise RingUnderflow(
                    f"sample {start} already overwritten (oldest held: {self.oldest})", True)
            out = np.empty(count, np.float32)
            pos = start % self.capacity
            first = min(count, self.capacity - pos)
            out[:first] = self._buf[pos:pos + first]
            out[first:] = self._buf[:count - first]
            self._consumed = max(self._consumed, start + count)
            self._cond.notify_all()
            return out

    def wait_space(self, count: int, timeout: float | None) -> bool:
        """Block until `count` more samples fit without overwriting unread ones (lossless producers)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._written + count - self._consumed <= self.capacity, timeout)

    def wait_for(self, count: int, timeout: float | None) -> bool:
        """Block until at least `count` samples were written (or timeout); True when they were."""
        with self._cond:
            return self._cond.wait_for(lambda: self._written >= count, timeout)

    def wake(self) -> None:
        """Wake any reader blocked in `wait_for` (used when stopping)."""
        with self._cond:
            self._cond.notify_all()


class PushLog:
    """Wall time at which each pushed chunk of samples arrived, for exact mic->frame latency.

    Entries are (end_sample, time): samples [previous end, end) were pushed at `time`. Lookups come
    in increasing sample order (frames are produced in order), so entries before the looked-up sample
    are dropped as we go and the log stays short.
    """

    def __init__(self, max_entries: int = 1 << 16) -> None:
        self._entries: deque[tuple[int, float]] = deque()
        self._max = max_entries
        self._start = 0  # first sample the oldest entry covers
        self._lock = threading.Lock()

    def append(self, end_sample: int, t: float) -> None:
        with self._lock:
            if len(self._entries) >= self._max:  # reader stalled: forget the oldest push
                self._start = self._entries.popleft()[0]
            self._entries.append((end_sample, t))

    def time_of(self, sample: int) -> float | None:
        """Push time of the chunk holding `sample`; None if not pushed (padding) or long pruned."""
        with self._lock:
            while self._entries and self._entries[0][0] <= sample:
                self._start = self._entries.popleft()[0]
            if not self._entries or sample < self._start:
                return None
            return self._entries[0][1]

    def __len__(self) -> int:
        return len(self._entries)
