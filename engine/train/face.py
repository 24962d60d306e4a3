"""Face detection, tracking and a stable portrait crop for `avacast prepare` (issue 3 item 1).

Detection is OpenCV's Haar cascade (ships inside opencv-python-headless, no download). It is
jittery and misses frames, so the crop never follows raw boxes: per tracked segment the face
centre and size are median-filtered (kills outliers), then zero-phase Gaussian-smoothed (no lag;
this is offline preparation, never the live path, DESIGN.md §5.6), and a clip whose face barely
moves gets one fixed box. The crop is square, `scale` x the face box wide (head and shoulders, like
the paper's data) and centred a little above the face centre.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DETECT_MAX_SIDE = 480  # detection runs on a downscaled grey frame: faster and steadier for Haar
MULTI_FACE_AREA = 0.4  # a second face this big (area vs the largest) counts as "several faces"


class HaarFaceDetector:
    """Frontal-face Haar cascade. `detect(rgb)` -> boxes [K,4] (x, y, w, h) in pixels of `rgb`,
    largest first."""

    def __init__(self, min_face_frac: float = 0.08) -> None:
        import cv2

        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV face cascade missing at {path}")
        self.min_face_frac = min_face_frac

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        h, w = rgb.shape[:2]
        k = min(1.0, DETECT_MAX_SIDE / max(h, w))
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if k < 1.0:
            grey = cv2.resize(grey, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        m = max(20, int(self.min_face_frac * min(grey.shape)))
        boxes = self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=6, minSize=(m, m))
        if len(boxes) == 0:
            return np.zeros((0, 4), np.float32)
        boxes = np.asarray(boxes, np.float32) / k
        return boxes[np.argsort(-boxes[:, 2] * boxes[:, 3])]


@dataclass
class FaceTrack:
    """Per source frame: face centre and size (NaN where no face) and a segment id (-1: none).

    A new segment starts after a gap of more than `max_gap_s` without a face or at a jump (scene
    cut); clips never span two segments."""

    cx: np.ndarray  # [F] float
    cy: np.ndarray  # [F]
    size: np.ndarray  # [F] face box side (mean of w and h)
    segment: np.ndarray  # [F] int
    multi_face_frac: float  # share of detections that saw several comparable faces
    detect_frac: float  # share of sampled frames where a face was found


def _inter(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    i = _inter(a, b)
    return i / (a[2] * a[3] + b[2] * b[3] - i + 1e-9)


def _drop_nested(boxes: np.ndarray) -> np.ndarray:
    """Haar often fires on a part of a face (eyes + nose) inside the real box: drop boxes mostly
    inside a larger one. `boxes` is sorted largest first."""
    keep: list[np.ndarray] = []
    for b in boxes:
        if not any(_inter(b, k) > 0.5 * b[2] * b[3] for k in keep):
            keep.append(b)
    return np.asarray(keep).reshape(-1, 4)


def _match(boxes: np.ndarray, ref: np.ndarray | None) -> np.ndarray | None:
    if ref is None or len(boxes) == 0:
        return None
    ious = [_iou(b, ref) for b in boxes]
    return boxes[int(np.argmax(ious))] if max(ious) > 0.3 else None


def build_track(samples: list[tuple[int, np.ndarray]], n_frames: int, fps: float,
                max_gap_s: float = 1.0, confirm: int = 3) -> FaceTrack:
    """`samples`: (source frame index, boxes [K,4]) for the frames that were run through the
    detector, in order. Returns the smoothed per-frame track for all `n_frames`.

    The track follows the box overlapping its last position; a detection elsewhere (a false
    positive, or a cut to another shot) only takes over after `confirm` consecutive samples."""
    idx, boxes, seg, multi, found = [], [], [], 0, 0
    prev, prev_i, cur = None, -10**9, -1
    cand: list[tuple[int, np.ndarray]] = []  # consecutive samples agreeing on a new position
    for i, b in samples:
        b = _drop_nested(b) if len(b) else b
        if len(b) == 0:
            continue
        found += 1
        big = b[:, 2] * b[:, 3] >= MULTI_FACE_AREA * b[0, 2] * b[0, 3]
        multi += int(big.sum() >= 2)
        stale = i - prev_i > max_gap_s * fps
        box = None if stale else _match(b, prev)
        if box is None:
            nxt = _match(b, cand[-1][1]) if cand else None
            cand = cand + [(i, nxt)] if nxt is not None else [(i, b[0])]
            if prev is not None and not stale and len(cand) < confirm:
                continue  # not yet believed: treat as a miss
            cur += 1
            for ci, cb in cand:
                idx.append(ci), boxes.append(cb), seg.append(cur)
            prev, prev_i, cand = cand[-1][1], cand[-1][0], []
            continue
        cand = []
        idx.append(i), boxes.append(box), seg.append(cur)
        prev, prev_i = box, i
    out = FaceTrack(*(np.full(n_frames, np.nan) for _ in range(3)), np.full(n_frames, -1),
                    multi / max(1, found), found / max(1, len(samples)))
    if not idx:
        return out
    idx_a, b_a, seg_a = np.asarray(idx), np.asarray(boxes, np.float64), np.asarray(seg)
    stride = max(1, int(np.median(np.diff([s[0] for s in samples]))) if len(samples) > 1 else 1)
    for s in np.unique(seg_a):
        m = seg_a == s
        _fill_segment(out, s, idx_a[m], b_a[m], stride, fps)
    return out


def _fill_segment(out: FaceTrack, s: int, idx: np.ndarray, b: np.ndarray, stride: int,
                  fps: float) -> None:
    cx, cy, size = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2, (b[:, 2] + b[:, 3]) / 2
    per_s = fps / stride  # detections per second
    cx, cy = (smooth(median_filter(v, _odd(0.6 * per_s)), 0.4 * per_s) for v in (cx, cy))
    # Zoom jitter is the most visible artefact of a moving crop: smooth the size twice as hard.
    size = smooth(median_filter(size, _odd(1.0 * per_s)), 0.8 * per_s)
    # Each detection stands for the frames up to the next sample (a stride apart).
    lo, hi = max(0, idx[0] - stride + 1), min(len(out.cx), idx[-1] + stride)
    frames = np.arange(lo, hi)
    out.cx[lo:hi] = np.interp(frames, idx, cx)
    out.cy[lo:hi] = np.interp(frames, idx, cy)
    out.size[lo:hi] = np.interp(frames, idx, size)
    out.segment[lo:hi] = s


def _odd(x: float) -> int:
    n = max(1, int(round(x)))
    return n if n % 2 else n + 1


def median_filter(x: np.ndarray, k: int) -> np.ndarray:
    """Running median over an odd window `k` (edges use the shrunken window)."""
    if k <= 1 or len(x) < 3:
        return x.copy()
    h = k // 2
    xp = np.pad(x, h, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(xp, k)  # [len(x), k]
    return np.median(win, axis=1)


def smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing (offline only: it looks ahead)."""
    if sigma <= 0.3 or len(x) < 2:
        return x.copy()
    h = int(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-h, h + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, h, mode="edge"), k, mode="valid")


