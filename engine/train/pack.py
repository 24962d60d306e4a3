"""Reader for packs written by `avacast prepare` (issue 3 item 1; DESIGN.md §7).

Layout of a pack directory:
    index.json            format version, fps, sample_rate, size, clips[], files[], skipped[]
    clips/<id>.mp4        face-cropped H.264 video, `size`² at 25 fps
    clips/<id>.flac       16 kHz mono audio of the clip (or .wav), absent for video-only clips
    cache/<name>          arrays later stages cache here (VAE latents, audio features)

A clip's audio covers exactly its frames: frames * 640 samples at 16 kHz / 25 fps.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACK_VERSION = 1
INDEX = "index.json"


class PackError(ValueError):
    """A pack is missing, incomplete or of an unknown version; one-line message for the user."""


@dataclass(frozen=True)
class Clip:
    id: str
    identity: str
    source: str  # source file path as given to prepare
    start_s: float  # start inside the source video
    duration_s: float
    frames: int
    has_audio: bool  # an audio file exists for this clip
    audio_usable: bool  # has_audio and lip sync is trusted (False for "sync NOT confirmed")
    split: str  # "train" or "val"
    video: str  # path relative to the pack root
    audio: str | None


class Pack:
    """`Pack(path)`: the index of a prepared pack, frame/audio loading and a cache directory."""

    def __init__(self, path: str | Path) -> None:
        self.root = Path(path)
        f = self.root / INDEX
        if not f.is_file():
            raise PackError(f"{self.root}: not a pack (no {INDEX}); create one with `avacast prepare`")
        try:
            self.index = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PackError(f"{f}: unreadable index ({e})") from None
        if self.index.get("version") != PACK_VERSION:
            raise PackError(f"{f}: pack version {self.index.get('version')!r}, expected {PACK_VERSION}")
        self.fps: int = int(self.index["fps"])
        self.sample_rate: int = int(self.index["sample_rate"])
        self.size: int = int(self.index["size"])
        fields = Clip.__dataclass_fields__
        self._clips = [Clip(**{k: c[k] for k in fields}) for c in self.index["clips"]]

    def __len__(self) -> int:
        return len(self._clips)

    def __repr__(self) -> str:
        return f"Pack({str(self.root)!r}, {len(self)} clips, {self.size}px)"

    def clips(self, split: str | None = None, audio: bool | None = None) -> list[Clip]:
        """Clips in index order; `split` "train"/"val" filters; `audio=True` keeps clips whose
        audio is usable for audio-conditioned training, `audio=False` those without."""
        if split not in (None, "train", "val"):
            raise ValueError(f"split must be 'train', 'val' or None, got {split!r}")
        out = [c for c in self._clips if split is None or c.split == split]
        if audio is not None:
            out = [c for c in out if c.audio_usable == audio]
        return out

    def clip(self, clip_id: str) -> Clip:
        for c in self._clips:
            if c.id == clip_id:
                return c
        raise KeyError(clip_id)

    def identities(self, split: str | None = None) -> list[str]:
        return sorted({c.identity for c in self.clips(split)})

    def load_frames(self, clip: Clip | str, size: int | None = None, start: int = 0,
                    count: int | None = None) -> np.ndarray:
        """Frames [F,size,size,3] uint8 of a clip (all, or `count` from `start`), resized with
        area averaging (down) or bicubic (up) when `size` differs from the pack's."""
        from engine.io.media import iter_video_frames

        c = self.clip(clip) if isinstance(clip, str) else clip
        end = c.frames if count is None else min(c.frames, start + count)
        out = []
        for i, (rgb, _) in enumerate(iter_video_frames(self.root / c.video)):
            if i >= end:
                break
            if i >= start:
                out.append(_resize(rgb, size))
        if len(out) < end - start:
            raise PackError(f"{c.video}: {len(out)} frames decoded, index says {c.frames}")
        s = size or self.size
        return np.stack(out) if out else np.zeros((0, s, s, 3), np.uint8)

    def load_audio(self, clip: Clip | str) -> np.ndarray:
        """float32 mono [frames * sample_rate / fps] at the pack's sample rate."""
        from engine.io.media import read_audio

        c = self.clip(clip) if isinstance(clip, str) else clip
        if not c.has_audio or c.audio is None:
            raise PackError(f"clip {c.id} has no audio (video-only source)")
        a = read_audio(self.root / c.audio, self.sample_rate)
        n = c.frames * self.sample_rate // self.fps
        return np.pad(a[:n], (0, max(0, n - len(a))))

    def cache_path(self, name: str) -> Path:
        """A path under `<pack>/cache/` for derived arrays (e.g. "vae-base-latents.safetensors");
        parent directories are created."""
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"cache name must be a relative path inside the pack, got {name!r}")
        p = self.root / "cache" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def _resize(rgb: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    import cv2

    interp = cv2.INTER_AREA if size < rgb.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(rgb, (size, size), interpolation=interp)
