"""Causal log-mel features with torch.fft (no torchaudio). Pure functions (DESIGN.md §5.6).

Mel frame m covers the n_fft samples that end at sample (m+1)*hop, so 100 frames/s line up with video:
video frame f (at f/25 s) owns mel frames 4f..4f+3. Samples before time 0 are silence (zeros).
"""
from __future__ import annotations

import functools
import math

import torch

from engine.config import SAMPLE_RATE, AudioConfig

LOG_FLOOR = 1e-6


def _hz_to_mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(n_mels: int, n_fft: int, sr: int = SAMPLE_RATE, fmin: float = 20.0,
                   fmax: float = 7600.0) -> torch.Tensor:
    """Triangular HTK-mel filters [n_mels, n_fft//2+1]."""
    mels = torch.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    bins = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (bins[None] - lo) / (mid - lo)
    down = (hi - bins[None]) / (hi - mid)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


def log_mel(samples: torch.Tensor, cfg: AudioConfig, first_frame: int, n_frames: int,
            sample0: int = 0) -> torch.Tensor:
    """Log-mel frames [first_frame, first_frame+n_frames) of a signal.

    samples [B,S] hold absolute samples [sample0, sample0+S); anything outside is treated as zeros.
    -> [B, n_mels, n_frames]
    """
    hop, n_fft = cfg.hop_length, cfg.n_fft
    lo = (first_frame + 1) * hop - n_fft  # first sample of the first window (absolute)
    hi = (first_frame + n_frames) * hop  # one past the last sample used
    seg = _slice_padded(samples, lo - sample0, hi - sample0)  # [B, hi-lo]
    frames = seg.unfold(-1, n_fft, hop)  # [B,n_frames,n_fft]
    window = torch.hann_window(cfg.win_length, periodic=True, dtype=seg.dtype, device=seg.device)
    # Right-aligned: the window ends at the frame's last sample, so no look-ahead hides in zero padding.
    window = torch.nn.functional.pad(window, (n_fft - cfg.win_length, 0))
    power = torch.fft.rfft(frames * window, dim=-1).abs().pow(2)  # [B,n_frames,n_fft/2+1]
    mel = power @ mel_filterbank(cfg.n_mels, n_fft).to(seg.device).T  # [B,n_frames,n_mels]
    return torch.log(mel + LOG_FLOOR).transpose(1, 2)


def _slice_padded(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """x[..., start:stop] with zeros wherever the range leaves x."""
    a, b = max(start, 0), min(stop, x.shape[-1])
    if b <= a:
        return x.new_zeros(*x.shape[:-1], stop - start)
    return torch.nn.functional.pad(x[..., a:b], (a - start, stop - b))
