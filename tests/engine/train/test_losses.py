import pytest
import torch

from engine.train.losses import psnr, ssim


def test_ssim_identity_and_noise():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)
    noisy = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    assert ssim(a, noisy).item() < 0.9
    assert psnr(a, a).item() > 90 and 8 < psnr(a, noisy).item() < 20


def test_ssim_stays_fp32_under_autocast():
    """Regression: bf16 autocast made the variance terms cancel and the VAE diverge on the GPU."""
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1, 3, 32, 32, generator=g) * 0.02 + 0.5  # low-contrast image: small variances
    b = a + 0.001 * torch.randn(a.shape, generator=g)
    ref = ssim(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ssim(a, b)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), abs=1e-6)
