"""Phonetic pretext task (issue 4): the generator's AudioEncoder learns to name the phoneme and viseme of
every mel frame of synthetic speech, so generator training starts from phonetic features.

The label of mel frame m is read from the encoder's features at m + lookahead_mels (causal), and is the
phoneme at the window centre of mel frame m - phone_delay: with no look-ahead (preset `base`) a short
label delay lets the encoder hear a little of each phoneme before naming it (measured: docs/TRAINING.md).
Augmentation (gain, coloured noise at random SNR, low-pass, small-room reverb, a noise floor: espeak's
pauses are digital zeros, real microphones never are; babble of 1-3 other corpus voices at 5-25 dB below
the speech, so background voices in pauses stay silence) is what lets it transfer to real speech.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.audio.encoder import AudioEncoder
from engine.audio.mel import log_mel
from engine.config import SAMPLE_RATE, EngineConfig
from engine.train.config import TrainConfig
from engine.train.data import randint, seeded
from engine.train.phonetic.corpus import Split
from engine.train.phonetic.phonemes import PHONEME_TO_VISEME, PHONEMES, VISEMES, frame_labels


class PhoneticStep(nn.Module):
    """`audio` is exactly GeneratorStep.audio (same keys); `head` classifies each mel frame."""

    def __init__(self, cfg: EngineConfig, phone_delay: int = 0):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("phone_delay", torch.tensor(phone_delay))  # travels with the export
        self.audio = AudioEncoder(cfg.audio)
        # Only mel_features trains here; the latent-rate embedder stays at its init for the generator
        # (and without gradients DDP does not wait for it).
        for part in (self.audio.frame, self.audio.first, self.audio.rest):
            part.requires_grad_(False)
        self.head = nn.ModuleDict({"phone": nn.Conv1d(cfg.audio.width, len(PHONEMES), 1),
                                   "viseme": nn.Conv1d(cfg.audio.width, len(VISEMES), 1)})

    def logits(self, samples: torch.Tensor) -> dict[str, torch.Tensor]:
        """Audio [B,S] from sample 0 -> {"phone": [B,40,M], "viseme": [B,15,M]} for labels of mel frames
        0..M-1, M = S // hop - lookahead (entry m uses audio up to mel frame m + lookahead)."""
        a = self.cfg.audio
        mel = log_mel(samples.float(), a, 0, samples.shape[1] // a.hop_length)  # [B,n_mels,M+la]
        h = self.audio.mel_features(mel.to(self.head["phone"].weight.dtype))  # [B,W,M+la]
        h = h[:, :, a.lookahead_mels:]  # [B,W,M]
        return {k: head(h) for k, head in self.head.items()}

    def forward(self, samples: torch.Tensor, phone: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """samples [B,S], phone labels [B,M] -> (loss, logs)."""
        out = self.logits(samples)
        vis = torch.as_tensor(PHONEME_TO_VISEME, device=phone.device)[phone]  # [B,M]
        lp = F.cross_entropy(out["phone"].float(), phone)
        lv = F.cross_entropy(out["viseme"].float(), vis)
        acc_p = (out["phone"].argmax(1) == phone).float().mean()
        acc_v = (out["viseme"].argmax(1) == vis).float().mean()
        return lp + lv, {"phone_ce": lp.detach(), "viseme_ce": lv.detach(), "phone_acc": acc_p, "viseme_acc": acc_v}


def augment(x: torch.Tensor, g: torch.Generator, babble: torch.Tensor | None = None,
            babble_p: float = 0.4) -> torch.Tensor:
    """Microphone-like audio from clean speech [B,S] (float, 16 kHz) -> [B,S]. `babble` [B,S]: other
    voices, mixed at 5-25 dB below the speech on a share `babble_p` of the examples (not labelled)."""
    b, s = x.shape
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(b, 1, generator=g)  # noqa: E731  [B,1]
    n_fft = 1 << (2 * s - 1).bit_length()
    freqs = torch.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)[None]  # [1,K]
    # small-room reverb: exponentially decaying noise (RT60 0.1-0.5 s), on 30% of the examples
    t = torch.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    ir = torch.randn(b, len(t), generator=g) * torch.exp(-6.9 * t[None] / u(0.1, 0.5))  # [B,L]
    ir = ir / ir.norm(dim=1, keepdim=True) * u(0.1, 0.6)
    ir[:, 0] = 1.0
    ir = torch.where(torch.rand(b, 1, generator=g) < 0.3, ir, F.one_hot(torch.zeros(b, dtype=torch.long), len(t)))
    spec = torch.fft.rfft(x, n_fft) * torch.fft.rfft(ir, n_fft)  # [B,K]
    # low-pass (cheap mics, codecs) on half of the examples: a smooth roll-off above 2.5-7.5 kHz
    cut = torch.where(torch.rand(b, 1, generator=g) < 0.5, u(2500, 7500), torch.full((b, 1), 1e9))
    spec = spec / (1 + (freqs / cut) ** 8)
    y = torch.fft.irfft(spec, n_fft)[:, :s]
    y = y / y.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-6) * 10 ** (u(-40, -12) / 20)  # speech RMS dBFS
    # coloured noise (white .. brown) at 0-40 dB SNR on 80%, else a -70..-50 dBFS floor
    noise = torch.fft.irfft(torch.fft.rfft(torch.randn(b, n_fft, generator=g)) /
                            freqs.clamp_min(20.0) ** (u(0, 2) / 2), n_fft)[:, :s]
    noise = noise / noise.pow(2).mean(1, keepdim=True).sqrt()
    speech_rms = y.pow(2).mean(1, keepdim=True).sqrt()
    if babble is not None:
        on = torch.rand(b, 1, generator=g) < babble_p
        gain = speech_rms * 10 ** (-u(5, 25) / 20) / babble.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-6)
        y = y + torch.where(on, gain, torch.zeros_like(gain)) * babble
    level = torch.where(torch.rand(b, 1, generator=g) < 0.8, speech_rms * 10 ** (-u(0, 40) / 20),
                        10 ** (u(-70, -50) / 20))
    return (y + noise * level).clamp(-1, 1)


