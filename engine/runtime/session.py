"""One streaming generation session: audio in, frames out (DESIGN.md §3).

Synchronous and deterministic under a seed. Per block: audio features -> denoise (N Euler steps with CFG,
reading the KV cache) -> one commit -> VAE decode with causal state -> frames. A block runs as soon as
its audio, look-ahead included, has arrived, so chunking never changes the frames.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch

from engine.audio.encoder import latent_frames_for, latent_video_frames, mel_span, samples_needed
from engine.bundle import AvacastModel
from engine.config import FPS, SAMPLE_RATE, TEMPORAL_DOWN, SamplerConfig
from engine.flow.sampler import schedule
from engine.audio.resample import StreamResampler
from engine.nn.conv import StreamState
from engine.runtime.graphs import BlockGraph, DecodeGraph, graph_key, sample_block
from engine.runtime.hold import IdentityHold
from engine.runtime.magnify import MotionGain
from engine.vae.model import RefTokens

SAMPLES_PER_FRAME = SAMPLE_RATE // FPS


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # [H,W,3] uint8
    index: int  # video frame index from 0
    pts_s: float  # index / FPS


def prepare_references(images: list[np.ndarray], size: int) -> torch.Tensor:
    """RGB uint8 [H,W,3] images of any size -> [1,R,3,size,size] in [-1,1] (centre square crop)."""
    out = []
    for i, img in enumerate(images):
        arr = np.asarray(img)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or min(arr.shape[:2]) < 8:
            raise ValueError(f"reference {i} must be an RGB uint8 image [H,W,3], got {arr.dtype} {arr.shape}")
        h, w = arr.shape[:2]
        s = min(h, w)
        crop = arr[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        t = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float()  # [1,3,s,s]
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False)
        out.append(t[0] / 127.5 - 1.0)
    if not out:
        return torch.zeros(1, 0, 3, size, size)
    return torch.stack(out)[None]


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """[1,3,F,H,W] in [-1,1] -> [F,H,W,3] uint8."""
    x = ((video[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()


class _StageClock:
    """Per-stage durations; CUDA events on GPU (read after the frames' device->host copy syncs)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.marks: list[tuple[str, object]] = []

    def mark(self, name: str) -> None:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.marks.append((name, ev))
        else:
            self.marks.append((name, time.perf_counter()))

    def durations(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.cuda and self.marks:  # normally done already (the frames' copy syncs); measured: not always
            self.marks[-1][1].synchronize()  # (an eval with another process on the GPU: "Both events must be
            # completed before calculating elapsed time")
        for (_, a), (name, b) in zip(self.marks, self.marks[1:]):
            dt = a.elapsed_time(b) / 1e3 if self.cuda else b - a  # type: ignore[union-attr,operator]
            out[name] = out.get(name, 0.0) + dt
        return out


class Session:
    def __init__(self, model: AvacastModel, references: list[np.ndarray], seed: int,
                 device: torch.device, dtype: torch.dtype, warm_up: bool | None = None,
                 sampler: SamplerConfig | None = None, driver: np.ndarray | None = None):
        self.model, self.cfg = model, model.cfg
        self.device, self.dtype = device, dtype
        self.sampler: SamplerConfig = self.cfg.sampler if sampler is None else sampler
        self._pending_sampler: SamplerConfig | None = None
        self._use_cfg = self.sampler.cfg != 1.0  # batch 2 (cond, uncond) when guidance is on
        self._seed = int(seed)
        self._gen = torch.Generator(device=device).manual_seed(self._seed)
        self._resamplers: dict[int, StreamResampler] = {}
        self._buf = np.zeros(0, np.float32)  # trailing audio, absolute samples [buf0, buf0+len)
        self._buf0 = 0
        self._total = 0  # samples received
        self._next_latent = 0
        self._frames_out = 0
        self._dec_state = StreamState()
        self._block_graph: BlockGraph | None = None  # CUDA graphs of the steady state ("graphs", "compile")
        self._fill_graph: BlockGraph | None = None  # the blocks filling the KV window (plain graph, masked)
        self._decode_graph: DecodeGraph | None = None
        self.timings: dict[str, float] = {}
        self.frames_per_block = self.cfg.dit.block_frames * TEMPORAL_DOWN
        self._warm_threads: set[int] = set()  # threads this session has been warmed up in
        self._open(references, driver)
        if device.type == "cuda" if warm_up is None else warm_up:
            self.warm_up()

    @torch.no_grad()
    def _open(self, references: list[np.ndarray], driver: np.ndarray | None = None) -> None:
        if len(references) > self.cfg.vae.max_refs:
            raise ValueError(f"at most {self.cfg.vae.max_refs} reference images, got {len(references)}")
        vae, dit = self.model.vae, self.model.dit
        self._ref_e1, ref_lat = self._encode_refs(references)  # [1,M,D], [1,R,C,h,w] scaled
        # Driver (session 14): the generator animates the driver's face and its motion is moved onto the
        # portrait at decode time (latent + portrait's mean reference latent - driver's), decoded with the
        # portrait's reference features. The generator, its history and the hold all live in the driver's
        # latent space: a face it animates well stands in for a portrait it would smear.
        self._shift: torch.Tensor | None = None  # [1,C,1,h,w] or None: no driver
        if driver is None and self.cfg.dit.driver and self.sampler.use_driver:
            driver = dit.driver.cpu().numpy()  # the model's own
        if driver is not None:
            if not ref_lat.shape[1]:
                raise ValueError("a driver face moves a portrait: give a reference image too")
            drv_lat = self._encode_refs([driver])[1]
            self._shift = ref_lat.mean(1).unsqueeze(2) - drv_lat.mean(1).unsqueeze(2)
            ref_lat = drv_lat
        if self.sampler.anchor_first and self.cfg.dit.block_frames != 1:
            raise ValueError("anchor_first needs 1-latent-frame blocks (dit.block_frames = 1)")
        # [1,C,1,h,w]: the first portrait as latent 0 (without references there is nothing to anchor on)
        self._anchor = ref_lat[:, 0].unsqueeze(2) if ref_lat.shape[1] else None
        self._residual = self.cfg.dit.ref_residual  # > 0: the flow makes (latent - ref mean) * this
        if self._residual and not ref_lat.shape[1]:
            raise ValueError("this model makes the portrait's motion, not the portrait: give a reference image")
        self._ref_mean = ref_lat.mean(1).unsqueeze(2) if ref_lat.shape[1] else None  # [1,C,1,h,w]
        free, have = self.sampler.hold_free_dims, self.cfg.vae.motion_dims
        if free > have:
            raise ValueError(f"hold_free_dims {free}: this model stores {have} motion directions "
                             "(avacast release --motion-basis adds them)")
        self._hold: IdentityHold | None = None  # without references there is nothing to hold to
        if self._ref_mean is not None:  # free: [k, C*h*w], the motion directions it leaves alone
            self._hold = IdentityHold(self._ref_mean, self._residual,
                                      vae.motion_basis[:free].float() if free else None)
            self._hold.configure(self.sampler)
        c, s = self.cfg.vae.latent_channels, self.cfg.vae.latent_size
        self._gain = MotionGain(torch.zeros((1, c, 1, s, s), device=self.device))
        self._gain.configure(self.sampler)
        tok = dit.ref_tokens(ref_lat)
        if self._use_cfg:
            tok = torch.cat([tok, dit.ref_tokens(ref_lat, drop=torch.ones(1, dtype=torch.bool, device=self.device))])
        self._cache = dit.new_cache(tok.shape[0], tok.shape[1], self.device, self.dtype)
        dit.prefill_refs(self._cache, tok)
        if self._graphs_on():
            self._prepare_graphs()

    def _encode_refs(self, images: list[np.ndarray]) -> tuple[RefTokens, torch.Tensor]:
        """RGB images -> (the decoder's reference features [1,M,D], scaled reference latents [1,R,C,h,w])."""
        vae = self.model.vae
        refs = prepare_references(images, self.cfg.vae.resolution).to(self.device, self.dtype)
        e1, lat = vae.encode_refs(refs)
        return e1, lat * vae.latent_scale

    def _prepare_graphs(self) -> None:
        """Capture the steady-state graphs now, before audio flows, so no capture stalls the stream.

        Capture records work without running it, so the cache cursors are set to their steady-state
        values for the capture only; the decoder state is preallocated with its steady shapes."""
        cfg, sp, dit, vae = self.cfg, self.sampler, self.model.dit, self.model.vae
        bf, c, s = cfg.dit.block_frames, cfg.vae.latent_channels, cfg.vae.latent_size
        z = torch.zeros((1, c, bf, s, s), device=self.device, dtype=self.dtype)
        audio = torch.zeros((self._cache.k[0].shape[0], bf, cfg.audio.feature_dim), device=self.device,
                            dtype=self.dtype)
        with self._steady_cursors():
            args = (dit, self._cache, z, audio, dit.rope(bf, bf, self.device), schedule(sp.steps, sp.shift),
                    sp.cfg if self._use_cfg else None, sp.history_noise)
            hold = {"hold": self._active_hold(), "hold_history": sp.hold_history}
            self._block_graph = BlockGraph(*args, fuse=self._fuse, **hold)
            # not compiled: the fill lasts window/block blocks, not worth a second compile at first launch
            self._fill_graph = BlockGraph(*args, masked=True, **hold)
        scratch = StreamState()
        vae.decode(z, self._ref_e1, scratch)  # learns every causal conv's state shape
        self._dec_state.frames = {k: torch.zeros_like(v) for k, v in scratch.frames.items()}
        self._dec_state.started = True  # capture the steady state (the first chunk runs eagerly)
        self._decode_graph = DecodeGraph(vae, z, self._ref_e1, self._dec_state, self._fuse)
        self._dec_state.started = False

    @contextmanager
    def _steady_cursors(self) -> Iterator[None]:
        """The cache cursors at steady-state values while a graph is captured (capture records work without
        running it; the captured slot and mask are device tensors that follow the real cursors). The traced
        Python thus sees the same ints at open and at a live re-capture (steps/CFG changed mid-stream), so
        torch.compile's guards hold and a re-capture does not recompile."""
        cache = self._cache
        saved = cache.filled, cache.next_block
        cache.filled, cache.next_block = cache.past_blocks, cache.past_blocks + 1
        try:
            yield
        finally:
            cache.filled, cache.next_block = saved

    def warm_up(self) -> None:
        """Run the first KV window (+1 block) on silence, then rewind to the stream start.

        The first call of every eager shape (the clip's first block, each fill level of the cache, the
        decoder's first chunk) pays cuDNN autotuning, FFT plans and lazy CUDA set-up: over a second on a
        GPU. Paid here, at open, none of it reaches the stream's latency. Much of it is per thread (cuDNN's
        plan cache and the cuBLAS/cuDNN handles are thread-local: measured on an H100, a session warmed in
        one thread still ran its first blocks at 1.3 s and ~0.45 s in another), so the thread that will
        step the session must call this (the Runner does); it is a no-op in a thread that already did, and
        must run before any audio is pushed. The rewind reuses every buffer in place (the captured graphs
        keep pointing at them); the KV ring and the decoder state are hidden by their cursors (`filled`,
        `started`) until overwritten, and the noise generator is re-seeded, so the stream's frames are
        exactly those of a session opened without warm-up."""
        if threading.get_ident() in self._warm_threads:
            return
        if self._total or self._frames_out:
            raise RuntimeError("warm_up() must run before the stream starts")
        for _ in range(self.cfg.dit.window_frames // self.cfg.dit.block_frames + 1):
            self._append(np.zeros(max(0, self.samples_needed - self._total), np.float32))
            self._run_block()
        self._cache.advance_to(0)
        self._dec_state.started = False
        if self._hold is not None:
            self._hold.reset()
        self._gain.reset()
        self._buf, self._buf0, self._total = np.zeros(0, np.float32), 0, 0
        self._next_latent = self._frames_out = 0
        self._gen.manual_seed(self._seed)
        self.timings = {}
        self._warm_threads.add(threading.get_ident())

    # --- audio ---------------------------------------------------------------------------
    def push_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        """Float32 mono samples at any rate (resampled to 16 kHz with a streaming resampler)."""
        x = np.asarray(samples, np.float32).reshape(-1)
        if sample_rate != SAMPLE_RATE:
            x = self._resamplers.setdefault(sample_rate, StreamResampler(sample_rate, SAMPLE_RATE)).process(x)
        self._append(x)

    def _append(self, x: np.ndarray) -> None:
        self._buf = np.concatenate([self._buf, x])
        self._total += x.size

    @property
    def samples_needed(self) -> int:
        """Absolute 16 kHz sample count needed before the next block can run."""
        return samples_needed(self.cfg.audio, self._next_latent + self.cfg.dit.block_frames - 1)

    def set_sampler(self, steps: int | None = None, cfg: float | None = None,
                    identity_hold: float | None = None) -> None:
        """Applies at the next block boundary. Guidance cannot be switched on in a session opened without it."""
        new = replace(self.sampler, **{k: v for k, v in (("steps", steps), ("cfg", cfg),
                                                          ("identity_hold", identity_hold)) if v is not None})
        if new.cfg != 1.0 and not self._use_cfg:
            raise ValueError("this session was opened with CFG 1 (no guidance); reopen it to enable guidance")
        self._pending_sampler = new

    # --- generation ----------------------------------------------------------------------
    def step(self) -> list[Frame]:
        """Generate every block whose audio is available -> list[Frame] in order."""
        frames: list[Frame] = []
        while self._total >= self.samples_needed:
            frames += self._run_block()
        return frames

    def flush(self) -> list[Frame]:
        """Finish the stream: pad with silence, generate the rest, trim to round(seconds * 25) frames."""
        for r in self._resamplers.values():
            self._append(r.flush())
        target = int(round(self._total / SAMPLES_PER_FRAME))
        if target <= self._frames_out:
            return []
        last_latent = latent_frames_for(target) - 1
        bf = self.cfg.dit.block_frames
        last_block_end = (last_latent // bf + 1) * bf - 1
        pad = samples_needed(self.cfg.audio, last_block_end) - self._total
        if pad > 0:
            self._append(np.zeros(pad, np.float32))
        frames = self.step()
        keep = [f for f in frames if f.index < target]
        self._frames_out = target
        return keep

    @torch.no_grad()
    def _run_block(self) -> list[Frame]:
        if self._pending_sampler is not None:
            was_on = self.sampler.identity_hold > 0
            self.sampler, self._pending_sampler = self._pending_sampler, None
            if self._hold is not None:
                self._hold.configure(self.sampler)
                if not was_on:  # switched on live: a fresh running mean, not the one from before it was off
                    self._hold.reset()
        clock = _StageClock(self.device)
        clock.mark("start")
        bf = self.cfg.dit.block_frames
        j0, j1 = self._next_latent, self._next_latent + bf
        audio = self._features(j0, j1)  # [B,bf,A]
        clock.mark("features")
        x0 = self._denoise(audio)  # [1,C,bf,h,w]
        clock.mark("denoise")
        rgb = to_uint8(self._decode(x0))  # [F,H,W,3]; the host copy synchronises the device
        clock.mark("decode")
        self.timings = clock.durations()
        first = latent_video_frames(j0)[0]
        self._next_latent = j1
        self._trim_audio()
        out = [Frame(rgb[i], first + i, (first + i) / FPS) for i in range(rgb.shape[0])]
        self._frames_out = first + len(out)
        return out

    def _features(self, j0: int, j1: int) -> torch.Tensor:
        audio_enc = self.model.audio
        buf = torch.from_numpy(self._buf).to(self.device)[None]
        feat = audio_enc.encode_samples(buf, j0, j1, self._buf0).to(self.dtype)  # [1,bf,A]
        if self._use_cfg:
            feat = torch.cat([feat, self.model.dit.null_audio.to(self.dtype).expand_as(feat)])
        return feat

    def _graphs_on(self) -> bool:
        return self.device.type == "cuda" and getattr(self.model, "backend", "eager") in ("graphs", "compile")

    @property
    def _fuse(self) -> bool:
        """Backend "compile": torch.compile the captured functions before capturing them."""
        return getattr(self.model, "backend", "eager") == "compile"

    def _denoise(self, audio: torch.Tensor) -> torch.Tensor:
        """Noise -> x0 for the current block, committed to the KV cache [1,C,bf,h,w]."""
        dit, cfg, sp = self.model.dit, self.cfg, self.sampler
        bf, c, s = cfg.dit.block_frames, cfg.vae.latent_channels, cfg.vae.latent_size
        if sp.anchor_first and self._anchor is not None and self._cache.next_block == 0:
            return self._commit_anchor(audio)
        x = torch.randn((1, c, bf, s, s), generator=self._gen, device=self.device).to(self.dtype)
        hist_noise = None
        if sp.history_noise > 0:
            hist_noise = torch.randn(x.shape, generator=self._gen, device=self.device).to(self.dtype)
        sched = schedule(sp.steps, sp.shift)
        guidance = sp.cfg if self._use_cfg else None
        b = audio.shape[0]
        hold = self._active_hold()
        key = graph_key(sched, guidance, sp.history_noise, hold, sp.hold_history)
        fill = self._fill_graph
        if self._graphs_on() and self._cache.full:
            rope = dit.rope(self._cache.next_block * bf, bf, self.device)
            if self._block_graph is None or self._block_graph.key != key:  # a live sampler change
                with self._steady_cursors():
                    self._block_graph = BlockGraph(dit, self._cache, x, audio, rope, sched, guidance,
                                                   sp.history_noise, self._fuse, hold=hold,
                                                   hold_history=sp.hold_history)
            x0 = self._block_graph.run(x, audio, rope, hist_noise)
        elif self._graphs_on() and fill is not None and fill.key == key and self._cache.next_block > 0:
            # the first block of a clip differs (its single-frame latent); the fill levels share one graph
            x0 = fill.run(x, audio, dit.rope(self._cache.next_block * bf, bf, self.device), hist_noise)
        else:
            times = [torch.full((b,), t, device=self.device, dtype=self.dtype) for t in sched]
            t_hist = torch.full((b,), sp.history_noise, device=self.device, dtype=self.dtype)
            x0 = sample_block(dit, self._cache, x, audio, times, sched, guidance, t_hist, hist_noise,
                              hold=hold, hold_history=sp.hold_history)
        self._cache.advance()
        return x0

    def _active_hold(self) -> IdentityHold | None:
        """The identity hold when it is on (strength 0 skips it: the stream is then exactly the model's)."""
        return self._hold if self.sampler.identity_hold > 0 else None

    def _commit_anchor(self, audio: torch.Tensor) -> torch.Tensor:
        """Block 0 of an anchored stream: the portrait's latent, committed as history like a sampled block
        (clean: training noises history only to make the model robust to it)."""
        b, x0 = audio.shape[0], self._anchor
        if self._residual:
            x0 = (x0 - self._ref_mean) * self._residual
        t_hist = torch.zeros((b,), device=self.device, dtype=self.dtype)
        self.model.dit.commit(self._cache, x0.expand(b, -1, -1, -1, -1), audio, t_hist)  # writes, advances
        hold = self._active_hold()
        return x0 if hold is None else hold(x0)  # the portrait: starts the running mean, moves nothing

    def _decode(self, x0: torch.Tensor) -> torch.Tensor:
        """x0 [1,C,bf,h,w] (the flow's output) -> video [1,3,F,H,W] through the causal decoder state."""
        vae = self.model.vae
        if self._residual:  # back from the reference residual to latents
            x0 = x0 / self._residual + self._ref_mean
        x0 = self._gain(x0)  # the fast motion scaled (identity when motion_gain and mouth_gain are 1)
        if self._shift is not None:  # the driver's motion onto the portrait
            x0 = x0 + self._shift
        if self._graphs_on() and self._dec_state.started:
            if self._decode_graph is None or self._decode_graph.shape != tuple(x0.shape):
                self._decode_graph = DecodeGraph(vae, x0, self._ref_e1, self._dec_state, self._fuse)
            return self._decode_graph.run(x0)
        return vae.decode(x0 / vae.latent_scale, self._ref_e1, self._dec_state)

    def _trim_audio(self) -> None:
        """Drop audio older than the next block's receptive field: memory stays bounded."""
        m0, _ = mel_span(self.cfg.audio, self._next_latent, self._next_latent + 1)
        keep_from = max(0, (m0 + 1) * self.cfg.audio.hop_length - self.cfg.audio.n_fft)
        cut = keep_from - self._buf0
        if cut > 0:
            self._buf = self._buf[cut:]
            self._buf0 = keep_from
