"""Lip-sync and stability metrics for `avacast eval` (issue 3 item 4). Pure: numpy in, numbers out.

Mouth opening per frame comes from one of two back-ends:
- "landmarks": MediaPipe Face Mesh (optional; mediapipe 0.10.21 bundles its model, but needs
  numpy<2 and opencv<4.12 - see README/issue notes); opening = inner-lip gap (points 13-14) over
  face height (10-152).
- "proxy" (default when mediapipe is absent): dark-pixel share in the mouth region of the
  portrait crop. An open mouth shows a dark cavity; closed lips do not. The region comes from a
  Haar face box found on the clip (median over a few frames), else from the framing
  `avacast prepare` produces (face centred, ~half the crop wide). It is a proxy: teeth, beards and
  lighting change its scale, so compare scores on the same clip (real vs generated, own vs shifted
  audio), not across people.
Both give larger values for a more open mouth; units differ, so reports name the method.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def opening_method() -> str:
    """The back-end `mouth_opening(method="auto")` uses here: "landmarks" or "proxy"."""
    try:
        import mediapipe  # noqa: F401
    except Exception:  # ImportError, or a numpy-ABI error from a mismatched install
        return "proxy"
    return "landmarks"


def mouth_opening(frames: np.ndarray, method: str = "auto") -> np.ndarray:
    """Face-cropped video frames [F,H,W,3] uint8 -> mouth opening [F] float (larger = more open)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [F,H,W,3], got {frames.dtype} {list(frames.shape)}")
    if method == "auto":
        method = opening_method()
    if method == "landmarks":
        return _landmark_opening(frames)
    if method == "proxy":
        return _proxy_opening(frames)
    raise ValueError(f"method must be 'auto', 'landmarks' or 'proxy', got {method!r}")


