import dataclasses

import pytest
import torch

from engine.config import EngineConfig
from engine.nn.conv import StreamState
from engine.vae.model import CausalVAE, kl_loss
from tests.conftest import randomize


@pytest.fixture
def vae():
    torch.manual_seed(0)
    return randomize(CausalVAE(EngineConfig.tiny().vae)).eval()


def test_shapes_4k_plus_1_frames(vae):
    x = torch.randn(2, 3, 13, 32, 32)
    mean, logvar = vae.encode(x)
    assert mean.shape == (2, 8, 4, 2, 2) and logvar.shape == mean.shape
    assert vae.decode(mean, vae.encode_refs(torch.randn(2, 1, 3, 32, 32))[0]).shape == x.shape


@torch.no_grad()
def test_encoder_is_causal(vae):
    """Encoding the first 4k+1 frames equals the prefix of encoding the whole clip (DESIGN §6)."""
    x = torch.randn(1, 3, 17, 32, 32)
    full, _ = vae.encode(x)
    for k in (0, 1, 3):
        prefix, _ = vae.encode(x[:, :, : 4 * k + 1])
        torch.testing.assert_close(prefix, full[:, :, : k + 1], atol=1e-5, rtol=1e-5)
    changed = x.clone()
    changed[:, :, 10:] += 1.0  # the future must not leak into earlier latents
    torch.testing.assert_close(vae.encode(changed)[0][:, :, :3], full[:, :, :3], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_short_context_encoding_sees_at_most_five_frames(vae):
    """The generator's training latents: latent j >= 1 from frames 4j-4..4j only (batched windows)."""
    x = torch.randn(2, 3, 17, 32, 32)
    short = vae.encode_short_context(x, chunk=3)  # chunks smaller than the 4 windows x 2 clips
    assert short.shape == vae.encode(x)[0].shape
    torch.testing.assert_close(short[:, :, :2], vae.encode(x[:, :, :5])[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(short[:, :, 3], vae.encode(x[:, :, 8:13])[0][:, :, 1], atol=1e-5, rtol=1e-5)
    changed = x.clone()
    changed[:, :, :8] += 1.0  # frames before latent 3's window must not reach it
    torch.testing.assert_close(vae.encode_short_context(changed)[:, :, 3:], short[:, :, 3:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(vae.encode(changed)[0][:, :, 3], vae.encode(x)[0][:, :, 3])  # the causal one does


@torch.no_grad()
@pytest.mark.parametrize("chunks", [[1, 1, 1, 1, 1], [1, 2, 2], [3, 2]])
def test_streaming_decode_equals_full_decode(vae, chunks):
    z = torch.randn(1, 8, sum(chunks), 2, 2)
    refs, _ = vae.encode_refs(torch.randn(1, 2, 3, 32, 32))
    full = vae.decode(z, refs)
    state, parts, start = StreamState(), [], 0
    for n in chunks:
        parts.append(vae.decode(z[:, :, start : start + n], refs, state))
        start += n
    assert parts[0].shape[2] == 4 * chunks[0] - 3
    torch.testing.assert_close(torch.cat(parts, dim=2), full, atol=1e-5, rtol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("n_refs", [0, 1, 3, 8])
def test_any_reference_count(vae, n_refs):
    tokens, lat = vae.encode_refs(torch.randn(1, n_refs, 3, 32, 32))
    assert tokens.coarse.shape == (1, n_refs * 2 * 2, 16) and lat.shape == (1, n_refs, 8, 2, 2)
    assert tokens.fine.shape == (1, n_refs * 4 * 4, 16)  # tiny: 1/8 of 32 px, e1_widths[-1] wide
    out = vae.decode(torch.randn(1, 8, 2, 2, 2), tokens)
    assert out.shape == (1, 3, 5, 32, 32) and torch.isfinite(out).all()


@torch.no_grad()
def test_reference_latents_are_the_encoders_latents_of_the_images(vae):
    """encode_refs shares one E1 pass between the tokens and the latents; the latents are still encode()'s."""
    refs = torch.randn(2, 3, 3, 32, 32)
    _, lat = vae.encode_refs(refs)  # [B,R,C,h,w]
    direct = vae.encode(refs.flatten(0, 1).unsqueeze(2))[0][:, :, 0]  # [BR,C,h,w]
    torch.testing.assert_close(lat.flatten(0, 1), direct, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_references_change_the_decode(vae):
    z = torch.randn(1, 8, 2, 2, 2)
    a = vae.decode(z, vae.encode_refs(torch.randn(1, 1, 3, 32, 32))[0])
    b = vae.decode(z, vae.encode_refs(torch.randn(1, 1, 3, 32, 32))[0])
    assert (a - b).abs().mean() > 1e-4


@torch.no_grad()
def test_fine_fusion_starts_as_the_decoder_without_it():
    """Adding the fine reference fusion to a trained VAE (train vae --fine-refs N --init V) keeps its decode
    until training moves the new blocks: they start as zero residuals."""
    torch.manual_seed(0)
    cfg = EngineConfig.tiny().vae
    old = randomize(CausalVAE(dataclasses.replace(cfg, fine_ref_blocks=0))).eval()
    new = CausalVAE(cfg).eval()
    missing = new.load_state_dict(old.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith(("dref_fine.", "fine_")) for k in missing)
    z, refs = torch.randn(1, 8, 3, 2, 2), torch.randn(1, 2, 3, 32, 32)
    torch.testing.assert_close(new.decode(z, new.ref_features(refs)), old.decode(z, old.ref_features(refs)))


@torch.no_grad()
def test_fine_fusion_reads_the_references_fine_features(vae):
    """The 1/8-scale tokens reach the picture: swapping only them for another image's changes the decode."""
    z = torch.randn(1, 8, 2, 2, 2)
    a, b = (vae.ref_features(torch.randn(1, 1, 3, 32, 32)) for _ in range(2))
    mixed = a._replace(fine=b.fine)
    assert (vae.decode(z, mixed) - vae.decode(z, a)).abs().mean() > 1e-4


def test_kl_is_zero_for_standard_normal():
    assert kl_loss(torch.zeros(4), torch.zeros(4)).item() == 0.0
    assert kl_loss(torch.ones(4), torch.zeros(4)).item() == pytest.approx(0.5)


def test_paper_vae_compression_on_meta():
    """17 frames of 512² -> 5x8x8x64 latent, 768x compression (paper)."""
    cfg = EngineConfig.paper().vae
    assert cfg.compression == 768
    with torch.device("meta"):
        vae = CausalVAE(cfg)
        mean, _ = vae.encode(torch.empty(1, 3, 17, 512, 512))
    assert tuple(mean.shape) == (1, 64, 5, 8, 8)


def test_bad_channel_arithmetic_fails_at_build():
    cfg = dataclasses.replace(EngineConfig.tiny().vae, e1_widths=(8, 24, 8, 16))
    with pytest.raises(ValueError):
        CausalVAE(cfg)


@torch.no_grad()
def test_preallocated_state_is_ignored_until_the_first_chunk(vae):
    """The GPU fast path preallocates the decoder state (steady shapes) before the stream starts; the
    clip's first chunk must still pad by repeating its first frame, as a fresh state does."""
    z = torch.randn(1, 8, 3, 2, 2)
    refs, _ = vae.encode_refs(torch.randn(1, 1, 3, 32, 32))
    fresh = StreamState()
    expected = [vae.decode(z[:, :, i:i + 1], refs, fresh) for i in range(3)]
    pre = StreamState({k: torch.full_like(v, 7.0) for k, v in fresh.frames.items()})
    held = dict(pre.frames)
    got = [vae.decode(z[:, :, i:i + 1], refs, pre) for i in range(3)]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    assert all(pre.frames[k] is held[k] for k in held)  # updated in place (graph-safe)
