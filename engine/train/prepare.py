"""`avacast prepare`: talking-head videos -> a compact training pack (issue 3 item 1).

Per source video: find its audio (a MANIFEST "paired:" file, a same-named audio file beside it,
or the in-file track), detect and track the face (engine.train.face), map the source's own
timestamps onto a 25 fps grid (odd or variable rates such as 22.131 or 29.97 included), cut the
face-visible stretches into clips of at most `max_clip_s`, and write each clip as H.264 at `size`²
plus lossless 16 kHz mono audio. `index.json` lists clips and every file that was skipped, and why.

Identity rule (for the train/val split and per-identity sampling): the file stem, lower-cased,
with trailing take markers removed (`_clip3`, `_take2`, `_part1`, `_short`), and MEAD-style
speaker ids (`M030`, `W009`) collapsing all of that speaker's files. A group prefix before `__`
(the source collection) is kept, so equal names from different collections stay apart.
`identity_regex` overrides the rule: its first group (or whole match) is the identity.
The split is `val` when sha1(identity) mod 100 < val_percent: stable across runs and machines.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.io.media import (MediaError, iter_video_frames, read_audio, video_info, write_audio,
                             write_video)
from engine.train import face
from engine.train.pack import INDEX, PACK_VERSION

log = logging.getLogger(__name__)

VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv"}
AUDIO_EXTS = (".wav", ".flac", ".m4a", ".mp3", ".aac", ".ogg", ".opus")
# MANIFEST notes that mark a file's audio as unusable for lip-sync training (data README).
AUDIO_UNUSABLE_NOTES = ("sync not confirmed", "no audio or silent track", "absent or silent")
SILENT_PEAK = 1e-3  # a track whose peak is below this is a "silent track", not audio


@dataclass(frozen=True)
class PrepareConfig:
    size: int = 256
    fps: int = 25
    sample_rate: int = 16_000
    max_clip_s: float = 10.0
    min_clip_s: float = 1.0
    crf: int = 18
    val_percent: float = 10.0
    crop_scale: float = 2.0  # crop side / face box side: head and shoulders
    detect_hz: float = 5.0  # face detections per second of video (the track is interpolated)
    audio_ext: str = ".flac"
    identity_regex: str | None = None

    def __post_init__(self) -> None:
        if self.size < 16 or self.size % 2:
            raise ValueError(f"--size must be an even number >= 16, got {self.size}")
        if self.fps <= 0 or self.max_clip_s <= 0 or not 0 < self.min_clip_s <= self.max_clip_s:
            raise ValueError("need fps > 0 and 0 < min clip length <= max clip length")
        if self.audio_ext not in (".flac", ".wav"):
            raise ValueError("audio_ext must be .flac or .wav")


@dataclass
class FileResult:
    source: str
    status: str = "skipped"  # "kept" or "skipped"
    reason: str = ""
    clips: list[dict] = field(default_factory=list)
    audio: str = "none"  # where the audio came from: "track", a file name, or "none"

    def as_json(self) -> dict:
        return {"source": self.source, "status": self.status, "reason": self.reason,
                "clips": len(self.clips), "audio": self.audio}


def identity_of(path: Path, regex: str | None = None) -> str:
    stem = path.stem
    if regex:
        m = re.search(regex, stem)
        if m:
            return (m.group(1) if m.groups() else m.group(0)).lower()
    group, _, name = stem.rpartition("__")
    name = name.lower()
    mead = re.search(r"(?:^|_)([mw]\d{3})(?:_|$)", name)
    if mead:
        name = mead.group(1)
    else:
        while True:  # strip trailing take markers, possibly stacked ("clip2_short")
            new = re.sub(r"(?:[_-](?:clip|take|part|seg)[_-]?\d+|[_-]short)$", "", name)
            if new == name:
                break
            name = new
    return f"{group.lower()}__{name}" if group else name


def split_of(identity: str, val_percent: float) -> str:
    h = int(hashlib.sha1(identity.encode()).hexdigest(), 16) % 10_000
    return "val" if h < val_percent * 100 else "train"


def find_videos(srcs: list[Path]) -> list[Path]:
    out: list[Path] = []
    for s in srcs:
        if s.is_file():
            out.append(s)
        elif s.is_dir():
            out.extend(sorted(p for p in s.rglob("*") if p.suffix.lower() in VIDEO_EXTS and p.is_file()))
        else:
            raise ValueError(f"--src {s}: no such file or directory")
    return out


def load_manifest(src: Path) -> dict[Path, dict]:
    """Rows of the nearest MANIFEST.tsv in `src` or up to two folders above, by resolved path."""
    d = src if src.is_dir() else src.parent
    for cand in [d, *list(d.parents)[:2]]:
        f = cand / "MANIFEST.tsv"
        if f.is_file():
            with f.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
            return {(cand / r["file"]).resolve(): r for r in rows if r.get("file")}
    return {}


def _find_audio(video: Path, row: dict | None) -> tuple[Path | None, str]:
    has = (row or {}).get("has_audio", "")
    if has.startswith("paired:"):
        p = video.parent / has.split(":", 1)[1].strip()
        if p.is_file():
            return p, p.name
    for ext in AUDIO_EXTS:
        p = video.with_suffix(ext)
        if p.is_file():
            return p, p.name
    return None, "track"


def load_source_audio(video: Path, row: dict | None, info, sr: int) -> tuple[np.ndarray | None, str]:
    """Audio aligned to the first video frame, or (None, why-not)."""
    path, origin = _find_audio(video, row)
    if path is None and not info.has_audio:
        return None, "no audio"
    try:
        a = read_audio(path or video, sr)
    except MediaError as e:
        return None, f"no audio ({str(e).split(': ', 1)[-1]})"
    if path is None and info.audio_start_s is not None:
        # Containers may start audio and video at different times; shift audio onto video time.
        off = int(round((info.audio_start_s - info.start_s) * sr))
        a = np.pad(a, (off, 0)) if off > 0 else a[-off:]
    if np.abs(a).max(initial=0.0) < SILENT_PEAK:
        return None, "no audio (silent track)"
    return a, origin


def audio_trusted(row: dict | None) -> bool:
    row = row or {}
    if row.get("has_audio", "").strip().lower() in ("no", "silent track"):
        return False
    note = row.get("content_note", "").lower()
    return not any(n in note for n in AUDIO_UNUSABLE_NOTES)


def time_map(pts: np.ndarray, fps: int) -> np.ndarray:
    """Output frame k (at k/fps s) -> index of the source frame nearest in time [K]."""
    if len(pts) == 0:
        return np.zeros(0, np.int64)
    step = float(np.median(np.diff(pts))) if len(pts) > 1 else 1.0 / fps
    n_out = int(np.floor((pts[-1] + step) * fps + 1e-6))
    t = np.arange(n_out) / fps
    j = np.clip(np.searchsorted(pts, t), 1, len(pts) - 1) if len(pts) > 1 else np.zeros(n_out, int)
    if len(pts) > 1:
        j = np.where(np.abs(pts[j - 1] - t) <= np.abs(pts[j] - t), j - 1, j)
    return j.astype(np.int64)


def cut_clips(segment: np.ndarray, max_len: int, min_len: int) -> list[tuple[int, int]]:
    """Runs of equal, non-negative segment ids [K] -> clip ranges [start, end) of output frames,
    each run split into equal parts of at most `max_len` (no short leftover tail)."""
    out = []
    k = 0
    while k < len(segment):
        e = k
        while e < len(segment) and segment[e] == segment[k]:
            e += 1
        if segment[k] >= 0 and e - k >= min_len:
            n = -(-(e - k) // max_len)
            bounds = np.linspace(k, e, n + 1).round().astype(int)
            out.extend((int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))
        k = e
    return out


def _detect_pass(video: Path, detector: face.HaarFaceDetector, fps_src: float, hz: float):
    """Pass 1: every frame's timestamp, faces on every `stride`-th frame."""
    stride = max(1, int(round(fps_src / hz)))
    pts, samples = [], []
    for i, (rgb, t) in enumerate(iter_video_frames(video)):
        pts.append(t)
        if i % stride == 0:
            samples.append((i, detector.detect(rgb)))
    return np.asarray(pts, np.float64), samples


