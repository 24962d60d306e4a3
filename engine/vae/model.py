"""Reference-guided causal residual video VAE (paper §VAE; DESIGN.md §1).

video [B,3,F,H,W] in [-1,1], F = 4k+1  ->  E1 (1/16, time /4)  ->  E2  ->  latent [B,C,T,h,w], T = k+1
latent -> D1 (back to E1's grid) -> D_ref (per-frame self-attn + cross-attn to references' E1 features)
       -> D2 (space and time up) -> video. References are single images through E1, one at a time.
Optionally (VAEConfig.fine_ref_blocks) a second fusion at 1/8 after D2's first stage, on the references'
E1 features of that scale.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from engine.config import VAEConfig
from engine.nn.conv import CausalConv3d, StreamState, name_stream_modules
from engine.nn.norm import RMSNorm
from engine.nn.rope import grid_positions, rope_tables
from engine.vae.blocks import RefFusionBlock, Stage, down_stage, up_stage


class RefTokens(NamedTuple):
    """The references as the decoder sees them: E1 tokens at 1/16 [B,R*g*g,D] for D_ref, and at 1/8
    [B,R*(2g)^2,W] for the fine fusion ([B,0,W] without it)."""

    coarse: torch.Tensor
    fine: torch.Tensor


class CausalVAE(nn.Module):
    FINE_PREFIXES = ("dref_fine.", "fine_")  # parameter names of the fine reference fusion

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        tk, widths, d = cfg.time_kernel, cfg.e1_widths, cfg.e1_out
        outs = list(widths[1:]) + [d]
        self.e1_in = CausalConv3d(cfg.image_channels, widths[0], 3, tk)
        self.e1 = Stage([down_stage(widths[s], outs[s], 2, s in cfg.e1_time_down, tk)
                         for s in range(len(widths))])
        self.e1_norm = RMSNorm(d)
        self.e2 = Stage([down_stage(d, d, cfg.e2_blocks, False, tk) for _ in range(cfg.e2_downs)])
        self.e2_out = CausalConv3d(d, 2 * cfg.latent_channels, 3, tk)
        self.d1_in = CausalConv3d(cfg.latent_channels, d, 3, tk)
        self.d1 = Stage([up_stage(d, d, cfg.e2_blocks, False, tk) for _ in range(cfg.e2_downs)])
        self.ref_null = nn.Parameter(torch.zeros(1, 1, d))  # key for "no reference": attention never empty
        self.dref = nn.ModuleList([RefFusionBlock(d, cfg.dref_heads) for _ in range(cfg.dref_blocks)])
        if cfg.fine_ref_blocks:  # zero-initialised residual blocks: a decoder without them is unchanged
            self.fine_ref_norm = RMSNorm(widths[-1], dim=-1)  # on the context, null token included: always
            # used, so every rank of a DDP run has its gradient whatever its reference count
            self.fine_null = nn.Parameter(torch.zeros(1, 1, widths[-1]))
            self.dref_fine = nn.ModuleList([RefFusionBlock(widths[-1], cfg.fine_ref_heads)
                                            for _ in range(cfg.fine_ref_blocks)])
        self.d2 = Stage([up_stage(outs[s], widths[s], 2, s in cfg.e1_time_down, tk)
                         for s in reversed(range(len(widths)))])
        self.d2_norm = RMSNorm(widths[0])
        self.d2_out = CausalConv3d(widths[0], cfg.image_channels, 3, tk)
        # Scalar that maps posterior means to ~unit variance for the generator; set by VAE training.
        self.register_buffer("latent_scale", torch.ones(()))
        if cfg.motion_dims:  # orthonormal rows [motion_dims, C*h*w], set at release (VAEConfig.motion_dims)
            self.register_buffer("motion_basis", torch.zeros(cfg.motion_dims,
                                                             cfg.latent_channels * cfg.latent_size**2))
        name_stream_modules(self)

    # --- encoder ------------------------------------------------------------------------
    def features(self, video: torch.Tensor) -> torch.Tensor:
        """E1: [B,3,F,H,W] -> [B,D,T,H/16,W/16]."""
        return self.e1_norm(self.e1(self.e1_in(video)))

    def encode(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B,3,F,H,W] -> (mean, logvar), each [B,C,T,h,w]."""
        return self._posterior(self.features(video))

    def _posterior(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E2 on E1 features [B,D,T,g,g] -> (mean, logvar), each [B,C,T,h,w]."""
        stats = self.e2_out(torch.nn.functional.silu(self.e2(feats)))
        mean, logvar = stats.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode_short_context(self, video: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """Posterior means with a bounded encoder context: latent 0 from frame 0 alone, latent j >= 1 from
        frames 4j-4 .. 4j (the 5-frame window it was trained on) -> [B,C,T,h,w] for video [B,3,4k+1,H,W].

        Measured on model v0.2/v0.3's VAE (trained on clips of 5-7 frames): encoding a whole 3 s clip in
        one causal call drifts (relative RMSE 0.8 against these latents from the 4th latent on) and decodes
        into blotches after ~1 s, while these latents decode at a steady ~25 dB through the same streaming
        decoder. The generator learns whatever latents it is given, so its training cache uses these."""
        b, _, f, _, _ = video.shape
        first = self.encode(video[:, :, :1])[0]  # [B,C,1,h,w]
        starts = list(range(0, f - 4, 4))
        windows = torch.stack([video[:, :, s:s + 5] for s in starts], 1).flatten(0, 1)  # [B*W,3,5,H,W]
        rest = torch.cat([self.encode(w)[0][:, :, 1] for w in windows.split(chunk)])  # [B*W,C,h,w]
        rest = rest.view(b, len(starts), *rest.shape[1:]).transpose(1, 2)  # [B,C,W,h,w]
        return torch.cat([first, rest], 2)

    def _ref_e1(self, refs: torch.Tensor) -> tuple[RefTokens, torch.Tensor]:
        """Reference images [B,R,3,H,W], R >= 1 -> (RefTokens, E1 features [BR,D,1,g,g])."""
        b, r = refs.shape[:2]
        frames = refs.reshape(b * r, *refs.shape[2:]).unsqueeze(2)  # [BR,3,1,H,W]
        h = self.e1_in(frames)
        for stage in self.e1.layers[:-1]:
            h = stage(h)  # [BR,W,1,2g,2g] after the last but one stage
        coarse = self.e1_norm(self.e1.layers[-1](h))  # [BR,D,1,g,g] = self.features(frames)

        def tokens(f: torch.Tensor) -> torch.Tensor:  # [BR,C,1,s,s] -> [B,R*s*s,C]
            return f.flatten(2).transpose(1, 2).reshape(b, -1, f.shape[1])

        fine = tokens(h) if self.cfg.fine_ref_blocks else refs.new_zeros(b, 0, self.cfg.e1_widths[-1])
        return RefTokens(tokens(coarse), fine), coarse

    def _no_refs(self, refs: torch.Tensor) -> RefTokens:
        b = refs.shape[0]
        return RefTokens(refs.new_zeros(b, 0, self.cfg.e1_out), refs.new_zeros(b, 0, self.cfg.e1_widths[-1]))

    def ref_features(self, refs: torch.Tensor) -> RefTokens:
        """Reference images [B,R,3,H,W] (R may be 0) -> RefTokens for `decode`."""
        return self._ref_e1(refs)[0] if refs.shape[1] else self._no_refs(refs)

    def encode_refs(self, refs: torch.Tensor) -> tuple[RefTokens, torch.Tensor]:
        """Reference images [B,R,3,H,W] (R may be 0) -> (RefTokens, latent means [B,R,C,h,w])."""
        b, r = refs.shape[:2]
        if r == 0:
            c, s = self.cfg.latent_channels, self.cfg.latent_size
            return self._no_refs(refs), refs.new_zeros(b, 0, c, s, s)
        tokens, feats = self._ref_e1(refs)
        mean, _ = self._posterior(feats)  # [BR,C,1,h,w]: E1 runs once for both
        return tokens, mean[:, :, 0].reshape(b, r, *mean.shape[1:2], *mean.shape[3:])  # [B,R,C,h,w]

    # --- decoder ------------------------------------------------------------------------
    @staticmethod
    def _fuse_refs(x: torch.Tensor, ref_tokens: torch.Tensor, blocks: nn.ModuleList, null: torch.Tensor,
                   heads: int, ctx_norm: nn.Module | None = None) -> torch.Tensor:
        """Fusion blocks on [B,D,T,g,g] with reference tokens [B,M,D] (M = R*g*g, R may be 0) after a learned
        null token, the two normalised by ctx_norm if given."""
        b, d, t, g, _ = x.shape
        tokens = x.permute(0, 2, 3, 4, 1).reshape(b * t, g * g, d)  # [BT,N,D]
        hd = d // heads
        split = (0, hd // 2, hd // 2)
        pos = grid_positions(1, g, g, device=x.device)
        rope_x = rope_tables(pos, split, hd, torch.float32)
        r = ref_tokens.shape[1] // (g * g)
        ref_pos = torch.cat([torch.zeros(1, 3, dtype=pos.dtype, device=x.device), pos.repeat(r, 1)])
        rope_r = rope_tables(ref_pos, split, hd, torch.float32)
        ctx = torch.cat([null.to(ref_tokens.dtype).expand(b, -1, -1), ref_tokens], dim=1)  # [B,1+M,D]
        ctx = (ctx if ctx_norm is None else ctx_norm(ctx)).repeat_interleave(t, dim=0)  # [BT,1+M,D]
        for block in blocks:
            tokens = block(tokens, ctx, rope_x, rope_r)
        return tokens.reshape(b, t, g, g, d).permute(0, 4, 1, 2, 3)

    def decode(self, z: torch.Tensor, refs: RefTokens, state: StreamState | None = None) -> torch.Tensor:
        """latent [B,C,T,h,w] and the references' tokens (`ref_features`) -> video [B,3,F,H,W]; F = 4T-3 for
        a clip start, else 4T.

        With `state`, consecutive chunks decode exactly as one clip (DESIGN.md §6: VAE streaming).
        """
        x = self.d1(self.d1_in(z, state), state)
        x = self._fuse_refs(x, refs.coarse, self.dref, self.ref_null, self.cfg.dref_heads)  # D_ref
        first, *rest = self.d2.layers
        x = first(x, state)  # [B,W,T,2g,2g]
        if self.cfg.fine_ref_blocks:
            x = self._fuse_refs(x, refs.fine, self.dref_fine, self.fine_null, self.cfg.fine_ref_heads,
                                self.fine_ref_norm)
        for stage in rest:
            x = stage(x, state)
        out = self.d2_out(torch.nn.functional.silu(self.d2_norm(x)), state)
        if state is not None:
            state.started = True
        return out


def sample_posterior(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * noise


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL(q || N(0, 1)) per latent element."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
