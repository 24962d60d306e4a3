"""CUDA-graph fast path for steady-state streaming (issue 5; DESIGN.md §3).

Once the KV window is full every shape is static, so a block's whole DiT work (all denoising steps with
CFG, the Euler updates and the commit) is captured as one graph, and so is the VAE decode of a block.
Each replay then costs one launch instead of thousands of small kernels driven from Python. With
`fuse` (backend "compile") the captured functions are first compiled by torch.compile (inductor), which
fuses the norms, RoPE, modulations and activations between the matmuls and convolutions into a few
generated kernels; the graph then replays those. Inputs
(noise, audio features, RoPE tables) are copied into static buffers before a replay; the KV cache and
the decoder's causal state are updated in place, so replays continue the stream exactly as eager
calls would.
"""
from __future__ import annotations

import torch

from engine.dit.cache import KVCache
from engine.dit.model import DiT
from engine.flow.sampler import cfg_combine, euler_step
from engine.nn.conv import StreamState
from engine.runtime.hold import IdentityHold
from engine.vae.model import CausalVAE


def fused(module: torch.nn.Module, name: str):
    """`module.name` compiled for static shapes, made once per module (later sessions reuse it)."""
    attr = f"_fused_{name}"
    if attr not in module.__dict__:
        module.__dict__[attr] = torch.compile(getattr(module, name), dynamic=False)
    return module.__dict__[attr]


def sample_block(dit: DiT, cache: KVCache, x: torch.Tensor, audio: torch.Tensor, times: list[torch.Tensor],
                 schedule: list[float], cfg: float | None, t_hist: torch.Tensor, hist_noise: torch.Tensor | None,
                 rope=None, fwd=None, hold: IdentityHold | None = None, hold_history: bool = False) -> torch.Tensor:
    """Denoise one block, apply the identity hold and commit the block (without advancing the cache cursors).

    x [1,C,bf,h,w] noise; audio [B,bf,A] (B = 2 with guidance: cond, uncond); times[i] [B] = schedule[i];
    cfg None = no guidance. Returns x0 [1,C,bf,h,w], held if `hold`; the history committed is the held x0
    with `hold_history`, else the raw one. Eager and captured paths both run this function; `fwd` replaces
    `dit.block_forward` (the compiled one, inside a captured graph).
    """
    b = audio.shape[0]
    fwd = dit.block_forward if fwd is None else fwd
    for i, (t, t_next) in enumerate(zip(schedule[:-1], schedule[1:])):
        v = fwd(cache, x.expand(b, -1, -1, -1, -1), times[i], audio, False, rope)  # read-only: denoise
        v = cfg_combine(v[:1], v[1:], cfg) if cfg is not None else v
        x = euler_step(x, v, t, t_next)
    held = x if hold is None else hold(x)
    src = held if hold_history else x
    th = t_hist[:1].view(1, 1, 1, 1, 1)
    hist = src if hist_noise is None else (1 - th) * src + th * hist_noise
    fwd(cache, hist.expand(b, -1, -1, -1, -1), t_hist, audio, True, rope)  # the commit; cursors advance later
    return held


def graph_key(schedule: list[float], cfg: float | None, history_noise: float, hold: IdentityHold | None,
              hold_history: bool) -> tuple:
    """What a captured block graph is fixed to; the session re-captures when its sampler's key differs."""
    return tuple(schedule), cfg, history_noise, hold is not None, hold_history


class BlockGraph:
    """`sample_block` captured for one session's steady state (fixed steps, CFG and history noise), or
    with `masked` for the blocks that fill the KV window."""

    def __init__(self, dit: DiT, cache: KVCache, noise: torch.Tensor, audio: torch.Tensor,
                 rope: tuple[torch.Tensor, torch.Tensor], schedule: list[float], cfg: float | None,
                 history_noise: float, fuse: bool = False, masked: bool = False, hold: IdentityHold | None = None,
                 hold_history: bool = False):
        """masked: the fill-phase graph, for every fill level of the KV window (KVCache.masked). hold: the
        session's identity hold, replayed in place (its strength and time constant are device scalars)."""
        self.key = graph_key(schedule, cfg, history_noise, hold, hold_history)
        fwd = fused(dit, "block_forward") if fuse else None
        dev, b = noise.device, audio.shape[0]
        self.noise, self.audio = noise.clone(), audio.clone()
        self.rope = tuple(r.clone() for r in rope)
        self.hist_noise = noise.clone() if history_noise > 0 else None
        self.times = [torch.full((b,), t, device=dev, dtype=noise.dtype) for t in schedule]
        self.t_hist = torch.full((b,), history_noise, device=dev, dtype=noise.dtype)

        def body(c: KVCache) -> torch.Tensor:
            c.masked = masked  # read while tracing only: the replay follows the mask on the device
            try:
                return sample_block(dit, c, self.noise, self.audio, self.times, schedule, cfg, self.t_hist,
                                    self.hist_noise, self.rope, fwd, hold, hold_history)
            finally:
                c.masked = False

        if hold is None:
            self.graph, self.out = _capture(body, cache, cache.clone())
        else:
            with hold.preserved():  # the capture's warm-up run must not advance the running mean
                self.graph, self.out = _capture(body, cache, cache.clone())

    def run(self, noise: torch.Tensor, audio: torch.Tensor, rope, hist_noise: torch.Tensor | None) -> torch.Tensor:
        self.noise.copy_(noise)
        self.audio.copy_(audio)
        for dst, src in zip(self.rope, rope):
            dst.copy_(src)
        if self.hist_noise is not None and hist_noise is not None:
            self.hist_noise.copy_(hist_noise)
        self.graph.replay()
        return self.out.clone()


class DecodeGraph:
    """`vae.decode` of one steady-state block (after the clip's first block) captured as a graph."""

    def __init__(self, vae: CausalVAE, z: torch.Tensor, ref_tokens: torch.Tensor, state: StreamState,
                 fuse: bool = False):
        self.shape = tuple(z.shape)
        self.z = z.clone()
        scale = vae.latent_scale
        decode = fused(vae, "decode") if fuse else vae.decode

        def body(s: StreamState) -> torch.Tensor:
            return decode(self.z / scale, ref_tokens, s)

        warm = StreamState({k: v.clone() for k, v in state.frames.items()}, state.started)
        self.graph, self.out = _capture(body, state, warm)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        self.z.copy_(z)
        self.graph.replay()
        return self.out.clone()


def _capture(body, real, scratch) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """Warm up on a side stream against a scratch copy of the state (the warm-up must not touch the real
    cache), then capture against the real one. Capture records work without running it."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        body(scratch)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        out = body(real)
    return graph, out