class PhoneticTask:
    name = "audio"

    def __init__(self, cfg: EngineConfig, tcfg: TrainConfig, train: Split):
        self.cfg, self.tcfg, self.data = cfg, tcfg, train
        self.crop = int(tcfg.crop_seconds * SAMPLE_RATE) // cfg.audio.hop_length * cfg.audio.hop_length
        if len(train.audio) < self.crop:
            raise ValueError("corpus shorter than one training crop")
        self.module = seeded(PhoneticStep, cfg, tcfg.phone_delay, seed=tcfg.seed)

    def batch(self, g: torch.Generator, step: int, device: torch.device) -> dict:
        a = self.cfg.audio
        m = self.crop // a.hop_length - a.lookahead_mels
        crop = lambda s0: torch.from_numpy(self.data.float_audio(s0, s0 + self.crop))  # noqa: E731
        starts = lambda: randint(g, len(self.data.audio) - self.crop + 1)  # noqa: E731
        xs, ys, bs = [], [], []
        for _ in range(self.tcfg.batch):
            s0 = starts()
            xs.append(crop(s0))
            ys.append(torch.from_numpy(frame_labels(self.data.starts - s0, self.data.classes, m, a.hop_length,
                                                    a.win_length, self.tcfg.phone_delay)))
            if self.tcfg.babble > 0:
                bs.append(sum(crop(starts()) for _ in range(1 + randint(g, 3))))  # babble: 1-3 other voices
        babble = torch.stack(bs) if bs else None
        return {"samples": augment(torch.stack(xs), g, babble, self.tcfg.babble).to(device),
                "phone": torch.stack(ys).to(device)}

    def loss(self, module: nn.Module, batch: dict):
        return module(batch["samples"], batch["phone"])

    def export(self, ema: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`audio.*` (GeneratorStep's keys: `--init` warm-starts the generator's encoder) + `head.*` and
        `phone_delay` (the classifier, for `avacast phonetic eval`; a generator ignores them)."""
        return dict(ema)
