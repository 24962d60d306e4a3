import torch

from engine.audio.encoder import AudioEncoder, latent_frames_for, latent_video_frames, mel_span, samples_needed
from engine.audio.mel import log_mel
from engine.config import AudioConfig, EngineConfig
from tests.conftest import randomize


def test_latent_to_video_frame_mapping():
    assert latent_video_frames(0) == (0, 1)
    assert latent_video_frames(1) == (1, 5)
    assert latent_video_frames(3) == (9, 13)
    assert [latent_frames_for(n) for n in (1, 2, 5, 6, 25)] == [1, 2, 2, 3, 7]


def test_mel_is_causal_and_chunk_exact():
    cfg = AudioConfig()
    x = torch.randn(1, 16000)
    full = log_mel(x, cfg, 0, 100)
    assert full.shape == (1, 80, 100)
    # a window of frames computed from a slice of the signal equals the same frames of the full run
    part = log_mel(x[:, 3000:9000], cfg, 30, 20, sample0=3000)
    torch.testing.assert_close(part, full[:, :, 30:50])
    future = x.clone()
    future[:, 5000:] = 0
    torch.testing.assert_close(log_mel(future, cfg, 0, 31), full[:, :, :31])  # frame 30 ends at 4960


@torch.no_grad()
def test_encoder_windowed_equals_whole_clip():
    cfg = EngineConfig.tiny().audio
    enc = randomize(AudioEncoder(cfg)).eval()
    x = torch.randn(1, 24000)
    whole = enc.encode_samples(x, 0, 9)
    assert whole.shape == (1, 9, cfg.feature_dim)
    for j in range(9):
        lo = max(0, (mel_span(cfg, j, j + 1)[0] + 1) * cfg.hop_length - cfg.n_fft)
        part = enc.encode_samples(x[:, lo: samples_needed(cfg, j)], j, j + 1, sample0=lo)
        torch.testing.assert_close(part, whole[:, j: j + 1], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_lookahead_sees_exactly_its_future():
    cfg = AudioConfig(lookahead_ms=40, n_mels=32, width=16, layers=2, kernel=3, feature_dim=8)
    enc = randomize(AudioEncoder(cfg)).eval()
    x = torch.randn(1, 16000)
    need = samples_needed(cfg, 2)  # latent 2 = video frames 5..8 -> up to 9*640 + 40 ms
    assert need == 9 * 640 + 4 * 160
    ref = enc.encode_samples(x, 2, 3)
    y = x.clone()
    y[:, need:] = 0
    torch.testing.assert_close(enc.encode_samples(y, 2, 3), ref)
    y[:, need - 40] += 1.0  # 2.5 ms before the boundary (the window tapers to 0 at its very end)
    assert not torch.allclose(enc.encode_samples(y, 2, 3), ref)
