"""In-memory training data from a pack: frames decoded once at the preset's resolution, batches drawn
from seeded generators so a resumed run sees exactly the batches an uninterrupted one would."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from engine.train.pack import Clip, Pack

log = logging.getLogger(__name__)


@dataclass
class ClipData:
    clip: Clip
    frames: np.ndarray  # [F,H,W,3] uint8
    audio: np.ndarray | None  # [F*640] float32 (None for clips without usable audio)


def load_clips(pack: Pack, clips: list[Clip], size: int, with_audio: bool, workers: int = 8) -> list[ClipData]:
    """Decode clips (threads: PyAV releases the GIL) at `size`²."""
    def one(c: Clip) -> ClipData:
        audio = pack.load_audio(c) if with_audio and c.audio_usable else None  # unsynced audio: none
        return ClipData(c, pack.load_frames(c, size), audio)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        out = list(pool.map(one, clips))
    log.info("loaded %d clips, %d frames at %d²", len(out), sum(len(c.frames) for c in out), size)
    return out


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The one source of randomness for a training step."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + rank)


def seeded(factory, *args, seed: int):
    """Build a module with a fixed initialisation, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(*args)


def randint(g: torch.Generator, high: int) -> int:
    return int(torch.randint(high, (1,), generator=g))


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """[F,H,W,3] uint8 -> [3,F,H,W] float in [-1,1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 127.5 - 1.0


def augment(video: torch.Tensor, refs: torch.Tensor, g: torch.Generator,
            flip: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Same random flip (or the given one), colour and zoom for a clip [3,F,H,W] and its references [R,3,H,W]."""
    if (torch.rand(1, generator=g) < 0.5) if flip is None else flip:
        video, refs = video.flip(-1), refs.flip(-1)
    gain = 1 + 0.2 * (torch.rand(3, generator=g) - 0.5)  # per-channel colour
    bias = 0.1 * (torch.rand(1, generator=g) - 0.5)
    video = (video * gain.view(3, 1, 1, 1) + bias).clamp(-1, 1)
    refs = (refs * gain.view(1, 3, 1, 1) + bias).clamp(-1, 1)
    zoom = 1 + 0.12 * float(torch.rand(1, generator=g))
    if zoom > 1.01:
        h = video.shape[-1]
        c = int(round(h / zoom))
        y0, x0 = randint(g, h - c + 1), randint(g, h - c + 1)
        def crop(x: torch.Tensor) -> torch.Tensor:
            flat = x[..., y0 : y0 + c, x0 : x0 + c].reshape(-1, 1, c, c)
            out = torch.nn.functional.interpolate(flat, size=(h, h), mode="bilinear", align_corners=False)
            return out.reshape(*x.shape[:-2], h, h)
        video, refs = crop(video), crop(refs)
    return video, refs
