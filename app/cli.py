"""`avacast`: no arguments (or `app`) opens the window; anything else goes to the engine's CLI.

`avacast app --self-test` opens the window offscreen, streams 3 s from a generated voice and exits 0
when frames reached the preview (used by the installer smoke test).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys


def app_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avacast app", description="Open the Avacast window.")
    p.add_argument("--self-test", action="store_true",
                   help="offscreen: open the window, stream 3 s of generated audio, exit 0 on success")
    p.add_argument("--seconds", type=float, default=3.0, help="self-test stream length")
    p.add_argument("--weights", help="model weights file (.safetensors) to load at start")
    p.add_argument("--tiny", action="store_true",
                   help="use the untrained tiny model (tests; no shipped model needed)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] == "app":
        return run_app(argv[1:])
    if argv[0] in ("-h", "--help"):
        print("avacast             open the window (avacast app -h: window options)")
    from engine.cli import main as engine_main
    from engine.cli.stream import register_io

    register_io("mic", "app.io.mic")
    register_io("vcam", "app.io.vcam")
    return engine_main(argv)


def run_app(argv: list[str]) -> int:
    args = app_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.self_test:
        from app.selftest import self_test

        return self_test(seconds=args.seconds, tiny=args.tiny, weights=args.weights)
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow, default_engine_factory

    from app.gui_gc import GuiThreadGC

    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    qapp.setApplicationName("Avacast")
    _set_icon(qapp)
    GuiThreadGC(qapp)  # Qt objects must never be collected from a worker thread
    factory = tiny_factory if args.tiny else default_engine_factory
    window = MainWindow(engine_factory=factory)
    if args.weights:
        window.load_engine(args.weights)
    window.show()
    return qapp.exec()


def tiny_factory(weights: str | None):
    def factory():
        from engine.api import load_engine
        from engine.config import EngineConfig

        if weights:
            return load_engine(weights=weights)
        return load_engine(cfg=EngineConfig.tiny())
    return factory


def _set_icon(qapp) -> None:
    from PySide6.QtGui import QIcon

    from app.paths import resources_dir

    icon = resources_dir() / "icons" / "avacast.svg"
    if icon.is_file():
        qapp.setWindowIcon(QIcon(str(icon)))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
