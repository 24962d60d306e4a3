"""Strip debug sections from the ELF files of a bundle that carry them.

Most wheels ship stripped libraries; running `strip` on all ~1000 files of the bundle is slow and
rewriting patchelf-edited libraries without need is a risk, so only files with .debug_* sections are
touched, and with --strip-debug (symbol tables stay: torch and Qt resolve some symbols by name).
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("strip_debug")


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def has_debug_sections(path: Path) -> bool:
    out = subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True).stdout
    return ".debug_" in out


def strip_bundle(root: Path) -> tuple[int, int]:
    """Return (files stripped, bytes saved)."""
    count, saved = 0, 0
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or not is_elf(path) or not has_debug_sections(path):
            continue
        before = path.stat().st_size
        subprocess.run(["strip", "--strip-debug", str(path)], check=True)
        count, saved = count + 1, saved + before - path.stat().st_size
    return count, saved


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[strip_debug] %(message)s")
    n, saved = strip_bundle(Path(sys.argv[1]))
    log.info("stripped debug sections from %d files, saved %.1f MiB", n, saved / 2**20)
