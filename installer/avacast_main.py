"""PyInstaller entry point: the same `main` as the `avacast` console script (pyproject: app.cli:main).

No arguments opens the GUI; subcommands (`render`, `app --self-test`, ...) behave as in a source install.
"""
import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    # Training data loaders may spawn workers; in a frozen bundle the child must not rerun main().
    multiprocessing.freeze_support()
    sys.exit(main())
