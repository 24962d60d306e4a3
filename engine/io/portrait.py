"""Head-and-shoulders crop of a portrait photo, with the same geometry `avacast prepare` gives the
training clips (crop side 2x the face box, centred 0.1 face above the face centre)."""
from __future__ import annotations

import logging

import numpy as np

from engine.train.face import HaarFaceDetector, crop_boxes, crop_resize

log = logging.getLogger(__name__)
MAX_SIDE = 512


def portrait_crop(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """RGB uint8 [H,W,3] -> (square crop around the largest face [S,S,3], faces found).
    Without a face the image is returned unchanged (the session then takes its centre square)."""
    faces = HaarFaceDetector().detect(rgb)
    if len(faces) == 0:
        return rgb, 0
    x, y, w, h = (float(v) for v in faces[0])
    height, width = rgb.shape[:2]
    box = crop_boxes(np.array([x + w / 2]), np.array([y + h / 2]), np.array([max(w, h)]), width, height)[0]
    return crop_resize(rgb, box, int(min(MAX_SIDE, round(box[2])))), len(faces)