def prepare_file(video: Path, out: Path, cfg: PrepareConfig, detector: face.HaarFaceDetector,
                 row: dict | None, used_ids: set[str]) -> FileResult:
    res = FileResult(str(video))
    try:
        info = video_info(video)
        audio, res.audio = load_source_audio(video, row, info, cfg.sample_rate)
        pts, samples = _detect_pass(video, detector, info.fps or cfg.fps, cfg.detect_hz)
    except MediaError as e:
        res.reason = f"unreadable ({str(e).split(': ', 1)[-1]})"
        return res
    if len(pts) / max(info.fps, 1e-6) < cfg.min_clip_s or len(pts) < 2:
        res.reason = f"too short ({len(pts)} frames)"
        return res
    fps_src = (len(pts) - 1) / max(pts[-1] - pts[0], 1e-6)
    track = face.build_track(samples, len(pts), fps_src)
    if track.detect_frac < 0.3:
        res.reason = f"no face (found in {track.detect_frac:.0%} of sampled frames)"
        return res
    if track.multi_face_frac > 0.3:
        res.reason = f"several faces (in {track.multi_face_frac:.0%} of detections)"
        return res
    jmap = time_map(pts, cfg.fps)  # [K] output frame -> source frame
    ranges = cut_clips(track.segment[jmap], int(cfg.max_clip_s * cfg.fps), int(cfg.min_clip_s * cfg.fps))
    if not ranges:
        res.reason = f"too short (no stretch of >= {cfg.min_clip_s:g} s with a tracked face)"
        return res
    sync_ok = audio_trusted(row)
    _write_clips(video, out, cfg, info, track, jmap, ranges, audio, sync_ok, res, used_ids)
    res.status = "kept"
    if audio is None:
        res.reason = f"{res.audio}: kept as video-only clips"
    elif not sync_ok:
        res.reason = "MANIFEST: sync NOT confirmed / no usable audio; audio_usable=false"
    return res


