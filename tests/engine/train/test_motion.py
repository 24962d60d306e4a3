import pytest
import torch

from engine.train.motion import motion_basis


def _clips(directions, n=6, t=12, seed=0):
    """Latents [C,T,h,w] of n clips: each its own identity (a random offset, constant within the clip) plus
    motion along `directions` [k, D] (C=2, h=w=3)."""
    g = torch.Generator().manual_seed(seed)
    d = directions.shape[1]
    out = []
    for _ in range(n):
        identity = 5.0 * torch.randn(d, generator=g)
        motion = torch.randn(t, directions.shape[0], generator=g) @ directions  # [T, D]
        first = 9.0 * torch.randn(d, generator=g)  # the image latent 0 looks like nothing else
        z = torch.cat([first[None], (identity + motion)[1:]])
        out.append(z.reshape(t, 2, 3, 3).permute(1, 0, 2, 3))
    return out


def test_motion_basis_finds_the_within_clip_directions_not_the_identities():
    """The basis spans how latents move within a clip; the large between-clip (identity) differences and each
    clip's first latent do not enter it."""
    g = torch.Generator().manual_seed(1)
    dirs = torch.linalg.qr(torch.randn(18, 2, generator=g))[0].T  # [2, 18] orthonormal
    basis, share = motion_basis(_clips(dirs), 2)
    assert basis.shape == (2, 18)
    torch.testing.assert_close(basis @ basis.T, torch.eye(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(dirs @ basis.T @ basis, dirs, atol=1e-4, rtol=0)  # same plane
    assert share == pytest.approx(1.0, abs=1e-6)
    _, one = motion_basis(_clips(dirs), 1)
    assert 0.2 < one < 0.9  # one of two random motions: part of the variance


def test_motion_basis_refuses_what_it_cannot_estimate():
    dirs = torch.eye(18)[:1]
    with pytest.raises(ValueError, match="motion dims"):
        motion_basis(_clips(dirs), 19)
    with pytest.raises(ValueError, match="3 or more latent frames"):
        motion_basis(_clips(dirs, t=2), 1)
