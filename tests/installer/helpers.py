"""Shared helpers for the installer tests: repository paths and external tools (makensis, 7z, dpkg-deb)."""
from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "installer"


def require_tool(name: str, apt_package: str) -> str:
    """Path of a tool; skipped locally when it is missing, but a failure in CI (installer/ci_deps.sh)."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is missing: apt-get install {apt_package} (or run installer/ci_deps.sh)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def project() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]
