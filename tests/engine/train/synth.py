"""Generated test media: an animated public-domain face with a mouth that opens with its own
synthetic speech (no ../shared data, no TTS binary)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ASSET = Path(__file__).resolve().parents[2] / "assets" / "astronaut_face_160.png"
SR = 16_000
MOUTH = (80, 96)  # mouth centre (x, y) in the 160² asset; Haar finds the face at ~(46, 42, 68, 68)


def face_image() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(ASSET)), cv2.COLOR_BGR2RGB)


def speech(seconds: float, seed: int = 0, pause: tuple[float, float] | None = None) -> np.ndarray:
    """Speech-like audio: voiced 'syllables' (harmonics of ~140 Hz) with random 120-300 ms
    lengths and gaps; `pause` = (start_s, end_s) of forced silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    env = np.zeros(n)
    t = 0.1
    while t < seconds:
        d = rng.uniform(0.12, 0.3)
        a, b = int(t * SR), min(n, int((t + d) * SR))
        env[a:b] = np.sin(np.linspace(0, np.pi, b - a)) * rng.uniform(0.5, 1.0)
        t += d + rng.uniform(0.05, 0.25)
    if pause:
        env[int(pause[0] * SR):int(pause[1] * SR)] = 0
    ts = np.arange(n) / SR
    voice = sum(np.sin(2 * np.pi * 140 * k * ts) / k for k in range(1, 6))
    return (0.3 * env * voice).astype(np.float32)


def talking_frames(audio: np.ndarray, fps: float, size: int = 160, mouth_gain: float = 1.0,
                   canvas: tuple[int, int] | None = None, motion: float = 0.0) -> np.ndarray:
    """Frames [F,H,W,3] whose mouth (a dark ellipse) opens with the audio's RMS per frame.
    With `canvas` (w, h) the face is pasted on a grey canvas and drifts by `motion` px."""
    face = face_image()
    if size != face.shape[0]:
        face = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    k = size / 160
    n = int(len(audio) / SR * fps)
    spf = len(audio) / max(n, 1)
    rms = np.array([np.sqrt(np.mean(audio[int(i * spf):int((i + 1) * spf)] ** 2)) for i in range(n)])
    rms = rms / max(rms.max(), 1e-9)
    out = []
    for i in range(n):
        f = face.copy()
        h = int(round(9 * k * rms[i] * mouth_gain))
        if h > 0:
            cv2.ellipse(f, (int(MOUTH[0] * k), int(MOUTH[1] * k)), (int(9 * k), h), 0, 0, 360,
                        (25, 10, 10), -1)
        if canvas:
            c = np.full((canvas[1], canvas[0], 3), 128, np.uint8)
            x = (canvas[0] - size) // 2 + int(motion * np.sin(i / 15))
            y = (canvas[1] - size) // 2 + int(motion * np.cos(i / 20) / 2)
            c[y:y + size, x:x + size] = f
            f = c
        out.append(f)
    return np.stack(out)


def faceless_frames(n: int, w: int = 320, h: int = 240, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
    return np.stack([np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
                     for _ in range(n)])
