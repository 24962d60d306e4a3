"""A synthetic speech corpus with exact phoneme timings (issue 4): espeak-ng voices x sentences.

Text needs no network: sentences of Python's own documentation (`pydoc_data.topics`, ~465 k characters of
English prose) and random word strings from its vocabulary. The validation split holds out sentences (by
hash) and whole voices (a dialect and variants never used in training).

On disk (DIR/train.npz, DIR/val.npz, DIR/corpus.json): utterances concatenated with short random gaps,
audio int16 [S] at 16 kHz, segments starts [P] (sample), classes [P] (PHONEMES index), names [P] (espeak
mnemonics, so the class mapping can change without re-synthesizing).
"""
from __future__ import annotations

import json
import logging
import re
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.config import SAMPLE_RATE
from engine.train.phonetic import espeak
from engine.train.phonetic.phonemes import PHONEMES, segment_classes

log = logging.getLogger(__name__)

TRAIN_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029")
TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f5", "klatt", "klatt3")
VAL_VOICES = ("en-gb-x-gbcwmd",)  # West Midlands: a dialect the training split never hears
VAL_VARIANTS = ("f4", "m7", "klatt2")


@dataclass(frozen=True)
class CorpusConfig:
    minutes: float = 30.0  # training speech; validation gets a tenth (at least 1 minute)
    seed: int = 0
    rate: tuple[int, int] = (130, 260)  # words per minute
    pitch: tuple[int, int] = (20, 80)
    pitch_range: tuple[int, int] = (20, 90)
    gap_s: tuple[float, float] = (0.05, 0.6)  # silence between utterances

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ValueError("minutes must be > 0")


@dataclass
class Split:
    audio: np.ndarray  # [S] int16
    starts: np.ndarray  # [P] int64
    classes: np.ndarray  # [P] int64
    names: list[str]  # [P]

    def float_audio(self, a: int = 0, b: int | None = None) -> np.ndarray:
        return self.audio[a:b].astype(np.float32) / 32768.0


def sentences() -> tuple[list[str], list[str]]:
    """(train, val) sentences of 4..24 words from the stdlib documentation, split by hash."""
    from pydoc_data.topics import topics

    text = re.sub(r"[^A-Za-z.,;!?' ]+", " ", " ".join(topics[k] for k in sorted(topics)))
    out: tuple[list[str], list[str]] = ([], [])
    for s in re.split(r"(?<=[.!?])\s+", text):
        words = s.split()
        if 4 <= len(words) <= 24 and sum(len(w) > 1 for w in words) >= 3:
            out[zlib.crc32(s.encode()) % 10 == 0].append(" ".join(words))
    return out


def _texts(pool: list[str], vocab: list[str], rng: np.random.Generator):
    while True:
        if rng.random() < 0.6:
            yield pool[rng.integers(len(pool))]
        else:  # random words with commas: prosody and pauses the prose lacks
            words = [vocab[i] for i in rng.integers(len(vocab), size=rng.integers(3, 15))]
            yield " ".join(w + ("," if rng.random() < 0.1 else "") for w in words) + rng.choice([".", "?", "!"])


def _voices(names: tuple[str, ...], variants: tuple[str, ...], c: CorpusConfig, rng: np.random.Generator):
    while True:
        v = names[rng.integers(len(names))]
        var = variants[rng.integers(len(variants))]
        yield espeak.Voice(v + (f"+{var}" if var else ""), int(rng.integers(*c.rate)), int(rng.integers(*c.pitch)),
                           int(rng.integers(*c.pitch_range)))


def synthesize_split(minutes: float, texts, voices, c: CorpusConfig, rng: np.random.Generator) -> Split:
    """Utterances until `minutes` of audio, each after a random silent gap."""
    audio, starts, names, n = [], [], [], 0
    while n < minutes * 60 * SAMPLE_RATE:
        u = espeak.synthesize(next(texts), next(voices))
        gap = int(rng.uniform(*c.gap_s) * SAMPLE_RATE)
        audio += [np.zeros(gap, np.float32), u.audio]
        starts += [np.array([n]), n + gap + u.starts]
        names += ["_"] + u.phonemes
        n += gap + len(u.audio)
    pcm = np.clip(np.round(np.concatenate(audio) * 32768), -32768, 32767).astype(np.int16)
    return Split(pcm, np.concatenate(starts).astype(np.int64), segment_classes(names), names)


def build(out: Path, c: CorpusConfig = CorpusConfig()) -> None:
    """Write DIR/{train,val}.npz and corpus.json."""
    out.mkdir(parents=True, exist_ok=True)
    train_s, val_s = sentences()
    vocab = sorted({w.strip(".,;!?'").lower() for s in train_s for w in s.split()} - {""})
    for name, mins, pool, voices, variants, seed in (
            ("train", c.minutes, train_s, TRAIN_VOICES, TRAIN_VARIANTS, c.seed),
            ("val", max(1.0, c.minutes / 10), val_s, VAL_VOICES, VAL_VARIANTS, c.seed + 1)):
        rng = np.random.default_rng(seed)
        split = synthesize_split(mins, _texts(pool, vocab, rng), _voices(voices, variants, c, rng), c, rng)
        np.savez(out / f"{name}.npz", audio=split.audio, starts=split.starts, classes=split.classes,
                 names=np.array(split.names))
        log.info("%s: %.1f min, %d phonemes", name, len(split.audio) / SAMPLE_RATE / 60, len(split.starts))
    meta = {"config": asdict(c), "phonemes": PHONEMES, "train_voices": TRAIN_VOICES, "val_voices": VAL_VOICES,
            "train_variants": TRAIN_VARIANTS, "val_variants": VAL_VARIANTS}
    (out / "corpus.json").write_text(json.dumps(meta, indent=1))


def exists(path: Path) -> bool:
    return (path / "corpus.json").is_file()


def load(path: Path, split: str) -> Split:
    with np.load(path / f"{split}.npz") as z:
        return Split(z["audio"], z["starts"], z["classes"], list(z["names"]))
