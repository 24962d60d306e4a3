"""The Windows installer compiles with makensis here, and ships what the install-time steps need.

What cannot run here: the installer itself (uv creating the environment, downloading torch, the
shortcuts, the uninstaller) needs a real Windows machine; see installer/README.md.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.installer.helpers import INSTALLER, REPO, project, require_tool


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """Build the installer once for this module: {'exe', 'log', 'files': {name: size}, 'extracted'}."""
    require_tool("makensis", "nsis")
    seven = require_tool("7z", "p7zip-full")
    out = tmp_path_factory.mktemp("win")
    env = dict(os.environ, PYTHON=sys.executable)
    run = subprocess.run([str(INSTALLER / "build_windows.sh"), "--out", str(out)], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"build_windows.sh failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    version = project()["version"]
    exe = out / f"Avacast-{version}-setup.exe"
    listing = subprocess.run([seven, "l", "-slt", str(exe)], capture_output=True, text=True, check=True).stdout
    files = {}
    for block in listing.split("\n\n"):
        fields = dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
        if "Path" in fields and fields["Path"] != str(exe):
            files[fields["Path"]] = int(fields.get("Size") or 0)
    extracted = out / "x"
    subprocess.run([seven, "x", "-y", f"-o{extracted}", str(exe)], capture_output=True, check=True)
    return {"exe": exe, "log": (out / f"Avacast-{version}-setup.makensis.log").read_text(),
            "files": files, "extracted": extracted, "version": version}


def test_payload_has_wheel_uv_notices_and_uninstaller(built):
    version = built["version"]
    files = built["files"]
    expected = [f"payload/avacast-{version}-py3-none-any.whl", "payload/uv.exe", "payload/requirements-app.txt",
                "THIRD_PARTY_NOTICES.txt", "LICENSE-GPL-3.0.txt", "launch.pyw", "avacast.ico", "uninstall.exe"]
    missing = [name for name in expected if name not in files]
    assert not missing, f"installer lacks {missing}; it holds {sorted(files)}"
    assert files["payload/uv.exe"] > 5_000_000, "uv.exe is implausibly small"
    assert "Generating uninstaller... Done!" in built["log"]


def test_uv_exe_is_a_64_bit_windows_program(built):
    data = (built["extracted"] / "payload" / "uv.exe").read_bytes()
    assert data[:2] == b"MZ"
    pe = int.from_bytes(data[0x3C:0x40], "little")
    assert data[pe:pe + 4] == b"PE\0\0"
    assert int.from_bytes(data[pe + 4:pe + 6], "little") == 0x8664, "uv.exe is not x86-64"


def test_wheel_carries_the_app_and_its_entry_point(built):
    version = built["version"]
    wheel = built["extracted"] / "payload" / f"avacast-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read(f"avacast-{version}.dist-info/entry_points.txt").decode()
    for package in ("engine/__init__.py", "app/__init__.py", "resources/__init__.py", "engine/config.py"):
        assert package in names, f"the wheel lacks {package}"
    assert re.search(r"^avacast\s*=\s*app\.cli:main$", entry_points, re.M), entry_points
    # Every file of resources/ that the source tree has (default model, portrait) is in the wheel.
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "resources").rglob("*")
               if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts}
    assert shipped <= set(names), f"resources missing from the wheel: {sorted(shipped - set(names))}"


def test_app_requirements_follow_pyproject(built):
    lines = (built["extracted"] / "payload" / "requirements-app.txt").read_text().splitlines()
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert requirements == project()["optional-dependencies"]["app"]


def test_installer_is_per_user_and_asks_for_no_admin_rights(built):
    log = built["log"]
    assert "HKLM" not in log, "a per-user installer must not write HKLM"
    assert "WriteUninstaller: \"$INSTDIR\\uninstall.exe\"" in log
    nsi = (INSTALLER / "windows" / "avacast.nsi").read_text()
    assert re.search(r"^RequestExecutionLevel user$", nsi, re.M)
    assert re.search(r'^InstallDir "\$LOCALAPPDATA\\Programs\\Avacast"$', nsi, re.M)
    assert '"$SMPROGRAMS\\Avacast.lnk"' in log and '"$DESKTOP\\Avacast.lnk"' in log


def test_uninstaller_keeps_user_data_unless_asked():
    """User settings/avatars are deleted only by an un-ticked-by-default section (silent: kept)."""
    nsi = (INSTALLER / "windows" / "avacast.nsi").read_text()
    sections = re.findall(r'^Section (.*?)$(.*?)^SectionEnd$', nsi, re.M | re.S)
    data_dirs = ("$APPDATA\\Avacast", "$LOCALAPPDATA\\Avacast\"")
    touching = [(head, body) for head, body in sections if any(d in body for d in data_dirs)]
    assert len(touching) == 1, "exactly one section may delete user data"
    head, _ = touching[0]
    assert head.startswith("/o ") and "un." in head, f"the user-data section must be optional and off: {head}"


def test_notices_name_every_redistributed_dependency():
    notices = (INSTALLER / "THIRD_PARTY_NOTICES.txt").read_text().lower()
    for required in ("qt for python", "lgpl", "pyvirtualcam", "opencv", "apache-2.0", "pytorch", "bsd",
                     "pyav", "numpy", "sounddevice", "platformdirs", "safetensors", "uv"):
        assert required in notices, f"THIRD_PARTY_NOTICES.txt does not mention {required}"
    # A dependency added to pyproject without a notice fails here.
    aliases = {"pyside6-essentials": "pyside6", "opencv-python-headless": "opencv", "av": "pyav",
               "torch": "pytorch"}
    deps = project()["dependencies"] + project()["optional-dependencies"]["app"]
    for dep in deps:
        name = re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0].lower()
        assert aliases.get(name, name) in notices, f"dependency {name} has no entry in THIRD_PARTY_NOTICES.txt"
