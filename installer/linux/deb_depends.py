"""System libraries the Linux bundle takes from the user's machine, and the Debian packages providing them.

The bundle carries Python, torch, Qt, FFmpeg and so on, but not the libraries that belong to the user's
graphics and desktop stack (OpenGL/EGL, X11/xcb, Wayland, fontconfig, D-Bus, glib) nor PortAudio: a
copy taken from the build machine can clash with the user's driver or X server. avacast.spec leaves
those out of the bundle (``is_system_lib``), and the .deb declares them (``depends_for``), computed from
the ELF ``NEEDED`` entries of the bundle so a new Qt that needs a new library fails the build instead of
failing on a user's desktop.

Usage: ``python deb_depends.py BUNDLE_DIR`` prints ``Depends`` and ``Recommends`` lines.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# soname prefix -> Debian package (alternatives for the 64-bit time_t renames of Debian 13 / Ubuntu 24.04).
SONAME_PACKAGES: dict[str, str] = {
    "libc.so.6": "libc6", "libm.so.6": "libc6", "libdl.so.2": "libc6", "libpthread.so.0": "libc6",
    "librt.so.1": "libc6", "libutil.so.1": "libc6", "ld-linux-x86-64.so.2": "libc6",
    "libresolv.so.2": "libc6", "libcrypt.so.1": "libcrypt1",
    "libstdc++.so.6": "libstdc++6", "libgcc_s.so.1": "libgcc-s1", "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
    "libGL.so.1": "libgl1", "libEGL.so.1": "libegl1", "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0", "libGLESv2.so.2": "libgles2",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1", "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1", "libXi.so.6": "libxi6", "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libxcb.so.1": "libxcb1", "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb-util.so.1": "libxcb-util1", "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0t64 | libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0t64 | libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0t64 | libglib2.0-0", "libgio-2.0.so.0": "libglib2.0-0t64 | libglib2.0-0",
    "libwayland-client.so.0": "libwayland-client0", "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
    "libgtk-3.so.0": "libgtk-3-0t64 | libgtk-3-0", "libgdk-3.so.0": "libgtk-3-0t64 | libgtk-3-0",
    "libpango-1.0.so.0": "libpango-1.0-0", "libcairo.so.2": "libcairo2",
    "libgdk_pixbuf-2.0.so.0": "libgdk-pixbuf-2.0-0", "libatk-1.0.so.0": "libatk1.0-0t64 | libatk1.0-0",
    "libcairo-gobject.so.2": "libcairo-gobject2", "libpangocairo-1.0.so.0": "libpango-1.0-0",
    "libcups.so.2": "libcups2t64 | libcups2", "libgssapi_krb5.so.2": "libgssapi-krb5-2",
    "libasound.so.2": "libasound2t64 | libasound2", "libpulse.so.0": "libpulse0",
    "libportaudio.so.2": "libportaudio2", "libudev.so.1": "libudev1",
    "libdrm.so.2": "libdrm2", "libgbm.so.1": "libgbm1", "libwayland-server.so.0": "libwayland-server0",
    "libbrotlicommon.so.1": "libbrotli1", "libbrotlidec.so.1": "libbrotli1", "libpng16.so.16": "libpng16-16t64 | libpng16-16",
    # The NVIDIA driver's own libraries (CUDA build): never bundled, and no Depends, since each distribution
    # packages the driver under its own versioned names; the README tells users to install the driver.
    "libcuda.so.1": "", "libnvidia-ml.so.1": "", "libnvcuvid.so.1": "",
}
# Loaded with dlopen, so no NEEDED entry shows them: sounddevice finds PortAudio through ctypes, Qt
# loads D-Bus (portals, accessibility) and the xcb platform plugin loads xcb-cursor at run time.
ALWAYS_DEPENDS = ("libportaudio2", "libdbus-1-3", "libxcb-cursor0", "libegl1", "libgl1")
# pyvirtualcam's Linux backend writes to a v4l2loopback device; without it the app still runs.
RECOMMENDS_EXTRA = ("v4l2loopback-dkms",)
# Plugins whose missing libraries only disable that plugin (Wayland, GTK theme, printing, ...);
# everything else, including the xcb platform plugin, is required.
OPTIONAL_PLUGIN = re.compile(r"/Qt/plugins/(?!platforms/libqxcb\.so|xcbglintegrations/|platforms/libqoffscreen)")


def is_system_lib(name: str) -> bool:
    """True for a library that must come from the user's system, never from the bundle."""
    return any(name == soname or name.startswith(soname + ".") for soname in SONAME_PACKAGES)


def needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", "-W", str(path)], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def _elf_files(root: Path):
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    yield path


def scan(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Return ({soname: files needing it} for required files, same for optional plugins), unbundled only."""
    elves = list(_elf_files(root))
    bundled = {p.name for p in root.rglob("*")}
    required: dict[str, set[str]] = {}
    optional: dict[str, set[str]] = {}
    for path in elves:
        rel = "/" + path.relative_to(root).as_posix()
        target = optional if OPTIONAL_PLUGIN.search(rel) else required
        for soname in needed(path):
            if soname not in bundled:
                target.setdefault(soname, set()).add(rel)
    return required, optional


def depends_for(root: Path) -> tuple[list[str], list[str]]:
    """Debian Depends and Recommends for a bundle. Raises ValueError naming any unmapped library."""
    required, optional = scan(root)
    unknown = sorted(s for s in required if s not in SONAME_PACKAGES)
    if unknown:
        users = {s: sorted(required[s])[:2] for s in unknown}
        raise ValueError(f"bundle needs system libraries with no Debian package in deb_depends.py: {users}")
    depends = {SONAME_PACKAGES[s] for s in required if SONAME_PACKAGES[s]} | set(ALWAYS_DEPENDS)
    recommends = {SONAME_PACKAGES[s] for s in optional if SONAME_PACKAGES.get(s)} - depends
    recommends |= set(RECOMMENDS_EXTRA)
    return sorted(depends), sorted(recommends)


if __name__ == "__main__":
    try:
        dep, rec = depends_for(Path(sys.argv[1]))
    except ValueError as err:
        sys.exit(f"deb_depends: {err}")
    print("Depends: " + ", ".join(dep))
    print("Recommends: " + ", ".join(rec))
