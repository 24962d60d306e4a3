"""Virtual webcam sink over pyvirtualcam (v4l2loopback on Linux, OBS Virtual Camera on Windows/macOS).

A `FrameSink` (put/close). The runner's output thread paces it (each frame at its audio's push time +
the playout delay, the last frame again on underrun), so `put` only converts and sends. Frames are letterboxed into the camera size and optionally mirrored.
"""
from __future__ import annotations

import logging
import platform
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

INSTALL = {
    "Linux": ("install v4l2loopback: sudo apt install v4l2loopback-dkms && sudo modprobe v4l2loopback "
              "devices=1 exclusive_caps=1 card_label=Avacast"),
    "Windows": "install OBS Studio (obsproject.com): it brings the OBS Virtual Camera driver",
    "Darwin": "install OBS Studio 28+ and start its Virtual Camera once to approve the extension",
}


class VirtualCameraUnavailable(RuntimeError):
    """No virtual camera driver/library; the message says what to install."""


def install_hint(system: str | None = None) -> str:
    return INSTALL.get(system or platform.system(), INSTALL["Linux"])


def letterbox(rgb: np.ndarray, width: int, height: int, mirror: bool = False) -> np.ndarray:
    """[h,w,3] uint8 -> [height,width,3]: scaled to fit, centred on black, optionally mirrored."""
    h, w = rgb.shape[:2]
    if mirror:
        rgb = rgb[:, ::-1]
    if (h, w) == (height, width):
        return np.ascontiguousarray(rgb)
    import cv2

    s = min(width / w, height / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(np.ascontiguousarray(rgb), (nw, nh),
                       interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    out[y:y + nh, x:x + nw] = small
    return out


class VirtualCameraSink:
    def __init__(self, width: int = 512, height: int = 512, fps: int = 25, mirror: bool = False,
                 device: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise VirtualCameraUnavailable(
                f"virtual camera unavailable ({exc}); pip install pyvirtualcam, then {install_hint()}"
            ) from None
        self.width, self.height, self.mirror = width, height, mirror
        try:
            self._cam: Any = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                                 device=device)
        except Exception as exc:  # RuntimeError: no backend/device
            raise VirtualCameraUnavailable(f"no virtual camera ({exc}); {install_hint()}") from None
        self.device = self._cam.device
        log.info("virtual camera %s %dx%d", self.device, width, height)

    def put(self, frame: Any) -> None:
        self._cam.send(letterbox(frame.rgb, self.width, self.height, self.mirror))

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
