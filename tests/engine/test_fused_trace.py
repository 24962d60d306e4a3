"""The functions the "compile" backend hands to torch.compile trace as single graphs and stay exact.

On the GPU they are compiled by inductor and captured in CUDA graphs; here (CPU, CI) dynamo traces them
with `fullgraph=True` (a graph break fails the test) through the `aot_eager` backend, which replays the
traced graph with the same kernels, so the steady-state streams must match eager to float rounding.
"""
import copy

import torch

from engine.flow.sampler import schedule
from engine.nn.conv import StreamState
from engine.runtime.graphs import sample_block


def _trace(fn):
    torch._dynamo.reset()
    return torch.compile(fn, backend="aot_eager", fullgraph=True, dynamic=False)


def _steady_session(engine, portrait, speech):
    s = engine.open_session([portrait], seed=0)
    s.push_audio(speech, 16000)
    s.step()  # 2 s of audio: far more blocks than the tiny window, so the KV cache is full and rolled
    assert s._cache.full and s._dec_state.started
    return s


@torch.no_grad()
def test_traced_block_forward_matches_eager_over_blocks(tiny_engine, portrait, speech):
    s = _steady_session(tiny_engine, portrait, speech)
    dit, cfg = tiny_engine.model.dit, tiny_engine.cfg
    sched = schedule(cfg.sampler.steps, cfg.sampler.shift)
    c, bf, g = cfg.vae.latent_channels, cfg.dit.block_frames, cfg.vae.latent_size
    audio = torch.randn(2, bf, cfg.audio.feature_dim)
    times = [torch.full((2,), t) for t in sched]
    t_hist = torch.zeros(2)
    caches = [s._cache.clone(), s._cache.clone()]
    for blk in range(3):  # several blocks: the commit writes roll through the ring slots
        fwd = _trace(dit.block_forward)  # fresh per block: a captured graph is traced at one cursor
        x = torch.randn(1, c, bf, g, g)
        rope = dit.rope(caches[0].next_block * bf, bf, x.device)
        outs = [sample_block(dit, cache, x, audio, times, sched, 2.0, t_hist, None, rope, f)
                for cache, f in zip(caches, (None, fwd))]
        torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5)
        for layer in range(cfg.dit.depth):
            torch.testing.assert_close(caches[1].k[layer], caches[0].k[layer], rtol=1e-4, atol=1e-5)
        for cache in caches:
            cache.advance()
    assert not torch.equal(caches[0].k[0], s._cache.k[0])  # the commits did write the cache


@torch.no_grad()
def test_traced_decode_matches_eager_and_carries_state(tiny_engine, portrait, speech):
    s = _steady_session(tiny_engine, portrait, speech)
    vae, cfg = tiny_engine.model.vae, tiny_engine.cfg
    decode = _trace(vae.decode)
    states = [copy.deepcopy(s._dec_state), copy.deepcopy(s._dec_state)]
    shape = (1, cfg.vae.latent_channels, cfg.dit.block_frames, cfg.vae.latent_size, cfg.vae.latent_size)
    for _ in range(3):  # consecutive chunks: the in-place state updates must reach the caller's tensors
        z = torch.randn(shape)
        outs = [f(z, s._ref_e1, st) for f, st in zip((vae.decode, decode), states)]
        torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5)
        for key, held in states[0].frames.items():
            torch.testing.assert_close(states[1].frames[key], held, rtol=1e-4, atol=1e-5)
    assert isinstance(states[1], StreamState) and states[1].started


@torch.no_grad()
def test_a_live_recapture_does_not_recompile(tiny_engine, portrait, speech):
    """A steps/CFG change mid-stream re-captures the block graph. Captured under the session's steady
    cursors, the traced Python sees the same cursor ints as at open, so torch.compile's guards hold and
    nothing is recompiled (on a GPU a recompile stalls the stream for tens of seconds). Without the pin,
    the cursor ints differ and it would recompile."""
    s = _steady_session(tiny_engine, portrait, speech)
    dit, cfg = tiny_engine.model.dit, tiny_engine.cfg
    compiled = []
    def backend(gm, example_inputs):
        compiled.append(gm)
        return gm.forward
    torch._dynamo.reset()
    fwd = torch.compile(dit.block_forward, backend=backend, fullgraph=True, dynamic=False)
    bf, c, g = cfg.dit.block_frames, cfg.vae.latent_channels, cfg.vae.latent_size
    sched = schedule(cfg.sampler.steps, cfg.sampler.shift)
    audio, t_hist = torch.randn(2, bf, cfg.audio.feature_dim), torch.zeros(2)
    def capture_like(cache, steps):  # what BlockGraph traces, at another schedule length
        times = [torch.full((2,), t) for t in schedule(steps, cfg.sampler.shift)]
        sample_block(dit, cache, torch.randn(1, c, bf, g, g), audio, times, schedule(steps, cfg.sampler.shift),
                     2.0, t_hist, None, dit.rope(bf, bf, audio.device), fwd)
    cache = s._cache
    with s._steady_cursors():
        capture_like(cache.clone(), len(sched) - 1)  # "at open"
    at_open = len(compiled)
    for _ in range(5):
        cache.advance()  # the stream moves on
    with s._steady_cursors():
        capture_like(cache.clone(), len(sched) + 1)  # live change of steps
    assert at_open >= 1 and len(compiled) == at_open
    capture_like(cache.clone(), len(sched))  # unpinned: other cursor ints, new guards
    assert len(compiled) > at_open
