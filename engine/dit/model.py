"""Block-causal rectified-flow transformer with a KV cache (paper §Generator; DESIGN.md §1, §6).

Tokens: each latent frame [C,h,w] is patchified into g*g tokens (g = h/patch), concatenated on channels with
that latent frame's audio feature, projected to D. Reference latents become always-visible tokens whose
keys drop the temporal RoPE dims, so a reference looks the same from any stream position.

Two ways to run, equal by construction (tested):
- `forward_train`: teacher forcing. The sequence holds clean history blocks (noised to a level t_h) and noisy
  blocks; noisy block i sees references, history blocks i-P..i-1 and itself; history block i sees
  references and history blocks i-P..i (P = past_blocks).
- streaming: `prefill_refs` once, then per block `denoise` (reads the cache) and one `commit` (writes it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import EngineConfig
from engine.dit.blocks import DiTBlock, TimestepEmbed
from engine.dit.cache import KVCache
from engine.nn.attention import attend
from engine.nn.norm import RMSNorm
from engine.nn.rope import grid_positions, rope_tables


class DiT(nn.Module):
    def __init__(self, cfg: EngineConfig):
        super().__init__()
        self.cfg, d = cfg, cfg.dit.width
        c, p, a = cfg.vae.latent_channels, cfg.dit.patch, cfg.audio.feature_dim
        self.grid = cfg.vae.latent_size // p
        self.x_in = nn.Linear(c * p * p + a, d)
        self.ref_in = nn.Linear(c * p * p, d)
        self.ref_marker = nn.Parameter(torch.zeros(d))
        self.first_marker = nn.Parameter(torch.zeros(d))  # latent frame 0 is a single video frame
        self.null_audio = nn.Parameter(torch.zeros(a))
        self.null_ref = nn.Parameter(torch.randn(self.grid * self.grid, d) * 0.02)
        self.t_embed = TimestepEmbed(d)
        self.blocks = nn.ModuleList([DiTBlock(d, cfg.dit.heads, cfg.dit.mlp_ratio) for _ in range(cfg.dit.depth)])
        self.final_norm = RMSNorm(d, dim=-1, affine=False)
        self.final_ada = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, c * p * p)
        for lin in (self.final_ada, self.out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        if cfg.dit.driver:  # the face this generator animates best (DiTConfig.driver), RGB at the VAE's resolution
            res = cfg.vae.resolution
            self.register_buffer("driver", torch.zeros(res, res, 3, dtype=torch.uint8))

    @property
    def block_tokens(self) -> int:
        return self.cfg.dit.block_frames * self.grid * self.grid

    # --- tokens ---------------------------------------------------------------------------
    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """[B,C,T,h,w] -> [B,T*g*g,C*p*p] (t-major, then y, x)."""
        p = self.cfg.dit.patch
        b, c, t, h, w = x.shape
        x = x.view(b, c, t, h // p, p, w // p, p).permute(0, 2, 3, 5, 1, 4, 6)
        return x.reshape(b, t * (h // p) * (w // p), c * p * p)

    def unpatchify(self, tokens: torch.Tensor, t: int) -> torch.Tensor:
        """[B,T*g*g,C*p*p] -> [B,C,T,h,w]."""
        p, g = self.cfg.dit.patch, self.grid
        b = tokens.shape[0]
        x = tokens.view(b, t, g, g, -1, p, p).permute(0, 4, 1, 2, 5, 3, 6)
        return x.reshape(b, -1, t, g * p, g * p)

    def embed(self, x: torch.Tensor, audio: torch.Tensor, first: bool | torch.Tensor) -> torch.Tensor:
        """Latents [B,C,T,h,w] + audio [B,T,A] -> [B,T*g*g,D]. `first` (bool or [B] bool): the sequence
        starts at the clip's single-frame latent 0, which gets a learned marker."""
        b, _, t = x.shape[:3]
        n = self.grid * self.grid
        aud = audio.to(x.dtype)[:, :, None, :].expand(-1, -1, n, -1).reshape(b, t * n, -1)  # [B,T*g*g,A]
        tokens = self.x_in(torch.cat([self.patchify(x), aud], dim=-1))
        if first is False:
            return tokens
        mark = self.first_marker if first is True else first.to(tokens.dtype)[:, None, None] * self.first_marker
        return torch.cat([tokens[:, :n] + mark, tokens[:, n:]], dim=1)

    def ref_tokens(self, ref_latents: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """[B,R,C,h,w] (R may be 0) -> [B,max(R,1)*g*g,D]; `drop` [B] bool swaps in the null reference."""
        b, r = ref_latents.shape[:2]
        null = self.null_ref.expand(b, max(r, 1), -1, -1).reshape(b, -1, self.null_ref.shape[-1])
        if r == 0:
            return null
        lat = ref_latents.flatten(0, 1).unsqueeze(2)  # [BR,C,1,h,w]
        tok = self.ref_in(self.patchify(lat)).view(b, -1, null.shape[-1]) + self.ref_marker
        if drop is not None:
            tok = torch.where(drop[:, None, None], null.to(tok.dtype), tok)
        return tok

    def rope(self, t0: int, t: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        dit = self.cfg.dit
        return rope_tables(grid_positions(t, self.grid, self.grid, t0, device), dit.rope_split, dit.head_dim)

    def _cond(self, t: torch.Tensor) -> torch.Tensor:
        """Per-group timesteps [B,G] -> conditioning [B,G,D]."""
        return self.t_embed(t)

    def _head(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x [B,G,L,D], cond [B,G,D] -> [B,G*L,C*p*p]."""
        shift, scale = self.final_ada(F.silu(cond)).unsqueeze(2).chunk(2, dim=-1)
        y = self.out(self.final_norm(x) * (1 + scale) + shift)
        return y.flatten(1, 2)

    # --- references: run once, keys/values per layer -------------------------------------
    def ref_kv(self, ref_tok: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Reference tokens [B,Nr,D] through every layer (refs see only refs, clean t=0) -> per layer
        (k, v) [B,heads,Nr,hd]; k has its temporal RoPE dims zeroed (position-free in time)."""
        b, nr, d = ref_tok.shape
        n = self.grid * self.grid
        rope = rope_tables(grid_positions(1, self.grid, self.grid, 0, ref_tok.device).repeat(nr // n, 1),
                           self.cfg.dit.rope_split, self.cfg.dit.head_dim)
        cond = self._cond(torch.zeros(b, 1, device=ref_tok.device))
        kvs: list[tuple[torch.Tensor, torch.Tensor]] = []
        t_dims = self.cfg.dit.rope_split[0]

        def attn(q, k, v):
            k0 = k.clone()
            k0[..., :t_dims] = 0
            kvs.append((k0, v))
            return attend(q, k0, v)

        x = ref_tok.unsqueeze(1)  # [B,1,Nr,D]
        for block in self.blocks:
            x = block(x, cond, rope, attn)
        return kvs

    # --- teacher-forced training forward --------------------------------------------------
    def forward_train(self, hist: torch.Tensor, t_hist: torch.Tensor, noisy: torch.Tensor, t_noisy: torch.Tensor,
                      audio: torch.Tensor, ref_tok: torch.Tensor, first: bool | torch.Tensor = True) -> torch.Tensor:
        """hist/noisy [B,C,T,h,w] (T = nb*block_frames), t_hist/t_noisy [B,nb], audio [B,T,A], ref_tok
        [B,Nr,D], `first` as in `embed` -> velocity for the noisy blocks [B,C,T,h,w]. RoPE is relative, so
        positions start at 0 whatever the window's place in the clip."""
        bf, nb = self.cfg.dit.block_frames, t_hist.shape[1]
        t = hist.shape[2]
        b, L = hist.shape[0], self.block_tokens
        x = torch.cat([self.embed(hist, audio, first), self.embed(noisy, audio, first)], dim=1)  # [B,2*nb*L,D]
        x = x.view(b, 2 * nb, L, -1)
        cond = self._cond(torch.cat([t_hist, t_noisy], dim=1))  # [B,2nb,D]
        rope1 = self.rope(0, t, hist.device)
        rope = tuple(torch.cat([r, r]) for r in rope1)
        ref = self.ref_kv(ref_tok)
        mask = self.train_mask(nb, L, ref_tok.shape[1], hist.device)
        for i, block in enumerate(self.blocks):
            rk, rv = ref[i]
            x = block(x, cond, rope, lambda q, k, v, rk=rk, rv=rv: attend(
                q, torch.cat([rk, k], dim=2), torch.cat([rv, v], dim=2), mask))
        y = self._head(x[:, nb:], cond[:, nb:])  # [B,nb*L,C*p*p]
        return self.unpatchify(y, nb * bf)

    def train_mask(self, nb: int, L: int, n_ref: int, device: torch.device) -> torch.Tensor:
        """Visibility [2*nb*L, n_ref + 2*nb*L] (True = visible) of the teacher-forcing sequence."""
        p = self.cfg.dit.past_blocks
        i = torch.arange(nb, device=device)[:, None]
        j = torch.arange(nb, device=device)[None, :]
        hist_hist = (j <= i) & (j >= i - p)
        noisy_hist = (j < i) & (j >= i - p)
        eye = i == j
        none = torch.zeros_like(eye)
        blocks = torch.cat([torch.cat([hist_hist, none], 1), torch.cat([noisy_hist, eye], 1)], 0)  # [2nb,2nb]
        tok = blocks.repeat_interleave(L, 0).repeat_interleave(L, 1)
        return torch.cat([torch.ones(2 * nb * L, n_ref, dtype=torch.bool, device=device), tok], dim=1)

    # --- streaming ------------------------------------------------------------------------
    def new_cache(self, batch: int, n_ref: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        dit = self.cfg.dit
        return KVCache.allocate(dit.depth, batch, dit.heads, dit.head_dim, n_ref, self.block_tokens,
                                dit.past_blocks, device, dtype)

    def prefill_refs(self, cache: KVCache, ref_tok: torch.Tensor) -> None:
        for i, (k, v) in enumerate(self.ref_kv(ref_tok)):
            cache.write_refs(i, k, v)

    def block_forward(self, cache: KVCache, x: torch.Tensor, t: torch.Tensor, audio: torch.Tensor,
                      write: bool, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """One pass over the current block: x [B,C,bf,h,w] at noise level t [B] -> velocity [B,C,bf,h,w].
        Attends to the cache; with `write`, stores the block's keys/values in its ring slot (the commit)."""
        bf = self.cfg.dit.block_frames
        t0 = cache.next_block * bf
        b = x.shape[0]
        h = self.embed(x, audio, t0 == 0).unsqueeze(1)  # [B,1,L,D]
        cond = self._cond(t.view(b, 1))
        rope = self.rope(t0, bf, x.device) if rope is None else rope
        for i, block in enumerate(self.blocks):
            def attn(q, k, v, i=i):
                ck, cv = cache.context(i)
                out = attend(q, torch.cat([ck, k], dim=2), torch.cat([cv, v], dim=2), cache.context_mask())
                if write:  # after attending: the slot may hold the oldest block, still visible here
                    cache.write_block(i, k, v)
                return out
            h = block(h, cond, rope, attn)
        return self.unpatchify(self._head(h, cond), bf)

    def denoise(self, cache: KVCache, x: torch.Tensor, t: torch.Tensor, audio: torch.Tensor,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Velocity for the current block. x [B,C,bf,h,w], t [B], audio [B,bf,A]. Reads the cache only.
        `rope` (this block's tables) may be passed in so a captured graph reads them from static buffers."""
        return self.block_forward(cache, x, t, audio, write=False, rope=rope)

    def commit(self, cache: KVCache, x0: torch.Tensor, audio: torch.Tensor, t: torch.Tensor,
               rope: tuple[torch.Tensor, torch.Tensor] | None = None, advance: bool = True) -> None:
        """Write the finished block (at noise level t [B]) into the cache and advance: one per block."""
        self.block_forward(cache, x0, t, audio, write=True, rope=rope)
        if advance:
            cache.advance()
