"""The live playout schedule (engine/runtime/playout.py) on a simulated clock: exact and thread-free."""
import time

import pytest

from engine.runtime.playout import (KEEP_S, PERIOD_S, RAISE_S, RELAX_FRACTION, RELAX_FRAMES, RELAX_S, Channel,
                                    Item, PlayoutDelay, initial_delay)
from engine.runtime.timing import StageTimes

T0 = 100.0


class Screen:
    """A sink that records (clock time, frame) and may take `cost` seconds of simulated time."""

    def __init__(self, now: list[float], cost: float = 0.0) -> None:
        self.now, self.cost, self.shown = now, cost, []

    def put(self, frame) -> None:
        self.now[0] += self.cost
        self.shown.append((self.now[0], frame))

    def close(self) -> None:
        pass


def channel(delay: float, cost: float = 0.0) -> tuple[Channel, Screen, list[float]]:
    now = [T0]
    screen = Screen(now, cost)
    ch = Channel(screen, 8, lambda: now[0], StageTimes(), True, PlayoutDelay(delay, 2.0), block=4)
    return ch, screen, now


def mic_stream(n: int, ready_after: float, late: dict[int, float] | None = None) -> list[Item]:
    """Frame f's audio pushed at T0 + f/25; blocks of 4 frames land `ready_after` s after their first
    frame's audio (+ `late[block]`), in order (one engine thread)."""
    late = late or {}
    out, ready = [], T0
    for f in range(n):
        b = f // 4
        ready = max(ready, T0 + 4 * b * PERIOD_S + ready_after + late.get(b, 0.0))
        out.append(Item(f, T0 + f * PERIOD_S, time.perf_counter(), ready))
    return out


def simulate(ch: Channel, now: list[float], items: list[Item], close_at: float | None = None) -> None:
    """Event loop of the output thread with a simulated clock: arrivals are queued when due."""
    pending = list(items)
    while True:
        while pending and pending[0].ready_at <= now[0]:
            ch.queue.put(pending.pop(0))
        if not pending and (close_at is None or now[0] >= close_at):
            ch.queue.close()
        wait = ch.service(now[0])
        if wait is None:
            return
        if wait > 0:
            nxt = min([now[0] + wait] + [it.ready_at for it in pending[:1]])
            now[0] = max(nxt, now[0])


def test_initial_delay_is_block_plus_lookahead_plus_margin():
    assert initial_delay(4, 40, 30) == pytest.approx(0.230)  # base: 160 ms blocks
    assert initial_delay(16, 40, 30) == pytest.approx(0.710)  # paper: 640 ms blocks


def test_frames_ready_early_are_shown_exactly_at_push_time_plus_delay():
    ch, screen, now = channel(0.2)
    simulate(ch, now, mic_stream(40, ready_after=0.1))
    assert [f for _, f in screen.shown] == list(range(40))
    assert [t for t, _ in screen.shown] == pytest.approx([T0 + f * PERIOD_S + 0.2 for f in range(40)])
    assert list(ch.latency) == pytest.approx([0.2] * 40)
    assert (ch.held, ch.dropped, ch.queue.dropped, ch.playout.late) == (0, 0, 0, 0)
    assert ch.playout.delay == 0.2


def test_a_late_block_raises_the_delay_by_its_lateness_and_the_rest_is_on_time():
    ch, screen, now = channel(0.2)
    simulate(ch, now, mic_stream(16, ready_after=0.18, late={2: 0.29}))
    # block 2 (frames 8-11, audio from +0.32 s) lands at +0.32 + 0.18 + 0.29 = +0.79 s; frame 8 was
    # due at +0.32 + 0.2 = +0.52 s, so it is 0.27 s late
    new_d = 0.2 + 0.27 + RAISE_S
    assert ch.playout.late == 1 and ch.playout.delay == pytest.approx(new_d)
    assert ch.held == 7  # +0.52, 0.56, ... 0.76: nothing there, frame 7 shown again at 25 fps
    frames = [f for _, f in screen.shown]
    assert frames == list(range(8)) + [7] * 7 + list(range(8, 16)) and ch.dropped == 0
    lat = list(ch.latency)
    assert lat[:8] == pytest.approx([0.2] * 8)
    assert lat[8] == pytest.approx(0.79 - 0.32)  # shown the moment it landed
    assert lat[9:] == pytest.approx([new_d] * 7)  # on time again, at the new D


