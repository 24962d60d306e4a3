"""`avacast` entry point: window vs engine-CLI dispatch, and the installer's self-test."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli

ROOT = Path(__file__).resolve().parents[2]


def test_other_commands_go_to_the_engine_cli(monkeypatch):
    seen = []
    import engine.cli
    monkeypatch.setattr(engine.cli, "main", lambda argv: seen.append(argv) or 7)
    assert cli.main(["render", "--ref", "x.png"]) == 7
    assert seen == [["render", "--ref", "x.png"]]


def test_no_arguments_and_app_open_the_window(monkeypatch):
    opened = []
    monkeypatch.setattr(cli, "run_app", lambda argv: opened.append(argv) or 0)
    assert cli.main([]) == 0 and cli.main(["app", "--tiny"]) == 0
    assert opened == [[], ["--tiny"]]


def test_self_test_subprocess_exits_zero_and_leaves_user_dirs_alone(tmp_path):
    """The exact command the installer smoke test runs (tiny model: no shipped weights needed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "OMP_NUM_THREADS": "1",
           "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("AVACAST_HOME", None)
    env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.run([sys.executable, "-m", "app", "app", "--self-test", "--tiny"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "self-test OK" in proc.stdout
    assert not list(tmp_path.rglob("Avacast"))  # (PulseAudio may create its own cookie dirs)


def test_self_test_fails_loudly_on_a_bad_model(tmp_path, monkeypatch):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    from app import selftest
    assert selftest.self_test(seconds=0.5, weights=str(bad)) == 1


def test_gui_thread_gc_collects_cycles_on_its_timer(qtbot):
    """Automatic collection is off while the GUI runs; the GUI thread's timer frees cycles instead."""
    import gc
    import weakref

    from app.gui_gc import GuiThreadGC

    gc.enable()
    guard = GuiThreadGC(interval_ms=10)
    try:
        assert not gc.isenabled()

        class Node:
            pass

        for _ in range(gc.get_threshold()[0] + 10):  # enough allocations for a young-generation pass
            a, b = Node(), Node()
            a.other, b.other = b, a
        probe = weakref.ref(a)
        del a, b
        qtbot.waitUntil(lambda: probe() is None, timeout=2000)
    finally:
        guard.stop()
    assert gc.isenabled()
