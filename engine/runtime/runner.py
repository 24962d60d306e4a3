"""The streaming runner: mic ring buffer -> engine thread (Session.step) -> paced sinks (issue 5).

```
push_audio (mic callback) --resample+copy--> AudioRing --engine thread--> Session.step()
   --> per-sink bounded drop-oldest FrameQueue --output thread per sink (playout delay D)--> sink
```
Live (`realtime=True`): the producer never waits on model code: `push_audio` takes one short lock and
copies. Each frame is shown at the push time of its audio + a playout delay D, so mic->frame latency is
D (playout.py). The engine thread is the only caller of the session (set_sampler included, at block
boundaries). Each sink has its own output thread so a slow file encoder cannot stall the virtual
camera. The runner owns the session's audio from sample 0: push nothing into the session directly
while a runner drives it. The session gets one block's audio at a time; when the engine is slower than
real time (a CPU, a small GPU) and more than `RuntimeConfig.backlog_max_ms` of audio waits, the oldest is
skipped (counted as dropped frames), so latency stays bounded and Stop waits for one block, not a backlog.

Offline (`realtime=False`, files and benchmarks) the runner is lossless instead: frames go out as fast
as they are made, a full sink queue makes the engine wait, and `push_audio` waits for ring space, so
a long file can be pushed in one call and every frame reaches every sink.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from engine.config import SAMPLE_RATE, RuntimeConfig
from engine.audio.resample import StreamResampler
from engine.runtime.playout import Channel, FrameQueue, Item, PlayoutDelay, initial_delay
from engine.runtime.ringbuffer import SAMPLES_PER_FRAME, AudioRing, PushLog, RingUnderflow, frame_to_sample
from engine.runtime.sinks import CallbackSink, FileSink, FrameSink, NullSink
from engine.runtime.timing import StageTimes, Stats, percentile_ms

__all__ = ["Runner", "FrameQueue", "FrameSink", "NullSink", "FileSink", "CallbackSink", "Stats"]

log = logging.getLogger(__name__)



class Runner:
    """Drives a Session from a thread; see the module docstring for the data flow."""

    def __init__(self, session: Any, sinks: Sequence[FrameSink], *, realtime: bool = True,
                 clock: Callable[[], float] = time.monotonic, cfg: RuntimeConfig | None = None,
                 device_name: str | None = None, playout_delay: float | None = None,
                 warm_up: bool | None = None) -> None:
        """`playout_delay`: initial D in seconds (live only); overrides `cfg.playout_ms` and the
        automatic block + look-ahead + margin. `warm_up` (default: when the session is on a GPU): the
        engine thread calls `session.warm_up()` before `start()` returns, because the lazy GPU set-up it
        pays is per thread (Session.warm_up); open such sessions with warm_up=False to pay it once."""
        self.session, self.realtime, self.clock = session, realtime, clock
        self.cfg = cfg or RuntimeConfig()
        self.device_name = device_name or getattr(session, "device_name", None) or "CPU"
        self.ring = AudioRing(int(self.cfg.ring_seconds * SAMPLE_RATE))
        self.push_log = PushLog()
        self.times = StageTimes()
        # a whole block arrives at once: the queue must hold one, or every block would drop frames
        self._block = int(getattr(session, "frames_per_block", 1))
        maxlen = max(self.cfg.queue_frames, 2 * self._block)
        d0 = self._initial_delay(playout_delay)
        max_d = max(d0, self.cfg.playout_max_ms / 1000.0)
        self._channels = [Channel(s, maxlen, clock, self.times, i == 0,
                                  PlayoutDelay(d0, max_d) if realtime else None, self._block)
                          for i, s in enumerate(sinks)]
        self._push_lock = threading.Lock()
        self._resampler: StreamResampler | None = None
        self._sampler_lock = threading.Lock()
        self._pending_sampler: dict[str, Any] = {}
        self._stop = threading.Event()
        self._eof = threading.Event()
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None
        self._cursor = 0  # mic samples handed to the session or skipped so far
        self._skipped = 0  # mic samples skipped to stay live (_catch_up): session sample = mic sample - this
        self._engine_frames = 0
        self._engine_busy = 0.0  # seconds inside step()/flush()
        self._sinks_closed = False
        device = getattr(getattr(session, "device", None), "type", None)
        self._warm = device == "cuda" if warm_up is None else warm_up
        self._ready = threading.Event()  # set by the engine thread once warmed up (or failed)
        self._warm_error: BaseException | None = None

    def _initial_delay(self, override: float | None) -> float:
        if override is not None:
            if not override >= 0:
                raise ValueError(f"playout_delay must be >= 0 seconds, got {override!r}")
            return float(override)
        if self.cfg.playout_ms is not None:
            return self.cfg.playout_ms / 1000.0
        audio = getattr(getattr(self.session, "cfg", None), "audio", None)  # EngineConfig.audio
        return initial_delay(self._block, float(getattr(audio, "lookahead_ms", 0)),
                             self.cfg.playout_margin_ms)

    # --- producer side (any thread, e.g. the audio callback) ------------------------------------
    def push_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        """Copy mic audio into the ring (resampled to 16 kHz). Never runs model code; never blocks
        on the engine. `samples` is [n] or [n, channels] float32 (channels are averaged)."""
        x = np.asarray(samples, np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1)  # [n, ch] -> [n]
        if x.ndim != 1:
            raise ValueError(f"audio must be [n] or [n, channels], got shape {x.shape}")
        if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
        with self._push_lock:
            if self._eof.is_set():
                raise RuntimeError("push_audio after end_audio()")
            x = self._resample(x, int(sample_rate))
            if self.realtime:
                self._write(x)
                return
            step = self.ring.capacity // 2
            for i in range(0, x.shape[0], step):  # lossless: wait for the engine to make room
                while not (self.ring.wait_space(min(step, x.shape[0] - i), 0.1) or self._stop.is_set()):
                    pass
                self._write(x[i:i + step])

    def _write(self, x: np.ndarray) -> None:
        end = self.ring.write(x)
        self.push_log.append(end, self.clock())

    def _resample(self, x: np.ndarray, sr: int) -> np.ndarray:
        r = self._resampler
        if r is not None and r.src_rate != sr:  # rate changed: finish the old one
            self.ring.write(r.flush())
            r = self._resampler = None
        if sr == SAMPLE_RATE and r is None:
            return x
        if r is None:
            r = self._resampler = StreamResampler(sr, SAMPLE_RATE)
        return r.process(x)

    def end_audio(self) -> None:
        """No more audio: the engine flushes the session (silence-padded) and the outputs drain."""
        with self._push_lock:
            if self._resampler is not None:
                end = self.ring.write(self._resampler.flush())
                self.push_log.append(end, self.clock())
            self._eof.set()
        self.ring.wake()

    # --- control ------------------------------------------------------------------------------
    def set_sampler(self, steps: int | None = None, cfg: float | None = None,
                    identity_hold: float | None = None) -> None:
        """Change sampler settings live; the engine thread applies them at the next block boundary."""
        if steps is not None and (int(steps) != steps or steps < 1):
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if cfg is not None and not cfg >= 0:
            raise ValueError(f"cfg must be >= 0, got {cfg!r}")
        if identity_hold is not None and not 0.0 <= identity_hold <= 1.0:
            raise ValueError(f"identity_hold must be in [0, 1], got {identity_hold!r}")
        with self._sampler_lock:
            if identity_hold is not None:
                self._pending_sampler["identity_hold"] = float(identity_hold)
            if steps is not None:
                self._pending_sampler["steps"] = int(steps)
            if cfg is not None:
                self._pending_sampler["cfg"] = float(cfg)

    def start(self) -> None:
        """Start the threads; returns once the engine thread is warmed up (so push audio after it).
        Raises the warm-up's error, if any."""
        if self._threads:
            raise RuntimeError("Runner.start() called twice")
        self._threads.append(threading.Thread(target=self._engine_main, name="avacast-engine",
                                              daemon=True))
        for i, ch in enumerate(self._channels):
            self._threads.append(threading.Thread(target=self._output_main, args=(ch,),
                                                  name=f"avacast-output-{i}", daemon=True))
        for t in self._threads:
            t.start()
        self._ready.wait()
        if self._warm_error is not None:
            self.stop()
            raise self._warm_error

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the stream has ended (after `end_audio`, or an error); True when it has."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop now (queued frames are discarded), join every thread, then close the sinks."""
        self._stop.set()
        self.ring.wake()
        for ch in self._channels:
            ch.queue.close()
        if not self.wait(timeout):
            alive = [t.name for t in self._threads if t.is_alive()]
            log.warning("runner threads still busy after %.1f s: %s", timeout, alive)
            return  # closing a sink while its thread is inside put() would race
        self._close_sinks()

    def _close_sinks(self) -> None:
        if self._sinks_closed:
            return
        self._sinks_closed = True
        for ch in self._channels:
            try:
                ch.sink.close()
            except Exception as e:  # noqa: BLE001 - keep closing the others, surface the first
                log.exception("closing sink %r failed", ch.sink)
                self._error = self._error or e

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the engine or an output thread, if any."""
        return self._error

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _fail(self, e: BaseException, where: str) -> None:
        log.error("%s thread failed: %r", where, e, exc_info=e)
        if self._error is None:
            self._error = e
        self._stop.set()
        self.ring.wake()
        for ch in self._channels:
            ch.queue.close()

    # --- engine thread --------------------------------------------------------------------------
    def _engine_main(self) -> None:
        try:
            if self._warm:
                self.session.warm_up()
        except BaseException as e:  # noqa: BLE001 - start() raises it
            self._warm_error = e
            self._fail(e, "engine warm-up")
        finally:
            self._ready.set()
        try:
            if self._warm_error is None:
                self._engine_loop()
        except BaseException as e:  # noqa: BLE001 - kept and surfaced through .error
            self._fail(e, "engine")
        finally:
            for ch in self._channels:
                ch.queue.close()

    def _engine_loop(self) -> None:
        while not self._stop.is_set():
            self._apply_sampler()
            need = int(self.session.samples_needed) + self._skipped  # mic samples the next block needs
            t0 = time.perf_counter()
            while not (self.ring.written >= need or self._eof.is_set() or self._stop.is_set()):
                self.ring.wait_for(need, 0.05)
            if self._stop.is_set():
                return
            self.times.add("audio_wait", time.perf_counter() - t0)
            if self.realtime:  # one block's audio at a time: the rest waits in the ring, where it can be skipped
                need = self._catch_up(need)
            self._feed(min(need, self.ring.written) if self.realtime else self.ring.written)
            if self._cursor >= need:
                self._run(self.session.step)
            elif self._eof.is_set():
                self._run(self.session.flush)
                return

    def _catch_up(self, need: int) -> int:
        """Live, the engine slower than the mic: when more than `backlog_max_ms` of audio is waiting beyond what
        the next block needs, skip the oldest of it (whole video frames, counted as dropped) so the next block
        animates the newest audio -> the new `need`. The session's timeline runs on without a gap; its samples
        are the mic's minus `_skipped` from here on (the block at the seam hears a splice)."""
        surplus = self.ring.written - need
        if surplus <= self.cfg.backlog_max_ms * SAMPLE_RATE / 1000:
            return need
        skip = surplus // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME
        if not self._skipped:
            log.warning("the engine is slower than real time on %s: skipping old audio to stay live",
                        self.device_name)
        self._skipped += skip
        self._cursor += skip
        return need + skip

    def _feed(self, end: int) -> None:
        """Hand the mic's samples up to `end` (absolute) to the session."""
        if end <= self._cursor:
            return
        try:
            x = self.ring.read(self._cursor, end - self._cursor)
        except RingUnderflow:
            # we fell a whole ring behind: the lost audio (counted as overflow) becomes silence so
            # the session's timeline stays aligned with the mic's
            oldest = self.ring.oldest
            x = np.concatenate([np.zeros(oldest - self._cursor, np.float32),
                                self.ring.read(oldest, end - oldest)])
        self.session.push_audio(x, SAMPLE_RATE)
        self._cursor = end

    def _run(self, fn: Callable[[], list]) -> None:
        t0 = time.perf_counter()
        frames = fn()
        wall = time.perf_counter() - t0
        self._engine_busy += wall
        if frames:
            self.times.add("step", wall)  # wall time of a step that ran blocks (vs. device stage times)
        self._engine_frames += len(frames)
        self.times.add_all(dict(getattr(self.session, "timings", {}) or {}))
        for frame in frames:
            item = Item(frame, self.push_log.time_of(frame_to_sample(frame.index) + self._skipped),
                        time.perf_counter(), self.clock())
            for ch in self._channels:
                ch.queue.put(item, block=not self.realtime)
        if not frames and not self._eof.is_set():  # nothing ran: wait for more audio, don't spin
            self.ring.wait_for(self.ring.written + 1, 0.05)

    def _apply_sampler(self) -> None:
        with self._sampler_lock:
            pending, self._pending_sampler = self._pending_sampler, {}
        if pending:
            try:
                self.session.set_sampler(**pending)
            except ValueError as e:  # a setting this session cannot take must not end the stream
                log.warning("sampler change %s ignored: %s", pending, e)

    # --- output threads ---------------------------------------------------------------------------
    def _output_main(self, ch: Channel) -> None:
        try:
            if self.realtime:
                self._paced_loop(ch)
            else:
                while not self._stop.is_set():
                    if ch.queue.wait(0.1):
                        ch.deliver(ch.queue.pop())
                    elif ch.queue.finished:
                        return
        except BaseException as e:  # noqa: BLE001 - kept and surfaced through .error
            self._fail(e, "output")

    def _paced_loop(self, ch: Channel) -> None:
        """Each frame at its deadline (push time of its audio + D); see playout.py."""
        while not self._stop.is_set():
            wait = ch.service(self.clock())
            if wait is None:
                return
            if wait <= 0:
                continue
            if len(ch.queue):
                self._stop.wait(wait)  # the head is not due yet; later frames are due later still
            else:
                ch.queue.wait(wait)  # a frame arriving now may be late: look at it at once

    # --- stats ------------------------------------------------------------------------------------
    def stats(self) -> Stats:
        now = self.clock()
        p = self._channels[0] if self._channels else None
        lat = list(p.latency) if p else []
        return Stats(
            fps=p.rate.rate(now) if p else 0.0,
            latency_p50_ms=percentile_ms(lat, 50), latency_p95_ms=percentile_ms(lat, 95),
            frames_out=p.frames_out if p else 0,
            dropped=sum(ch.queue.dropped + ch.dropped for ch in self._channels) + self._skipped // SAMPLES_PER_FRAME,
            held=sum(ch.held for ch in self._channels),
            late=sum(ch.playout.late for ch in self._channels if ch.playout is not None),
            playout_ms=1000.0 * p.playout.delay if p is not None and p.playout is not None else 0.0,
            overflow_samples=self.ring.overflow_samples,
            stage_ms=self.times.medians_ms(), device=self.device_name,
            engine_fps=self._engine_frames / self._engine_busy if self._engine_busy > 0 else 0.0,
            run_latency_p50_ms=p.run_latency.percentile_ms(50) if p else 0.0,
            run_latency_p95_ms=p.run_latency.percentile_ms(95) if p else 0.0)
