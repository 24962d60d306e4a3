import dataclasses

import pytest
import torch

from engine.config import EngineConfig
from engine.dit.model import DiT
from tests.conftest import randomize


def make(block: int, window: int) -> DiT:
    cfg = EngineConfig.tiny()
    cfg = dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, block_frames=block, window_frames=window))
    torch.manual_seed(0)
    return randomize(DiT(cfg), std=0.1).double().eval()


@torch.no_grad()
@pytest.mark.parametrize("block,window,n_blocks", [(1, 4, 7), (4, 12, 5), (1, 4, 2)])
def test_cached_streaming_equals_full_block_causal_forward(block, window, n_blocks):
    """DESIGN §6: full forward under the block-causal mask == block-by-block with the KV cache, across
    window roll-over (n_blocks > window/block)."""
    m = make(block, window)
    c, s, a = 8, 2, 16
    t = n_blocks * block
    g = torch.Generator().manual_seed(1)
    hist, noisy = (torch.randn(1, c, t, s, s, generator=g, dtype=torch.double) for _ in range(2))
    t_hist = torch.rand(1, n_blocks, generator=g, dtype=torch.double) * 0.7
    t_noisy = torch.rand(1, n_blocks, generator=g, dtype=torch.double)
    audio = torch.randn(1, t, a, generator=g, dtype=torch.double)
    ref = m.ref_tokens(torch.randn(1, 2, c, s, s, generator=g, dtype=torch.double))
    full = m.forward_train(hist, t_hist, noisy, t_noisy, audio, ref)

    cache = m.new_cache(1, ref.shape[1], torch.device("cpu"), torch.double)
    m.prefill_refs(cache, ref)
    outs = []
    for i in range(n_blocks):
        sl = slice(i * block, (i + 1) * block)
        outs.append(m.denoise(cache, noisy[:, :, sl], t_noisy[:, i], audio[:, sl]))
        m.commit(cache, hist[:, :, sl], audio[:, sl], t_hist[:, i])
    torch.testing.assert_close(torch.cat(outs, dim=2), full, atol=1e-10, rtol=1e-10)


def test_teacher_forcing_mask_matches_the_window():
    """Noisy block i sees refs, history blocks i-P..i-1 and itself; history block i sees i-P..i (P = 3)."""
    m = make(1, 4)
    nb, L, n_ref = 6, 4, 5
    mask = m.train_mask(nb, L, n_ref, torch.device("cpu"))
    assert mask.shape == (2 * nb * L, n_ref + 2 * nb * L) and mask[:, :n_ref].all()
    blocks = mask[::L, n_ref::L]  # [2nb, 2nb] block-level view
    hist_rows, noisy_rows = blocks[:nb], blocks[nb:]
    assert hist_rows[4, :nb].tolist() == [False, True, True, True, True, False]
    assert noisy_rows[4, :nb].tolist() == [False, True, True, True, False, False]
    assert noisy_rows[4, nb:].tolist() == [False, False, False, False, True, False]
    assert not hist_rows[:, nb:].any()  # history never sees noisy tokens


@torch.no_grad()
def test_kv_cache_memory_constant_over_1000_blocks():
    m = make(1, 4).float()
    cache = m.new_cache(2, m.grid ** 2, torch.device("cpu"), torch.float32)
    ids = [id(t) for t in cache.k]
    size = cache.nbytes()
    x = torch.zeros(2, 8, 1, 2, 2)
    audio, t = torch.zeros(2, 1, 16), torch.zeros(2)
    for _ in range(1000):
        m.commit(cache, x, audio, t)
    assert cache.nbytes() == size and [id(t) for t in cache.k] == ids
    assert cache.filled == 3 and cache.next_block == 1000


def test_paper_dit_has_about_one_billion_parameters():
    with torch.device("meta"):
        dit = DiT(EngineConfig.paper())
    n = sum(p.numel() for p in dit.parameters())
    assert 0.9e9 <= n <= 1.1e9


def test_null_reference_is_used_for_zero_or_dropped_refs():
    m = make(1, 4)
    refs = torch.randn(2, 3, 8, 2, 2, dtype=torch.double)
    tok = m.ref_tokens(refs, drop=torch.tensor([True, False]))
    null = m.ref_tokens(refs[:, :0])
    assert tok.shape == (2, 12, 32) and null.shape == (2, 4, 32)
    torch.testing.assert_close(tok[0, :4], null[0])
    assert not torch.allclose(tok[1, :4], null[1])


@torch.no_grad()
def test_masked_cache_gives_the_same_blocks_as_the_visible_slice_at_every_fill_level():
    """The fill-phase CUDA graph attends over the whole buffer with a device-side mask (KVCache.masked):
    every block, while the window fills and after it rolls over, must equal the sliced (eager) path."""
    m = make(1, 4)
    c, s, a = 8, 2, 16
    g = torch.Generator().manual_seed(2)
    ref = m.ref_tokens(torch.randn(1, 2, c, s, s, generator=g, dtype=torch.double))
    caches = [m.new_cache(1, ref.shape[1], torch.device("cpu"), torch.double) for _ in range(2)]
    for cache in caches:
        m.prefill_refs(cache, ref)
    for i in range(7):  # fill levels 0..3, then rolled over
        x, hist = (torch.randn(1, c, 1, s, s, generator=g, dtype=torch.double) for _ in range(2))
        audio, t = torch.randn(1, 1, a, generator=g, dtype=torch.double), torch.rand(1, dtype=torch.double)
        caches[1].masked = True
        outs = [m.denoise(cache, x, t, audio) for cache in caches]
        torch.testing.assert_close(outs[1], outs[0], atol=1e-12, rtol=1e-12)
        for cache in caches:
            m.commit(cache, hist, audio, t * 0.5)
        caches[1].masked = False
        torch.testing.assert_close(caches[1].k[0], caches[0].k[0], atol=1e-12, rtol=1e-12)
    assert caches[1].visible.all()  # full: every position visible
    caches[1].advance_to(0)  # a rewound stream (the warm-up) hides the ring again
    assert caches[1].visible[: ref.shape[1]].all() and not caches[1].visible[ref.shape[1]:-caches[1].block_tokens].any()