def test_underrun_holds_the_last_frame_at_25_fps_and_padding_follows_the_schedule():
    ch, screen, now = channel(0.2)
    assert ch.service(now[0]) > 0 and screen.shown == []  # nothing shown yet: nothing to hold
    ch.queue.put(Item("a", T0 - 0.2, time.perf_counter(), T0 - 0.1))
    assert ch.service(now[0]) == 0 and screen.shown == [(T0, "a")]
    for k in (1, 2):  # nothing queued: "a" again one period after the previous deadline
        assert ch.service(now[0]) == pytest.approx(PERIOD_S)
        now[0] = T0 + k * PERIOD_S
        assert ch.service(now[0]) == 0 and screen.shown[-1] == (now[0], "a")
    now[0] = T0 + 0.5  # the output thread stalled: one hold now, not a burst for the missed periods
    assert ch.service(now[0]) == 0 and ch.service(now[0]) == pytest.approx(PERIOD_S)
    assert ch.held == 3 and [f for _, f in screen.shown] == ["a"] * 4
    ch.queue.put(Item("pad", None, time.perf_counter(), now[0]))  # padding: no push time
    assert ch.service(now[0]) == pytest.approx(PERIOD_S)  # due one period after the last hold
    now[0] = T0 + 0.5 + PERIOD_S
    assert ch.service(now[0]) == 0 and screen.shown[-1] == (now[0], "pad")
    assert list(ch.latency) == pytest.approx([0.2]) and ch.playout.late == 0  # padding: no latency
    ch.queue.close()
    assert ch.service(now[0]) is None and ch.held == 3 and ch.frames_out == 2


def test_a_slow_sink_skips_overdue_frames_instead_of_falling_behind():
    ch, screen, now = channel(0.2, cost=0.1)  # every put takes 2.5 frame periods
    simulate(ch, now, mic_stream(40, ready_after=0.1))
    shown = [f for _, f in screen.shown]
    assert shown == sorted(shown) and shown[-1] == 39
    assert ch.dropped == 40 - len(shown) and ch.dropped > 20
    assert ch.playout.late == 0 and ch.held == 0  # the engine was on time; D stays put
    assert ch.playout.delay == 0.2
    assert max(ch.latency) < 0.2 + 0.1 + 2 * PERIOD_S  # it keeps up: no growing backlog


def test_delay_relaxes_only_after_an_on_time_stretch_by_a_share_of_the_spare():
    pd = PlayoutDelay(0.3, 2.0)
    for _ in range(RELAX_FRAMES - 1):
        pd.on_time(KEEP_S + 0.02)
    assert pd.delay == 0.3
    pd.on_time(KEEP_S + 0.02)
    assert pd.delay == pytest.approx(0.3 - RELAX_S)  # a small spare: the minimum step
    big = PlayoutDelay(2.0, 2.0)  # after a 2 s start-up hiccup, with ~1.8 s to spare
    for _ in range(RELAX_FRAMES):
        big.on_time(1.8)
    assert big.delay == pytest.approx(2.0 - RELAX_FRACTION * (1.8 - KEEP_S))  # a large spare: a share of it
    for _ in range(RELAX_FRAMES):
        pd.on_time(KEEP_S + 0.0005)
    assert pd.delay == pytest.approx(0.3 - RELAX_S - 0.0005)  # keeps KEEP_S of spare
    for _ in range(RELAX_FRAMES):
        pd.on_time(0.1 if _ else KEEP_S - 0.001)  # one tight frame in the window: no step
    assert pd.delay == pytest.approx(0.3 - RELAX_S - 0.0005)
    for _ in range(RELAX_FRAMES - 1):
        pd.on_time(0.1)
    pd.late_by(0.05)  # a late frame restarts the window
    pd.on_time(0.1)
    assert pd.delay == pytest.approx(0.3 - RELAX_S - 0.0005 + 0.05 + RAISE_S) and pd.late == 1


def test_delay_is_capped():
    pd = PlayoutDelay(0.2, 1.0)
    pd.late_by(5.0)
    assert pd.delay == 1.0 and pd.late == 1
    with pytest.raises(ValueError):
        PlayoutDelay(-0.1, 1.0)


def test_the_live_queue_grows_with_the_delay():
    ch, _, _ = channel(0.2)
    assert ch.queue.maxlen == 5 + 8  # ceil(0.2 s * 25) frames waiting + two blocks
    ch.playout.late_by(0.61)  # D = 0.815 s
    ch._fit_queue()
    assert ch.queue.maxlen == 21 + 8
