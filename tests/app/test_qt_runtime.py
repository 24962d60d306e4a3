"""The Qt binding the app runs on: a signal emitted (from any thread) must keep Python's reference counts.

PySide6 6.12.0 drops a reference to True on every Signal.emit(): on Python 3.11, whose True is not immortal, the
app then aborts ("Fatal Python error: bool_dealloc") after a few thousand emits, minutes into a live preview or a
video being saved. pyproject.toml caps PySide6 below 6.12 for it; this test catches a binding with that bug."""
import sys
import threading

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    ticked = Signal(int, int)
    carried = Signal(object)


def test_emitting_signals_keeps_reference_counts(qapp):
    e, got, payload = _Emitter(), [], object()
    e.ticked.connect(lambda a, b: got.append(a))
    e.carried.connect(got.append)
    before = sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)
    for i in range(200):
        e.ticked.emit(i, i)
        e.carried.emit(payload)
    worker = threading.Thread(target=lambda: [e.ticked.emit(1, 2) for _ in range(200)])
    worker.start()
    worker.join()
    qapp.processEvents()
    after = sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)
    assert len(got) >= 400
    assert all(abs(a - b) < 50 for a, b in zip(after, before)), (before, after)  # 6.12.0: True -400
