"""A drawn placeholder portrait: used when no portrait ships (self-test, screenshot, tests).

Simple shapes, yet OpenCV's frontal-face cascade finds it, so the face-crop path runs for real.
"""
from __future__ import annotations

import numpy as np


def draw_face(img: np.ndarray, cx: int, cy: int, s: int) -> None:
    """Draw a face of height ~1.1*s centred at (cx, cy) into RGB uint8 `img` in place."""
    import cv2

    cv2.ellipse(img, (cx, cy + int(s * 0.75)), (int(s * 0.75), int(s * 0.35)), 0, 180, 360,
                (52, 84, 130), -1)  # shoulders
    cv2.rectangle(img, (cx - int(s * 0.14), cy + int(s * 0.3)), (cx + int(s * 0.14),
                  cy + int(s * 0.6)), (190, 150, 122), -1)  # neck
    cv2.ellipse(img, (cx, cy), (int(s * 0.42), int(s * 0.55)), 0, 0, 360, (200, 160, 130), -1)
    for dx in (-1, 1):
        ex, ey = cx + dx * int(s * 0.17), cy - int(s * 0.1)
        cv2.ellipse(img, (ex, ey - int(s * 0.09)), (int(s * 0.11), int(s * 0.025)), 0, 0, 360,
                    (60, 40, 30), -1)  # brow
        cv2.ellipse(img, (ex, ey), (int(s * 0.08), int(s * 0.04)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (ex, ey), int(s * 0.035), (40, 30, 20), -1)
    cv2.ellipse(img, (cx, cy + int(s * 0.1)), (int(s * 0.05), int(s * 0.1)), 0, 0, 360,
                (170, 130, 105), -1)  # nose
    cv2.ellipse(img, (cx, cy + int(s * 0.28)), (int(s * 0.15), int(s * 0.04)), 0, 0, 360,
                (120, 50, 50), -1)  # mouth
    cv2.ellipse(img, (cx, cy - int(s * 0.45)), (int(s * 0.45), int(s * 0.2)), 0, 180, 360,
                (40, 30, 25), -1)  # hair


def portrait(size: int = 600, faces: int = 1, face_scale: float = 0.42) -> np.ndarray:
    """RGB uint8 [size, size*faces, 3] with `faces` drawn faces side by side."""
    import cv2

    img = np.zeros((size, size * faces, 3), np.uint8)
    img[:] = np.linspace(70, 110, size, dtype=np.uint8)[:, None, None]  # soft vertical gradient
    for i in range(faces):
        draw_face(img, size * i + size // 2, int(size * 0.45), int(size * face_scale))
    return cv2.GaussianBlur(img, (5, 5), 0)


def save_png(rgb: np.ndarray, path) -> None:
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    data.tofile(str(path))
