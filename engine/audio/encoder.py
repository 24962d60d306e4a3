"""Trainable speech encoder: causal conv stack over log-mel, then a 4x temporal embedder to the latent
frame rate, with a separate head for the single-frame first latent (paper §Generator: audio; DESIGN.md §2).

Feature time m sees mel frames up to m + lookahead. Latent frame 0 = video frame 0; latent j >= 1 =
video frames 4j-3..4j; video frame f = mel frames 4f..4f+3.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import TEMPORAL_DOWN, AudioConfig
from engine.audio.mel import log_mel
from engine.nn.conv import CausalConv1d


def latent_video_frames(j: int) -> tuple[int, int]:
    """Video frames [start, stop) of latent frame j."""
    return (0, 1) if j == 0 else (TEMPORAL_DOWN * j - 3, TEMPORAL_DOWN * j + 1)


def latent_frames_for(n_video: int) -> int:
    """Latent frames needed to cover n_video video frames (>= 1)."""
    return 1 + -(-(max(n_video, 1) - 1) // TEMPORAL_DOWN)


def mel_span(cfg: AudioConfig, j0: int, j1: int) -> tuple[int, int]:
    """Mel frames [start, stop) the encoder must see to produce latents j0..j1-1 exactly."""
    mpf = cfg.mels_per_frame
    f0, f1 = latent_video_frames(j0)[0], latent_video_frames(j1 - 1)[1]
    return max(0, f0 * mpf + cfg.lookahead_mels - cfg.receptive_mels), f1 * mpf + cfg.lookahead_mels


def samples_needed(cfg: AudioConfig, j: int) -> int:
    """Absolute sample count that must exist before latent frame j can be computed."""
    return mel_span(cfg, j, j + 1)[1] * cfg.hop_length


class _ConvLayer(nn.Module):
    def __init__(self, width: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = CausalConv1d(width, width, kernel, dilation)
        self.mix = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.gelu(self.conv(x)))


class AudioEncoder(nn.Module):
    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.cfg = cfg
        w, a = cfg.width, cfg.feature_dim
        self.inp = nn.Conv1d(cfg.n_mels, w, 1)
        self.layers = nn.ModuleList([_ConvLayer(w, cfg.kernel, 2 ** (i % 3)) for i in range(cfg.layers)])
        self.frame = nn.Linear(cfg.mels_per_frame * w, w)  # 4 mel frames -> 1 video frame
        self.first = nn.Sequential(nn.Linear(w, a), nn.SiLU(), nn.Linear(a, a))
        self.rest = nn.Sequential(nn.Linear(TEMPORAL_DOWN * w, a), nn.SiLU(), nn.Linear(a, a))

    def mel_features(self, mel: torch.Tensor) -> torch.Tensor:
        """[B,n_mels,M] -> [B,W,M], causal. Normalised log-mel in, per-mel-frame features out."""
        x = self.inp((mel + 6.0) / 4.0)
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, mel: torch.Tensor, mel0: int, j0: int, j1: int) -> torch.Tensor:
        """Latent features for latent frames [j0,j1) from log-mel [B,n_mels,M] starting at mel frame mel0
        (which must cover `mel_span(cfg, j0, j1)`) -> [B, j1-j0, A]."""
        la, mpf = self.cfg.lookahead_mels, self.cfg.mels_per_frame
        h = self.mel_features(mel)  # [B,W,M]
        f0, f1 = latent_video_frames(j0)[0], latent_video_frames(j1 - 1)[1]
        start = f0 * mpf + la - mel0
        h = h[:, :, start : start + (f1 - f0) * mpf]  # [B,W,(f1-f0)*4]
        frames = self.frame(h.transpose(1, 2).reshape(h.shape[0], f1 - f0, -1))  # [B,Fv,W]
        out = []
        if j0 == 0:
            out.append(self.first(frames[:, :1]))
            frames = frames[:, 1:]
        if frames.shape[1]:
            grouped = frames.reshape(frames.shape[0], -1, TEMPORAL_DOWN * frames.shape[2])  # [B,T',4W]
            out.append(self.rest(grouped))
        return torch.cat(out, dim=1)

    def encode_samples(self, samples: torch.Tensor, j0: int, j1: int, sample0: int = 0) -> torch.Tensor:
        """Audio [B,S] at 16 kHz (absolute samples from sample0; zeros elsewhere) -> [B,j1-j0,A]."""
        m0, m1 = mel_span(self.cfg, j0, j1)
        mel = log_mel(samples.float(), self.cfg, m0, m1 - m0, sample0)
        return self(mel.to(self.inp.weight.dtype), m0, j0, j1)
