"""The .deb packing, its Depends, the desktop entry and the bundle filter (fast; no PyInstaller run).

make_deb.sh is exercised on a small stand-in bundle made of the real Qt libraries from this
environment's PySide6, so Depends is computed from real ELF files.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.installer.helpers import INSTALLER, require_tool

sys.path.insert(0, str(INSTALLER))
sys.path.insert(0, str(INSTALLER / "linux"))
import bundle_filter  # noqa: E402
import deb_depends  # noqa: E402

# What Qt's xcb platform plugin and PortAudio need on a user's desktop (Qt 6.5+ needs xcb-cursor).
CORE_DEPENDS = {"libportaudio2", "libxcb-cursor0", "libxkbcommon-x11-0", "libxkbcommon0", "libegl1", "libgl1",
                "libfontconfig1", "libfreetype6", "libdbus-1-3", "libx11-xcb1", "libxcb1", "libxcb-icccm4",
                "libxcb-keysyms1", "libxcb-shape0", "libxcb-randr0", "libxcb-render-util0", "libxcb-image0"}


def _qt_dir() -> Path:
    pyside6 = pytest.importorskip("PySide6")
    return Path(pyside6.__file__).parent / "Qt"


def _qt_core_files(qt: Path) -> list[Path]:
    plugins = [qt / "plugins/platforms/libqxcb.so", *sorted((qt / "plugins/xcbglintegrations").glob("*.so"))]
    libs = [qt / "lib" / f"libQt6{name}.so.6" for name in ("Core", "Gui", "Widgets", "XcbQpa", "DBus", "OpenGL")]
    return plugins + libs + sorted((qt / "lib").glob("libicu*.so*"))


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> dict:
    """A .deb of a stand-in bundle: {'deb', 'control', 'contents', 'root' (dpkg -x)}."""
    require_tool("dpkg-deb", "dpkg")
    require_tool("readelf", "binutils")
    qt = _qt_dir()
    tmp = tmp_path_factory.mktemp("deb")
    bundle = tmp / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    exe = bundle / "avacast"
    exe.write_text("#!/bin/sh\necho avacast stand-in \"$@\"\n")
    exe.chmod(0o755)
    for src in _qt_core_files(qt):
        dest = bundle / "_internal/PySide6/Qt" / src.relative_to(qt)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    env = dict(os.environ, PYTHON=sys.executable, DEB_COMPRESS="gzip")  # xz is slow and tested by the build
    run = subprocess.run([str(INSTALLER / "linux/make_deb.sh"), str(bundle), "9.8.7", str(tmp / "out")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    path = tmp / "out/avacast_9.8.7_amd64.deb"
    control = subprocess.run(["dpkg-deb", "-f", str(path)], capture_output=True, text=True, check=True).stdout
    contents = subprocess.run(["dpkg-deb", "-c", str(path)], capture_output=True, text=True, check=True).stdout
    subprocess.run(["dpkg-deb", "-x", str(path), str(tmp / "root")], check=True)
    return {"deb": path, "control": control, "contents": contents, "root": tmp / "root"}


def _field(control: str, name: str) -> set[str]:
    for line in control.splitlines():
        if line.startswith(name + ":"):
            return {alt.strip() for dep in line.split(":", 1)[1].split(",") for alt in dep.split("|")}
    return set()


def test_depends_cover_qt_xcb_and_portaudio(deb):
    depends = _field(deb["control"], "Depends")
    assert CORE_DEPENDS <= depends, f"Depends lacks {sorted(CORE_DEPENDS - depends)}"
    assert "v4l2loopback-dkms" in _field(deb["control"], "Recommends")
    assert "Package: avacast" in deb["control"] and "Version: 9.8.7" in deb["control"]
    assert "Conflicts: avacast-cuda" in deb["control"]


def test_layout_opt_symlink_desktop_icon(deb):
    root: Path = deb["root"]
    link = root / "usr/bin/avacast"
    assert link.is_symlink() and os.readlink(link) == "../../opt/avacast/avacast"
    assert link.resolve() == (root / "opt/avacast/avacast").resolve()
    assert os.access(link.resolve(), os.X_OK)
    out = subprocess.run([str(link), "--help"], capture_output=True, text=True, check=True).stdout
    assert "stand-in --help" in out
    for path in ("usr/share/applications/avacast.desktop", "usr/share/icons/hicolor/scalable/apps/avacast.svg",
                 "usr/share/icons/hicolor/256x256/apps/avacast.png", "usr/share/doc/avacast/copyright"):
        assert (root / path).is_file(), f"the .deb lacks /{path}"
    assert "root/root" in deb["contents"] and "1000/1000" not in deb["contents"]


def test_desktop_entry_validates_and_runs_the_installed_command(deb):
    validate = require_tool("desktop-file-validate", "desktop-file-utils")
    entry = deb["root"] / "usr/share/applications/avacast.desktop"
    run = subprocess.run([validate, str(entry)], capture_output=True, text=True)
    assert run.returncode == 0 and not run.stdout.strip(), run.stdout + run.stderr
    text = entry.read_text()
    assert "\nExec=avacast\n" in text and "\nIcon=avacast\n" in text  # /usr/bin/avacast, hicolor icon


def test_every_library_qt_needs_from_the_system_has_a_package():
    """A new PySide6 that links a new system library fails here, not on a user's desktop."""
    require_tool("readelf", "binutils")
    qt = _qt_dir()
    provided = {p.name for p in (qt / "lib").iterdir()}
    unmapped = {}
    for path in _qt_core_files(qt):
        for soname in deb_depends.needed(path):
            if soname not in provided and soname not in deb_depends.SONAME_PACKAGES:
                unmapped.setdefault(soname, path.name)
    assert not unmapped, f"add these to deb_depends.SONAME_PACKAGES: {unmapped}"


