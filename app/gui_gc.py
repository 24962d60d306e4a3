"""Python's cyclic garbage collector runs in whichever thread happens to allocate, and a Qt object freed
from a worker thread (engine loading, the runner's threads) crashes the process (seen as a segfault in
the app tests: "Garbage-collecting" in the engine-loading thread). So while the GUI runs, automatic
collection is off and the GUI thread collects on a timer (the PyQt/PySide-recommended pattern)."""
from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


class GuiThreadGC(QObject):
    """Create in the GUI thread; `stop()` (or destruction of the parent) restores automatic collection."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect)
        self._timer.start(interval_ms)

    def collect(self) -> None:
        """Young generations every tick, all of them when gc's own thresholds say so (same policy)."""
        t0, t1, t2 = gc.get_threshold()
        c0, c1, c2 = gc.get_count()
        if c0 > t0:
            gc.collect(2 if c2 > t2 else 1 if c1 > t1 else 0)

    def stop(self) -> None:
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
