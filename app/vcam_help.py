"""What to install when no virtual camera driver is present (issue 6 §3)."""
from __future__ import annotations

import platform

LINUX = ("No virtual camera found. Install v4l2loopback and create a camera:\n"
         "  sudo apt install v4l2loopback-dkms\n"
         "  sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=\"Avacast\"\n"
         "then switch the virtual camera on again.")
WINDOWS = ("No virtual camera found. Install OBS Studio (obsproject.com), which includes the "
           "OBS Virtual Camera driver; Avacast uses it without OBS running. Then switch the "
           "virtual camera on again.")
MACOS = ("No virtual camera found. Install OBS Studio (28 or newer), start its Virtual Camera "
         "once so macOS approves the extension, then switch the virtual camera on again.")


def install_help(system: str | None = None) -> str:
    system = system or platform.system()
    return {"Linux": LINUX, "Windows": WINDOWS, "Darwin": MACOS}.get(system, LINUX)
