"""Preallocated KV cache for block-causal streaming (DESIGN.md §2 bounded memory, §5.4-5).

Layout per layer: [B, heads, S, hd] with S = n_ref + past_blocks * L. The first n_ref positions are the
reference tokens (a permanent sink, written once per session); the rest is a ring of past blocks, block b
in slot b % past_blocks. While the ring fills, slots 0..filled-1 form a contiguous prefix, so the visible
context is always one slice. Cursors are Python ints: no device sync in the forward pass.

While it fills, a `masked` cache shows its whole buffer plus a device-side visibility mask instead of the
slice, so one captured CUDA graph serves every fill level (the mask is rewritten on each advance).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass
class KVCache:
    k: list[torch.Tensor]  # per layer [B,heads,S,hd]
    v: list[torch.Tensor]
    n_ref: int  # reference tokens at the front
    block_tokens: int  # L: tokens per block
    past_blocks: int  # ring capacity in blocks
    filled: int = 0  # committed blocks held (<= past_blocks)
    next_block: int = 0  # absolute index of the block being generated
    slot_index: torch.Tensor | None = None  # [L] cache positions of the next block's slot (device)
    visible: torch.Tensor | None = None  # [S+L] bool: committed positions, then the current block (device)
    masked: bool = False  # context() = the whole buffer, with `visible` as the attention mask
    _mask_filled: int = dataclasses.field(default=-1, repr=False)  # the fill level `visible` was written for

    def __post_init__(self) -> None:
        self._set_slot()

    def _set_slot(self) -> None:
        """Write positions (and, when the fill level changed, the mask) as device tensors, so a captured CUDA
        graph writes the right slot and sees the right keys each replay."""
        start = self.n_ref + (self.next_block % self.past_blocks) * self.block_tokens
        pos = torch.arange(start, start + self.block_tokens)
        if self.slot_index is None:
            self.slot_index = pos.to(self.k[0].device)
        else:
            self.slot_index.copy_(pos, non_blocking=True)
        if self.visible is None or self._mask_filled != self.filled:  # steady state: no upload per block
            size = self.k[0].shape[2]
            vis = torch.ones(size + self.block_tokens, dtype=torch.bool)
            vis[self.n_ref + self.filled * self.block_tokens : size] = False
            if self.visible is None:
                self.visible = vis.to(self.k[0].device)
            else:
                self.visible.copy_(vis, non_blocking=True)
            self._mask_filled = self.filled

    @classmethod
    def allocate(cls, depth: int, batch: int, heads: int, head_dim: int, n_ref: int, block_tokens: int,
                 past_blocks: int, device: torch.device, dtype: torch.dtype) -> "KVCache":
        size = n_ref + past_blocks * block_tokens
        def buf() -> list[torch.Tensor]:
            return [torch.zeros(batch, heads, size, head_dim, device=device, dtype=dtype) for _ in range(depth)]
        return cls(buf(), buf(), n_ref, block_tokens, past_blocks)

    def write_refs(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """k, v: [B,heads,n_ref,hd]."""
        self.k[layer][:, :, : self.n_ref] = k
        self.v[layer][:, :, : self.n_ref] = v

    def context(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Visible keys/values: references plus committed blocks -> [B,heads,n_ref+filled*L,hd] views
        (masked: the whole buffer [B,heads,S,hd]; `context_mask` says what is visible)."""
        end = self.k[layer].shape[2] if self.masked else self.n_ref + self.filled * self.block_tokens
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def context_mask(self) -> torch.Tensor | None:
        """For attention over context + the current block's L tokens: [1,S+L] bool when masked, else None."""
        return self.visible[None] if self.masked else None

    def write_block(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store block `next_block`'s keys/values [B,heads,L,hd] in its ring slot (during commit)."""
        self.k[layer].index_copy_(2, self.slot_index, k.to(self.k[layer].dtype))
        self.v[layer].index_copy_(2, self.slot_index, v.to(self.v[layer].dtype))

    @property
    def full(self) -> bool:
        """Steady state: every slot holds a block, so all shapes are static (CUDA-graph capturable)."""
        return self.filled == self.past_blocks

    def advance(self) -> None:
        """Called once per block, after every layer wrote it (the single commit)."""
        self.next_block += 1
        self.filled = min(self.filled + 1, self.past_blocks)
        self._set_slot()

    def advance_to(self, block: int) -> None:
        """Set the cursor to absolute block `block` with nothing committed (a rewound stream)."""
        self.next_block, self.filled = block, 0
        self._set_slot()

    def clone(self) -> "KVCache":
        """An independent copy (own buffers and slot index), e.g. a scratch cache for graph warm-up."""
        return dataclasses.replace(self, k=[t.clone() for t in self.k], v=[t.clone() for t in self.v],
                                   slot_index=None, visible=None, _mask_filled=-1)  # __post_init__ derives them

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)
