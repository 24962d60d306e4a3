"""Face detection and the proposed head-and-shoulders crop for reference images.

OpenCV's bundled Haar cascade (no downloaded weights). The proposed crop frames the face exactly as the
training clips were framed (engine.train.face: 2x the face box, centred slightly above the face), so the
model sees references like the ones it learned from. The user can adjust it in the avatar panel.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from engine.train.face import CROP_SCALE, CROP_UP

MIN_CROP_PX = 256  # below this the engine upsamples the reference: blurry appearance

Box = tuple[int, int, int, int]  # x, y, w, h
Crop = tuple[int, int, int]  # x, y, size (square)


@dataclass(frozen=True)
class FaceReport:
    faces: list[Box]
    crop: Crop
    warnings: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def _cascade():
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's face cascade file is missing from this installation")
    return cascade


def detect_faces(rgb: np.ndarray) -> list[Box]:
    """Faces in an RGB uint8 [H,W,3] image, largest first."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = 1.0
    if max(gray.shape) > 1024:  # detection on huge photos is slow and gains nothing
        scale = 1024 / max(gray.shape)
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_side = max(24, int(min(gray.shape) * 0.08))
    found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=6,
                                        minSize=(min_side, min_side))
    boxes = [tuple(int(round(v / scale)) for v in box) for box in np.asarray(found).reshape(-1, 4)]
    return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)


def clamp_crop(crop: Crop, width: int, height: int) -> Crop:
    """Fit a square crop inside the image: shrink it if too big, then slide it in."""
    x, y, size = crop
    size = int(max(1, min(size, width, height)))
    x = int(min(max(0, x), width - size))
    y = int(min(max(0, y), height - size))
    return x, y, size


def propose_crop(face: Box | None, width: int, height: int) -> Crop:
    """Square head-and-shoulders crop around `face`, or the centred largest square without one."""
    if face is None:
        size = min(width, height)
        return clamp_crop(((width - size) // 2, (height - size) // 2, size), width, height)
    fx, fy, fw, fh = face
    side = max(fw, fh)
    size = int(round(side * CROP_SCALE))
    cx = fx + fw / 2
    cy = fy + fh / 2 - CROP_UP * side  # the training clips' framing (engine.train.face)
    return clamp_crop((int(round(cx - size / 2)), int(round(cy - size / 2)), size), width, height)


def analyse(rgb: np.ndarray) -> FaceReport:
    """Faces, a proposed crop and user-facing warnings for one reference image."""
    height, width = rgb.shape[:2]
    faces = detect_faces(rgb)
    crop = propose_crop(faces[0] if faces else None, width, height)
    return FaceReport(faces=faces, crop=crop, warnings=crop_warnings(faces, crop))


def crop_warnings(faces: list[Box], crop: Crop) -> list[str]:
    warnings = []
    if not faces:
        warnings.append("No face found: pick a photo with one clear, front-facing face.")
    elif len(faces) > 1:
        warnings.append(f"{len(faces)} faces found: the largest one is used; "
                        "a photo with one person works best.")
    if crop[2] < MIN_CROP_PX:
        warnings.append(f"Low resolution: the face crop is {crop[2]} px (at least "
                        f"{MIN_CROP_PX} px recommended); the avatar may look blurry.")
    return warnings


def apply_crop(rgb: np.ndarray, crop: Crop | None) -> np.ndarray:
    """RGB uint8 [H,W,3] -> the square crop [S,S,3] (the whole image when crop is None)."""
    if crop is None:
        return rgb
    x, y, size = clamp_crop(crop, rgb.shape[1], rgb.shape[0])
    return np.ascontiguousarray(rgb[y:y + size, x:x + size])