def _write_clips(video, out, cfg, info, track, jmap, ranges, audio, sync_ok, res, used_ids) -> None:
    """Pass 2: decode again, crop the frames each clip needs, write clips as they complete."""
    boxes = {}
    for a, b in ranges:
        j = jmap[a:b]
        boxes[(a, b)] = face.crop_boxes(track.cx[j], track.cy[j], track.size[j], info.width,
                                        info.height, scale=cfg.crop_scale)
    want: dict[int, list[int]] = {}  # source frame -> output frames it feeds
    for a, b in ranges:
        for k in range(a, b):
            want.setdefault(int(jmap[k]), []).append(k)
    ident = identity_of(video, cfg.identity_regex)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", video.stem)[:80]
    buf: dict[int, np.ndarray] = {}
    ri = 0
    for i, (rgb, _) in enumerate(iter_video_frames(video)):
        if ri >= len(ranges):
            break
        for k in want.get(i, ()):
            a, b = ranges[ri] if ranges[ri][0] <= k < ranges[ri][1] else _range_of(ranges, k)
            buf[k] = face.crop_resize(rgb, boxes[(a, b)][k - a], cfg.size)
        while ri < len(ranges) and all(k in buf for k in range(*ranges[ri])):
            a, b = ranges[ri]
            frames = np.stack([buf.pop(k) for k in range(a, b)])
            res.clips.append(_emit_clip(out, cfg, base, ident, res, a, frames, audio, sync_ok, used_ids))
            ri += 1


def _range_of(ranges: list[tuple[int, int]], k: int) -> tuple[int, int]:
    return next(r for r in ranges if r[0] <= k < r[1])


def _emit_clip(out, cfg, base, ident, res, a, frames, audio, sync_ok, used_ids) -> dict:
    cid, n = f"{base}_{a // cfg.fps:04d}", 1
    while cid in used_ids:
        cid, n = f"{base}_{a // cfg.fps:04d}_{n}", n + 1
    used_ids.add(cid)
    video_rel = f"clips/{cid}.mp4"
    write_video(out / video_rel, frames, fps=cfg.fps, crf=cfg.crf)
    audio_rel = None
    if audio is not None:
        spf = cfg.sample_rate // cfg.fps  # samples per frame (640)
        seg = audio[a * spf:(a + len(frames)) * spf]
        seg = np.pad(seg, (0, len(frames) * spf - len(seg)))
        audio_rel = f"clips/{cid}{cfg.audio_ext}"
        write_audio(out / audio_rel, seg, cfg.sample_rate)
    return {"id": cid, "identity": ident, "source": res.source, "start_s": round(a / cfg.fps, 3),
            "duration_s": round(len(frames) / cfg.fps, 3), "frames": len(frames),
            "has_audio": audio is not None, "audio_usable": audio is not None and sync_ok,
            "split": split_of(ident, cfg.val_percent), "video": video_rel, "audio": audio_rel}


def prepare(srcs: list[str | Path], out: str | Path, cfg: PrepareConfig = PrepareConfig(),
            progress: bool = True) -> dict:
    """Builds the pack at `out` (created; an existing index.json is replaced) and returns its index."""
    from tqdm import tqdm

    t0 = time.monotonic()
    src_paths = [Path(s) for s in srcs]
    videos = find_videos(src_paths)
    manifest: dict[Path, dict] = {}
    for s in src_paths:
        manifest.update(load_manifest(s))
    out = Path(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    detector = face.HaarFaceDetector()
    results: list[FileResult] = []
    used: set[str] = set()
    bar = tqdm(videos, unit="file", disable=not progress, desc="prepare")
    for v in bar:
        bar.set_postfix_str(v.name[-40:])
        r = prepare_file(v, out, cfg, detector, manifest.get(v.resolve()), used)
        if r.status == "skipped":
            log.debug("skipped %s: %s", v.name, r.reason)
        results.append(r)
    index = _index(cfg, results, time.monotonic() - t0)
    (out / INDEX).write_text(json.dumps(index, indent=1))
    return index


def _index(cfg: PrepareConfig, results: list[FileResult], wall_s: float) -> dict:
    clips = [c for r in results for c in r.clips]
    secs = sum(c["duration_s"] for c in clips)
    return {
        "version": PACK_VERSION, "fps": cfg.fps, "sample_rate": cfg.sample_rate, "size": cfg.size,
        "crf": cfg.crf, "identity_rule": "stem minus take markers; MEAD ids; group__name",
        "clips": clips,
        "files": [r.as_json() for r in results],
        "skipped": [{"source": r.source, "reason": r.reason} for r in results if r.status == "skipped"],
        "stats": {
            "files": len(results), "kept_files": sum(r.status == "kept" for r in results),
            "clips": len(clips), "minutes": round(secs / 60, 2),
            "minutes_with_usable_audio": round(sum(c["duration_s"] for c in clips if c["audio_usable"]) / 60, 2),
            "identities": len({c["identity"] for c in clips}),
            "val_clips": sum(c["split"] == "val" for c in clips), "wall_s": round(wall_s, 1),
        },
    }
