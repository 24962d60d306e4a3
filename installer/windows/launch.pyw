"""Start menu / desktop shortcut target on Windows, run by the environment's pythonw.exe (no console).

The same `main` as the `avacast` console script (pyproject: app.cli:main); no arguments opens the GUI.
"""
import sys

from app.cli import main

sys.exit(main())
