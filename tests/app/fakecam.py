"""A pyvirtualcam backend that records frames instead of needing a kernel driver."""
from __future__ import annotations

import threading

import numpy as np


class FakeCamera:
    instances: list["FakeCamera"] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps = width, height, fps
        self.frames = 0
        self.last: np.ndarray | None = None
        self.closed = False
        self._lock = threading.Lock()
        FakeCamera.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        with self._lock:
            self.frames += 1
            self.last = frame.reshape(self.height, self.width, 3).copy()  # RGB format

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return "Fake Camera"

    def native_fourcc(self):
        return None


class NoDriver:
    def __init__(self, **kw):
        raise RuntimeError("device /dev/video0 does not exist")
