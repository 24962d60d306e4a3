"""Mouth behaviour of a render: opening in long silent gaps vs in speech, and lip sync (issue 4).

Usage: PYTHONPATH=. python tools/mouth_check.py RENDER.mp4 SPEECH.wav [--gap-s 0.8] [--method landmarks|proxy]
`landmarks` needs mediapipe 0.10.21 (numpy<2: use a separate venv). Gaps are silent runs (engine.train.lipsync
.silence_frames) of at least --gap-s, minus 3 frames at the start (time to close) and 1 at the end; a
real speaker's ratio in such gaps is well below 1, a mouth that never closes scores ~1.
"""
from __future__ import annotations

import argparse

import numpy as np

from engine.io import media
from engine.train import lipsync


def gap_frames(silent: np.ndarray, min_run: int) -> np.ndarray:
    """[F] bool: frames inside silent runs of >= min_run frames, trimmed 3 frames in and 1 frame out."""
    out = np.zeros_like(silent)
    i, n = 0, len(silent)
    while i < n:
        j = i
        while j < n and silent[j]:
            j += 1
        if j - i >= min_run:
            out[i + 3 : j - 1] = True
        i = max(j, i + 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("audio")
    ap.add_argument("--gap-s", type=float, default=0.8)
    ap.add_argument("--method", default="auto")
    a = ap.parse_args()
    frames, _ = media.read_video(a.video)  # [F,H,W,3] uint8
    audio = media.read_audio(a.audio)
    env = lipsync.speech_envelope(audio, len(frames))
    silent = lipsync.silence_frames(env)
    gaps = gap_frames(silent, int(round(a.gap_s * 25)))
    opening = lipsync.mouth_opening(frames, a.method)
    ratio = float(np.nanmean(opening[gaps]) / np.nanmean(opening[~silent])) if gaps.any() else float("nan")
    corr, lag = lipsync.lipsync_score(np.nan_to_num(opening, nan=float(np.nanmean(opening))), env)
    print(f"{a.video}: method {lipsync.opening_method() if a.method == 'auto' else a.method}, {len(frames)} frames,"
          f" {int(gaps.sum())} gap frames; opening in gaps / in speech {ratio:.2f}; lip sync {corr:.3f} (lag {lag})")


if __name__ == "__main__":
    main()