# Portrait framing of every training clip; references must be framed the same way (app, render).
CROP_SCALE = 2.0  # crop side / face box side: head and shoulders
CROP_UP = 0.1  # crop centre this fraction of the face size above the face centre


def crop_boxes(cx: np.ndarray, cy: np.ndarray, size: np.ndarray, width: int, height: int,
               scale: float = CROP_SCALE, up: float = CROP_UP, still_tol: float = 0.03) -> np.ndarray:
    """Face track of one clip [F] -> square crop boxes [F,3] (x0, y0, side) inside the frame.

    The crop is `scale` x the face size, centred `up` x face size above the face centre. When
    the centre moves less than `still_tol` x the side over the clip, the whole clip gets one
    fixed box (perfectly still backgrounds are easier for the VAE and look less 'floaty')."""
    side = np.minimum(scale * size, min(width, height))
    ccx, ccy = cx, cy - up * size
    if len(cx) and (np.ptp(ccx) < still_tol * side.mean() and np.ptp(ccy) < still_tol * side.mean()
                    and np.ptp(side) < 2 * still_tol * side.mean()):
        side, ccx, ccy = (np.full_like(v, np.mean(v)) for v in (side, ccx, ccy))
    x0 = np.clip(ccx - side / 2, 0, width - side)
    y0 = np.clip(ccy - side / 2, 0, height - side)
    return np.stack([x0, y0, side], axis=1)


def crop_resize(rgb: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Sub-pixel square crop `box` = (x0, y0, side) resized to [size,size,3] uint8.

    Area-averaging first (no aliasing on 4K->256), then a bilinear sub-pixel shift, so a slowly
    moving box moves the picture smoothly instead of in whole-pixel steps."""
    import cv2

    x0, y0, side = (float(v) for v in box)
    h, w = rgb.shape[:2]
    k = side / size  # source pixels per output pixel
    ix0, iy0 = max(0, int(np.floor(x0)) - 2), max(0, int(np.floor(y0)) - 2)
    ix1, iy1 = min(w, int(np.ceil(x0 + side)) + 2), min(h, int(np.ceil(y0 + side)) + 2)
    region = rgb[iy0:iy1, ix0:ix1]
    if k > 1.0:
        rw, rh = max(1, round((ix1 - ix0) / k)), max(1, round((iy1 - iy0) / k))
        region = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
        sx, sy = rw / (ix1 - ix0), rh / (iy1 - iy0)
    else:
        sx = sy = 1.0
    # Output pixel centre u + 0.5 sits at source x0 + (u + 0.5) k; region pixel index of that
    # point is (x - ix0) * sx - 0.5 (pixel centres at +0.5).
    m = np.array([[k * sx, 0, (x0 - ix0 + 0.5 * k) * sx - 0.5],
                  [0, k * sy, (y0 - iy0 + 0.5 * k) * sy - 0.5]], np.float64)
    return cv2.warpAffine(region, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
