"""App tests run offscreen, with AVACAST_HOME in a temp dir so no real user profile is touched."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from app import demo  # noqa: E402


@pytest.fixture(autouse=True)
def avacast_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("AVACAST_HOME", str(home))
    return home


@pytest.fixture
def face_png(tmp_path):
    path = tmp_path / "face.png"
    demo.save_png(demo.portrait(600), path)
    return path


@pytest.fixture
def two_faces_png(tmp_path):
    path = tmp_path / "two.png"
    demo.save_png(demo.portrait(500, faces=2), path)
    return path


@pytest.fixture
def tiny_engine_factory():
    """Factory maker with the same signature as the app's: (weights) -> () -> Engine."""
    from engine.api import load_engine
    from engine.config import EngineConfig

    def make(weights):
        if weights is None:
            return lambda: load_engine(cfg=EngineConfig.tiny(), device="cpu")
        return lambda: load_engine(weights=weights, device="cpu")
    return make


@pytest.fixture(autouse=True)
def _collect_in_the_gui_thread():
    """As the app does (app/gui_gc.py): no automatic collection, which could free a Qt object from a worker
    thread and crash; collect here, in the test's (GUI) thread, after each test."""
    import gc

    gc.disable()
    yield
    gc.collect()
    gc.enable()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models on a shared 2-core box: one thread is ~10x faster than oversubscribed ones."""
    import torch

    torch.set_num_threads(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: real PulseAudio/espeak-ng end-to-end (skipped without them)")