def mouth_box(frames: np.ndarray) -> tuple[int, int, int, int]:
    """Mouth region (x0, y0, x1, y1) of a face-cropped clip [F,H,W,3]: lower middle of the Haar
    face box (median over up to 8 frames), or of the default prepare framing."""
    from engine.train.face import HaarFaceDetector

    f, h, w = frames.shape[:3]
    det = HaarFaceDetector(min_face_frac=0.2)
    boxes = [b[0] for b in (det.detect(frames[i]) for i in np.linspace(0, f - 1, min(f, 8)).astype(int))
             if len(b)]
    if boxes:
        x, y, bw, bh = np.median(np.asarray(boxes), axis=0)
    else:  # prepare's crop: face box = half the side, centred 0.05 side below the crop centre
        bw = bh = 0.5 * min(h, w)
        x, y = w / 2 - bw / 2, h * 0.55 - bh / 2
    # Haar boxes span brows to chin: the mouth sits in the lower quarter, middle half.
    x0, x1 = int(x + 0.25 * bw), int(np.ceil(x + 0.75 * bw))
    y0, y1 = int(y + 0.68 * bh), int(np.ceil(y + 0.95 * bh))
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _proxy_opening(frames: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = mouth_box(frames)
    roi = frames[:, y0:y1, x0:x1].astype(np.float32)  # [F, h, w, 3]
    luma = roi @ np.array([0.299, 0.587, 0.114], np.float32)  # [F, h, w]
    # Threshold relative to the clip's own skin brightness: robust to exposure and skin tone.
    thr = 0.55 * float(np.median(luma))
    return (luma < thr).mean(axis=(1, 2)).astype(np.float64)


def _landmark_opening(frames: np.ndarray) -> np.ndarray:
    import mediapipe as mp

    out = np.full(len(frames), np.nan)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as fm:
        for i, rgb in enumerate(frames):
            r = fm.process(np.ascontiguousarray(rgb))
            if r.multi_face_landmarks:
                lm = r.multi_face_landmarks[0].landmark
                out[i] = abs(lm[14].y - lm[13].y) / max(abs(lm[152].y - lm[10].y), 1e-6)
    ok = ~np.isnan(out)
    if not ok.any():
        log.warning("no face landmarks found in %d frames; opening is all zero", len(frames))
        return np.zeros(len(frames))
    return np.interp(np.arange(len(out)), np.flatnonzero(ok), out[ok])


def speech_envelope(audio: np.ndarray, n_frames: int, sample_rate: int = 16_000,
                    fps: int = 25) -> np.ndarray:
    """RMS of the audio over each video frame's span -> [n_frames] (zero past the audio's end)."""
    a = np.asarray(audio, np.float64).reshape(-1)
    spf = sample_rate // fps  # 640 samples per frame at 16 kHz / 25 fps
    a = np.pad(a[:n_frames * spf], (0, max(0, n_frames * spf - len(a))))
    return np.sqrt(np.mean(a.reshape(n_frames, spf) ** 2, axis=1))  # [F, spf] -> [F]


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3:
        return 0.0
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 1e-12 else 0.0


def lipsync_score(opening: np.ndarray, envelope: np.ndarray, max_lag: int = 2) -> tuple[float, int]:
    """Pearson correlation of mouth opening [F] with the speech envelope [F] at the best lag in
    [-max_lag, max_lag] frames -> (corr, lag). lag > 0: the mouth moves `lag` frames after the
    sound. A constant signal (no motion, or silence) scores 0."""
    o, e = np.asarray(opening, np.float64), np.asarray(envelope, np.float64)
    n = min(len(o), len(e))
    o, e = o[:n], e[:n]
    best = (-np.inf, 0)
    for lag in range(-max_lag, max_lag + 1):
        c = _corr(o[lag:], e[:n - lag]) if lag >= 0 else _corr(o[:n + lag], e[-lag:])
        if c > best[0]:
            best = (c, lag)
    return float(best[0]), int(best[1])


def mouth_follow(opening: np.ndarray, real: np.ndarray) -> tuple[float | None, float]:
    """How a reconstruction's mouth [F] follows the real one's [F] frame by frame -> (gain, corr): gain is
    the least-squares slope of the reconstruction's opening on the real's (1: the real amplitude; near 0: a
    mouth that barely moves, whatever its correlation), None when the real mouth does not move."""
    o, r = np.asarray(opening, np.float64), np.asarray(real, np.float64)
    n = min(len(o), len(r))
    o, r = o[:n] - o[:n].mean(), r[:n] - r[:n].mean()
    var = float((r * r).sum())
    return (float((o * r).sum() / var) if var > 1e-12 else None), _corr(o, r)


def mouth_motion(opening: np.ndarray) -> float:
    """How much a mouth moves: the standard deviation of its opening [F] over the clip (landmarks: in face
    sizes), to set a render's amplitude beside the real clip's (lip sync, a correlation, ignores it)."""
    o = np.asarray(opening, np.float64)
    return float(o.std()) if len(o) > 1 else 0.0


def silence_frames(envelope: np.ndarray, rel_threshold: float = 0.1) -> np.ndarray:
    """Frames [F] bool whose RMS is below `rel_threshold` x the clip's 95th-percentile RMS
    (and below -40 dBFS, so quiet speech in a quiet clip is not 'silence')."""
    e = np.asarray(envelope, np.float64)
    return e < min(rel_threshold * np.percentile(e, 95) if len(e) else 0.0, 0.01) + 1e-9


MIN_OPENING = 1e-3  # proxy: share of dark mouth pixels; landmarks: lip gap / face size (~0.01-0.1)


def silence_opening(opening: np.ndarray, envelope: np.ndarray, rel_threshold: float = 0.1) -> float:
    """Mean mouth opening in silent frames divided by the mean in speech frames (unit-free; near 0
    is a closed mouth in silence, around 1 is babbling). NaN when the clip has no silent or no
    speech frames, or no measurable opening in speech (mean below MIN_OPENING: a ratio over ~0
    would swamp every mean it enters; measured: 5e5 on one clip whose mouth box held no dark pixels)."""
    o = np.asarray(opening, np.float64)
    s = silence_frames(envelope, rel_threshold)[:len(o)]
    o = o[:len(s)]
    if not s.any() or s.all() or o[~s].mean() < MIN_OPENING:
        return float("nan")
    return float(o[s].mean() / o[~s].mean())


PAUSE_FRAMES = 8  # a pause: at least this many silent frames in a row (320 ms at 25 fps)
PAUSE_MARGIN = (3, 2)  # frames left out after speech stops (the mouth closing) and before it starts (opening)


def pause_opening(opening: np.ndarray, envelope: np.ndarray, rel_threshold: float = 0.1) -> float:
    """Mean mouth opening inside pauses divided by the mean in speech frames: does the mouth close when the speaker
    stops? Unlike `silence_opening`, short gaps between syllables (where real mouths stay half open) do not count:
    only runs of >= PAUSE_FRAMES silent frames, less PAUSE_MARGIN at their ends. Near 0: closed in pauses; around 1:
    as open as in speech. NaN when the clip has no such pause or no measurable opening in speech."""
    o = np.asarray(opening, np.float64)
    s = silence_frames(envelope, rel_threshold)[:len(o)]
    o = o[:len(s)]
    inner = np.zeros(len(s), bool)
    start = None
    for i, v in enumerate(list(s) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start >= PAUSE_FRAMES:
                inner[start + PAUSE_MARGIN[0] : i - PAUSE_MARGIN[1]] = True
            start = None
    if not inner.any() or s.all() or o[~s].mean() < MIN_OPENING:
        return float("nan")
    return float(o[inner].mean() / o[~s].mean())


def stability(frames: np.ndarray) -> float:
    """Mean absolute difference of consecutive frames [F,H,W,3] in [0, 1] (lower is steadier;
    jitter and flicker raise it; real talking clips at 256² measured 0.002-0.01)."""
    f = np.asarray(frames)
    if len(f) < 2:
        return 0.0
    total = 0.0
    for a, b in zip(f[:-1], f[1:]):  # per pair: no [F,H,W,3] float copy of a long clip
        total += float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
    return total / (len(f) - 1) / 255.0
