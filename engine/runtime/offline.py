"""Offline rendering: a whole speech file through a streaming session, frame by frame (`avacast render`, the
app's Save video). It is the live session, so a render shows what the live picture would have (DESIGN.md §6:
streaming equals offline), and frames are yielded as they are made, so a writer can encode an hour-long file
without holding it in memory."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from engine.config import FPS, SAMPLE_RATE


class Cancelled(Exception):
    """A render stopped by its `cancel` callback."""


def frame_count(audio: np.ndarray) -> int:
    """How many frames a render of `audio` [S] (16 kHz) gives: round(seconds * 25)."""
    return int(round(len(audio) / SAMPLE_RATE * FPS))


def iter_render(session: Any, audio: np.ndarray, chunk: int | None = None,
                cancel: Callable[[], bool] | None = None) -> Iterator[np.ndarray]:
    """Stream `audio` [S] float32 at 16 kHz through `session` in chunks of `chunk` samples (None: all at once) ->
    RGB frames [H,W,3] uint8, `frame_count(audio)` of them; the chunk size does not change them. `cancel()` is
    asked before each chunk and before the flush; True raises Cancelled."""
    step = max(1, len(audio) if chunk is None else chunk)
    for i in range(0, max(len(audio), 1), step):
        if cancel is not None and cancel():
            raise Cancelled
        session.push_audio(audio[i : i + step], SAMPLE_RATE)
        for frame in session.step():
            yield frame.rgb
    if cancel is not None and cancel():
        raise Cancelled
    for frame in session.flush():
        yield frame.rgb
