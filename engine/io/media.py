"""Media read/write for render, prepare, eval and streaming (PyAV + OpenCV, no ffmpeg binary).

Everything inside the engine is RGB uint8 video at 25 fps and float32 mono audio at 16 kHz
(DESIGN.md §2); this module converts at the edges. Every failure on user input raises `MediaError`
with a one-line message that names the file, never a codec traceback.
"""
from __future__ import annotations

import logging
import os
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from engine.audio.resample import StreamResampler, resample  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


class MediaError(ValueError):
    """A media file could not be read or written; the message is one line, meant for the user."""


def _av():
    import av  # lazy: keeps `import engine` light for the app's start-up

    return av


def _open(path: str | Path):
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"{p}: no such file")
    av = _av()
    try:
        return av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise MediaError(f"{p}: not a readable media file ({_short(e)})") from None


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:160] if str(e) else type(e).__name__


# --------------------------------------------------------------------------- images


def read_image(path: str | Path) -> np.ndarray:
    """Any common still image (PNG, JPEG, WebP, BMP, TIFF...) -> RGB uint8 [H,W,3]."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise MediaError(f"{p}: no such file")
    # np.fromfile + imdecode, not imread: imread silently fails on non-ASCII paths on Windows.
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        img = _image_via_av(p)  # formats OpenCV lacks (e.g. some AVIF/GIF builds)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return _flatten_alpha(cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA))
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    # Transparent portraits (cut-outs) go on white, like image viewers show them.
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def _image_via_av(p: Path) -> np.ndarray:
    av = _av()
    try:
        with av.open(str(p)) as c:
            frame = next(c.decode(video=0))
            return frame.to_ndarray(format="bgr24")
    except (av.error.FFmpegError, StopIteration, IndexError, OSError, ValueError):
        raise MediaError(f"{p}: not a readable image") from None


# --------------------------------------------------------------------------- audio


def read_audio(path: str | Path, sample_rate: int = 16_000) -> np.ndarray:
    """The first audio stream of any file PyAV reads (wav, m4a, mp3, a video's track...) ->
    float32 mono [S] in [-1, 1] at `sample_rate`. Plain 16-bit PCM WAV is read without PyAV."""
    pcm = _read_pcm16_wav(Path(path), sample_rate)
    if pcm is not None:
        return pcm
    av = _av()
    with _open(path) as c:
        if not c.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        stream = c.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in c.decode(stream):
                frame.pts = None  # resampler must not try to honour gaps in broken timestamps
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        except av.error.FFmpegError as e:
            if not chunks:
                raise MediaError(f"{path}: audio could not be decoded ({_short(e)})") from None
            log.warning("%s: audio decoding stopped early (%s); keeping what was read", path, _short(e))
    if not chunks or sum(len(x) for x in chunks) == 0:
        raise MediaError(f"{path}: audio stream is empty")
    return np.clip(np.concatenate(chunks).astype(np.float32, copy=False), -1.0, 1.0)


def _read_pcm16_wav(p: Path, sample_rate: int) -> np.ndarray | None:
    """16-bit PCM WAV -> float32 mono at `sample_rate` (channels averaged, our resampler); None for
    any other file (float or compressed WAV, other containers), which PyAV then reads."""
    if p.suffix.lower() != ".wav" or not p.is_file():
        return None
    try:
        with wave.open(str(p), "rb") as w:
            if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
                return None
            rate, channels = w.getframerate(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        return None  # e.g. WAVE_FORMAT_EXTENSIBLE or float samples: PyAV reads those
    x = np.frombuffer(raw[: len(raw) // (2 * channels) * 2 * channels], "<i2").reshape(-1, channels)
    if x.size == 0:
        raise MediaError(f"{p}: audio stream is empty")
    mono = x.astype(np.float32).mean(axis=1) / 32768.0
    if rate != sample_rate:
        mono = resample(mono, rate, sample_rate)
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- video


@dataclass(frozen=True)
class VideoInfo:
    fps: float  # average frame rate (may be odd: 22.131, 29.97)
    n_frames: int  # from the container when it says, else estimated from duration * fps
    width: int
    height: int
    duration_s: float
    has_audio: bool
    start_s: float = 0.0  # video stream start time in the container
    audio_start_s: float | None = None  # first audio stream's start time (A/V offset = difference)


def video_info(path: str | Path) -> VideoInfo:
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError(f"{path}: has no video stream")
        s = c.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / 1_000_000  # container duration is in AV_TIME_BASE (µs)
        else:
            duration = 0.0
        n = int(s.frames) if s.frames else int(round(duration * fps))
        if fps <= 0 and n and duration:
            fps = n / duration
        a = c.streams.audio[0] if c.streams.audio else None
        return VideoInfo(fps, n, s.codec_context.width, s.codec_context.height, duration,
                         a is not None, _start(s) or 0.0, _start(a) if a is not None else None)


def _start(s) -> float | None:
    if s.start_time is None or s.time_base is None:
        return None
    return float(s.start_time * s.time_base)


def iter_video_frames(path: str | Path) -> Iterator[tuple[np.ndarray, float]]:
    """Decoded frames in presentation order: (RGB uint8 [H,W,3], pts in seconds from 0).

    Frames without a timestamp get one from the frame rate; a decode error mid-file ends the
    iteration with a warning (broken tails are common in downloaded clips)."""
    av = _av()
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError(f"{path}: has no video stream")
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        rate = float(s.average_rate or s.guessed_rate or 25)
        t0: float | None = None
        i = 0
        try:
            for frame in c.decode(s):
                t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else i / rate
                t0 = t if t0 is None else t0
                yield frame.to_ndarray(format="rgb24"), t - t0
                i += 1
        except av.error.FFmpegError as e:
            if i == 0:
                raise MediaError(f"{path}: video could not be decoded ({_short(e)})") from None
            log.warning("%s: decoding stopped after %d frames (%s)", path, i, _short(e))


def read_video(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """All frames: (uint8 [F,H,W,3], pts seconds [F]). For short clips; prefer iter_video_frames."""
    frames, pts = [], []
    for rgb, t in iter_video_frames(path):
        frames.append(rgb)
        pts.append(t)
    if not frames:
        raise MediaError(f"{path}: video has no frames")
    return np.stack(frames), np.asarray(pts, np.float64)


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray] | np.ndarray,
    fps: float = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
    crf: int = 18,
) -> int:
    """Writes H.264 (yuv420p, `crf`) + AAC MP4 from RGB uint8 frames [F,H,W,3] (array or iterable)
    and optional float32 mono audio. Odd sizes are edge-padded to even (yuv420p needs it).
    Returns the number of frames written. The file appears complete or not at all: it is written beside
    `path` under a temporary name and renamed at the end, so a failure (or an exception from the frames
    iterable, e.g. a cancelled render) leaves an existing file at `path` as it was and no partial file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.stem}.partial{p.suffix}")  # same folder: the rename is atomic; same suffix: same format
    try:
        n = _write_video(tmp, p, frames, fps, audio, sample_rate, crf)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def _write_video(tmp: Path, p: Path, frames, fps: float, audio, sample_rate: int, crf: int) -> int:
    av = _av()
    try:
        out = av.open(str(tmp), mode="w")
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"{p}: cannot write ({_short(e)})") from None
    pcm = None if audio is None else np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)
    n, a_done = 0, 0
    try:
        vs = as_ = None
        for rgb in frames:
            rgb = _check_frame(rgb, p)
            if vs is None:  # all streams must exist before the first packet is muxed
                vs = _add_video_stream(out, rgb, fps, crf)
                as_ = _add_audio_stream(out, sample_rate) if pcm is not None and len(pcm) else None
            for pkt in vs.encode(av.VideoFrame.from_ndarray(_pad_even(rgb), format="rgb24")):
                out.mux(pkt)
            n += 1
            if as_ is not None:  # interleave: audio up to the end of this frame
                a_end = min(len(pcm), int(round(n / fps * sample_rate)))
                a_done = _encode_audio(out, as_, pcm, a_done, a_end, sample_rate)
        if vs is None:
            raise MediaError(f"{p}: no frames to write")
        out.mux(vs.encode())
        if as_ is not None:
            _encode_audio(out, as_, pcm, a_done, len(pcm), sample_rate)
            out.mux(as_.encode())
    except av.error.FFmpegError as e:
        raise MediaError(f"{p}: encoding failed ({_short(e)})") from None
    finally:
        out.close()
    return n


