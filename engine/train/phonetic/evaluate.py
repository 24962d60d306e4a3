"""Measure a phonetic pretext model (issue 4): frame accuracy on held-out synthetic speech, and on real
speech (no labels) whether predicted silence follows the pauses: predicted-silence rate in speech vs in
pauses found by energy, and how varied the visemes are in speech."""
from __future__ import annotations

import numpy as np
import torch

from engine.audio.mel import log_mel
from engine.config import EngineConfig
from engine.train.phonetic.corpus import Split
from engine.train.phonetic.phonemes import PHONEME_TO_VISEME, VISEMES, frame_labels
from engine.train.phonetic.task import PhoneticStep, augment

CHUNK_S = 30  # evaluate long audio in pieces (each from its own sample 0, like a fresh stream)


@torch.no_grad()
def predict(module: PhoneticStep, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Audio [S] -> argmax classes {"phone": [M], "viseme": [M]} for mel frames 0..M-1."""
    hop, out = module.cfg.audio.hop_length, {"phone": [], "viseme": []}
    step = CHUNK_S * 16_000 // hop * hop
    for a in range(0, len(audio) - hop + 1, step):
        x = torch.from_numpy(np.ascontiguousarray(audio[a:a + step + module.cfg.audio.lookahead_ms * 16]))[None]
        logits = module.logits(x.float())
        n = min(step, len(audio) - a) // hop
        for k in out:
            out[k].append(logits[k][0].argmax(0)[:n].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def synthetic_report(module: PhoneticStep, split: Split, delay: int, noisy: bool, seed: int = 0) -> dict:
    """Frame accuracy against exact labels; noisy: the training augmentation with a fixed seed."""
    a = module.cfg.audio
    audio = split.float_audio()
    if noisy:
        g = torch.Generator().manual_seed(seed)
        step = CHUNK_S * 16_000
        audio = np.concatenate([augment(torch.from_numpy(audio[i:i + step])[None], g)[0].numpy()
                                for i in range(0, len(audio), step)])
    pred = predict(module, audio)
    m = len(pred["phone"])
    # chunks restart at their own sample 0: labels are per absolute frame either way
    phone = frame_labels(split.starts, split.classes, m, a.hop_length, a.win_length, delay)
    vis = PHONEME_TO_VISEME[phone]
    speech = phone != 0
    return {
        "frames": int(m), "phone_acc": float((pred["phone"] == phone).mean()),
        "viseme_acc": float((pred["viseme"] == vis).mean()),
        "phone_acc_speech": float((pred["phone"] == phone)[speech].mean()),
        "viseme_acc_speech": float((pred["viseme"] == vis)[speech].mean()),
        "silence_recall": float((pred["viseme"][~speech] == 0).mean()),
        "chance_viseme_majority": float(np.bincount(vis).max() / m),
    }


def frame_energy_db(audio: np.ndarray, cfg: EngineConfig) -> np.ndarray:
    """Mel-frame energy [M] in dB relative to the file's 95th percentile."""
    mel = log_mel(torch.from_numpy(audio)[None].float(), cfg.audio, 0, len(audio) // cfg.audio.hop_length)[0]
    db = 10 * torch.log10(mel.exp().sum(0) + 1e-10).numpy()
    return db - np.percentile(db, 95)


def real_report(module: PhoneticStep, audio: np.ndarray, delay: int, pause_db: float = -35.0,
                speech_db: float = -20.0) -> dict:
    """Pauses: every frame within +-50 ms below pause_db; speech: frames above speech_db (the label of
    frame m describes the audio of frame m - delay, so energy is shifted the same way)."""
    pred = predict(module, audio)["viseme"]
    db = frame_energy_db(audio, module.cfg)
    db = np.concatenate([np.full(delay, db[0]), db])[:len(pred)]
    loud = np.lib.stride_tricks.sliding_window_view(np.pad(db, 5, mode="edge"), 11).max(1)
    pause, speech = loud < pause_db, db > speech_db
    changes = np.count_nonzero(np.diff(pred[speech]) != 0) if speech.any() else 0
    return {
        "seconds": len(audio) / 16_000, "pause_frames": int(pause.sum()), "speech_frames": int(speech.sum()),
        "silence_in_pause": float((pred[pause] == 0).mean()) if pause.any() else None,
        "silence_in_speech": float((pred[speech] == 0).mean()) if speech.any() else None,
        "visemes_used_in_speech": int(len(np.unique(pred[speech][pred[speech] != 0]))),
        "viseme_changes_per_s_speech": changes / max(speech.sum() / 100, 1e-9),
        "viseme_hist_speech": {VISEMES[i]: int(c)
                               for i, c in enumerate(np.bincount(pred[speech], minlength=len(VISEMES)))},
    }
