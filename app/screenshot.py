"""`python -m app.screenshot OUT.png [--xvfb]`: the main window, live, with an avatar loaded.

With --xvfb it starts its own X server (`Xvfb :99`) and renders through the real xcb platform
plugin, as a desktop would; without it, it uses the current display (or offscreen). It streams a
generated voice for a couple of seconds so the preview shows engine frames, then saves the window.
Uses the shipped model when present, else the untrained tiny model (the picture is then noise).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.screenshot")
    p.add_argument("out", help="PNG file to write")
    p.add_argument("--xvfb", action="store_true", help="run under a private Xvfb :99")
    p.add_argument("--tab", default="Avatar", help="settings tab to show")
    p.add_argument("--seconds", type=float, default=2.5, help="how long to stream before the shot")
    args = p.parse_args(argv)
    xvfb = _start_xvfb() if args.xvfb else None
    try:
        with tempfile.TemporaryDirectory(prefix="avacast-shot-") as home:
            os.environ["AVACAST_HOME"] = home
            return _shoot(args)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(timeout=10)


def _start_xvfb() -> subprocess.Popen:
    if shutil.which("Xvfb") is None:
        sys.exit("Xvfb not found: apt-get install xvfb xauth libxcb-cursor0 libxkbcommon-x11-0")
    proc = subprocess.Popen(["Xvfb", ":99", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists("/tmp/.X11-unix/X99"):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit("Xvfb :99 did not start (is another X server using :99?)")
        time.sleep(0.1)
    os.environ["DISPLAY"] = ":99"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return proc


def _shoot(args) -> int:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from app import demo, paths
    from app.audio.sources import ArraySource, speech_like
    from app.selftest import _factory, wait_until
    from app.gui_gc import GuiThreadGC
    from app.ui.main_window import MainWindow

    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    GuiThreadGC(qapp)  # Qt objects must never be collected from a worker thread
    source = ArraySource(speech_like(30.0), loop=True, name="screenshot")
    window = MainWindow(engine_factory=_factory(False, None, allow_slow=True), source_factory=lambda: source,
                        load_now=False)
    if not window.settings.avatars:
        photo = paths.data_dir() / "portrait.png"
        photo.parent.mkdir(parents=True, exist_ok=True)
        demo.save_png(demo.portrait(900, face_scale=0.26), photo)
        window.avatar_panel.new_avatar("Demo")
        window.avatar_panel.add_files([str(photo)])
    window.messages.hide()
    window.show()
    window.load_engine(None)
    wait_until(qapp, lambda: window.bridge.engine is not None, 300)
    window.start()
    wait_until(qapp, lambda: window.preview.frames_shown > 0, 120)
    wait_until(qapp, lambda: False, args.seconds)
    for i in range(window.tabs.count()):
        if window.tabs.tabText(i) == args.tab:
            window.tabs.setCurrentIndex(i)
    wait_until(qapp, lambda: False, 0.6)  # a couple of stats updates and repaints
    ok = window.grab().save(args.out)
    window.close()
    print(f"screenshot {'saved to ' + args.out if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