def _check_frame(rgb: np.ndarray, p: Path) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise MediaError(f"{p}: frames must be RGB uint8 [H,W,3], got {rgb.dtype} {list(rgb.shape)}")
    return np.ascontiguousarray(rgb)


def _pad_even(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return rgb


def _add_video_stream(out, rgb: np.ndarray, fps: float, crf: int):
    rate = Fraction(fps).limit_denominator(1001)
    vs = out.add_stream("libx264", rate=rate)
    vs.height, vs.width = _pad_even(rgb).shape[:2]
    vs.pix_fmt = "yuv420p"
    vs.options = {"crf": str(crf), "preset": "medium"}
    return vs


def _add_audio_stream(out, sample_rate: int):
    a = out.add_stream("aac", rate=sample_rate)
    a.layout = "mono"
    return a


def _encode_audio(out, a, pcm: np.ndarray, start: int, end: int, sample_rate: int) -> int:
    av = _av()
    step = 1024  # AAC frame size; PyAV re-chunks anyway, this keeps frames small
    for i in range(start, end, step):
        fr = av.AudioFrame.from_ndarray(pcm[None, i:min(i + step, end)], format="flt", layout="mono")
        fr.sample_rate = sample_rate
        fr.pts = i
        for pkt in a.encode(fr):
            out.mux(pkt)
    return max(start, end)


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int = 16_000) -> None:
    """float mono [S] -> lossless .wav (16-bit PCM) or .flac, chosen by the file extension."""
    av = _av()
    p = Path(path)
    codec = {".wav": "pcm_s16le", ".flac": "flac"}.get(p.suffix.lower())
    if codec is None:
        raise MediaError(f"{p}: audio can be written as .wav or .flac")
    p.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(np.asarray(samples, np.float32).reshape(-1), -1, 1) * 32767).round().astype(np.int16)
    with av.open(str(p), mode="w") as out:
        a = out.add_stream(codec, rate=sample_rate)
        a.layout = "mono"
        a.format = "s16"
        step = 4096
        for i in range(0, len(pcm), step):
            fr = av.AudioFrame.from_ndarray(pcm[None, i:i + step], format="s16", layout="mono")
            fr.sample_rate = sample_rate
            fr.pts = i
            for pkt in a.encode(fr):
                out.mux(pkt)
        out.mux(a.encode())