def test_unmapped_system_library_fails_the_build_with_its_name(tmp_path, monkeypatch):
    lib = tmp_path / "libfoo.so"
    lib.write_bytes(b"\x7fELF" + b"\0" * 60)
    monkeypatch.setattr(deb_depends, "needed", lambda path: ["libc.so.6", "libmystery.so.3"])
    with pytest.raises(ValueError, match="libmystery.so.3"):
        deb_depends.depends_for(tmp_path)


def test_system_libraries_are_left_out_of_the_bundle():
    assert deb_depends.is_system_lib("libxcb-cursor.so.0")
    assert deb_depends.is_system_lib("libEGL.so.1")
    assert deb_depends.is_system_lib("libfontconfig.so.1.12.0")
    assert not deb_depends.is_system_lib("libQt6Core.so.6")
    assert not deb_depends.is_system_lib("libtorch_cpu.so")
    assert not deb_depends.is_system_lib("libxcb-65da195c.so.1.1.0")  # a wheel's own renamed copy
    assert deb_depends.is_system_lib("libcuda.so.1")  # the NVIDIA driver's, matching the kernel module


def test_driver_libraries_are_not_declared_as_packages(tmp_path, monkeypatch):
    (tmp_path / "libtorch_cuda.so").write_bytes(b"\x7fELF" + b"\0" * 60)
    monkeypatch.setattr(deb_depends, "needed", lambda path: ["libc.so.6", "libcuda.so.1"])
    depends, _ = deb_depends.depends_for(tmp_path)
    assert "" not in depends and "libc6" in depends and "libportaudio2" in depends


@pytest.mark.parametrize("path,dropped", [
    ("torch/include/ATen/ATen.h", True),
    ("torch/lib/libtorch_cpu.so", False),
    ("torch/lib/libc10.a", True),
    ("torch/bin/test_api", True),
    ("torch/bin/TCPStoreTest", True),
    ("torch/bin/torch_shm_manager", False),
    ("torch/lib/libtorchbind_test.so", True),
    ("torch/share/cmake/Torch/TorchConfig.cmake", True),
    ("torch/nn/modules/linear.py", False),
    ("torch/_C.pyi", True),
    ("PySide6/Qt/lib/libQt6Core.so.6", False),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
    ("PySide6/Qt/translations/qtbase_de.qm", True),
    ("resources/default_model.safetensors", False),
    ("resources/default_portrait.png", False),
])
def test_bundle_filter_drops_build_files_only(path, dropped):
    assert bundle_filter.is_unneeded(path) is dropped
