"""Engine configuration: frozen dataclasses and the three presets (DESIGN.md §2, §5.1).

Every architecture number lives here. A weights file stores its `EngineConfig` as JSON in the
safetensors metadata, so a model always comes back with the sizes it was trained with.
This module imports no torch.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

FPS = 25  # video frame rate inside the engine (DESIGN.md §2)
SAMPLE_RATE = 16_000  # audio sample rate inside the engine
TEMPORAL_DOWN = 4  # VAE temporal compression: 4 frames -> 1 latent frame, the first frame alone

# The mouth's share of a face crop (rows y0..y1, columns x0..x1 as fractions of the height and width):
# `avacast prepare` centres the face box (half the crop wide) 0.05 below the crop's centre, so the lips sit at
# 0.64-0.78 of the height and 0.375-0.625 of the width: rows 5-6 and columns 3-4 of the base preset's 8x8
# latent grid, pixels 160-223 x 96-159 of its 256x256 frames. The VAE's zoom augmentation (a random crop of up to
# 1/1.12 of the side, scaled back) moves the mouth by up to ~28 px: the box is a weighting, not a mask.
MOUTH_BOX = (0.625, 0.875, 0.375, 0.625)


def mouth_slices(h: int, w: int, margin: float = 0.0) -> tuple[slice, slice]:
    """The rows and columns of an h x w grid (latent cells or pixels) that MOUTH_BOX, widened by `margin` (a
    fraction of the side) and clipped to the grid, covers: at least one cell each."""
    y0, y1, x0, x1 = MOUTH_BOX
    r0, c0 = min(int(max(0.0, y0 - margin) * h), h - 1), min(int(max(0.0, x0 - margin) * w), w - 1)
    r1, c1 = round(min(1.0, y1 + margin) * h), round(min(1.0, x1 + margin) * w)
    return slice(r0, max(r0 + 1, r1)), slice(c0, max(c0 + 1, c1))


HOLD_MOUTH_MARGIN = 0.1  # of the side, around MOUTH_BOX for SamplerConfig.hold_mouth: lips, chin and mouth corners


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass(frozen=True)
class VAEConfig:
    """Reference-guided causal residual VAE (paper §VAE).

    E1: `len(e1_widths)` stages of 2 residual blocks, each stage ending in a 2x spatial down
    (stages listed in `e1_time_down` also halve time first). E2: `e2_downs` more spatial downs.
    D1 mirrors E2, D_ref fuses references, D2 mirrors E1.
    """

    resolution: int = 256
    image_channels: int = 3
    latent_channels: int = 64
    e1_widths: tuple[int, ...] = (64, 128, 256, 512)  # one per stage, full res -> 1/16
    e1_out: int = 512  # E1 feature width; also D_ref width
    e1_time_down: tuple[int, ...] = (1, 2)  # stages (0-based) that halve time first: blocks 4 and 6
    e2_downs: int = 1  # extra 2x spatial downs in E2 (paper: 2 -> 64x)
    e2_blocks: int = 1  # residual blocks per E2/D1 stage
    dref_blocks: int = 2
    dref_heads: int = 8
    dref_head_dim: int = 64
    # Fine reference fusion (ours, not in the paper): blocks like D_ref's at 1/8 of the resolution, after D2's
    # first up stage, attending to the references' E1 features of that scale (width e1_widths[-1]), so detail
    # the 1/16 tokens cannot hold (eyes, teeth, hair) can come from the portrait. 0: none (models <= v0.8).
    fine_ref_blocks: int = 0
    fine_ref_heads: int = 2
    max_refs: int = 8
    time_kernel: int = 3  # temporal kernel of the causal convolutions
    # Rows of `CausalVAE.motion_basis` [motion_dims, C*h*w]: the leading directions along which latents move
    # within a clip (mouth, pose, blinks), estimated from a latent cache at release (`avacast release
    # --motion-basis`); the identity hold leaves the first `SamplerConfig.hold_free_dims` alone. 0: none.
    motion_dims: int = 0

    def __post_init__(self) -> None:
        _check(len(self.e1_time_down) == 2, "temporal compression is 4x: two time-down stages")
        _check(all(0 <= s < len(self.e1_widths) for s in self.e1_time_down), "bad e1_time_down")
        _check(self.resolution % self.spatial_down == 0, "resolution must divide by spatial_down")
        _check(self.dref_heads * self.dref_head_dim == self.e1_out, "D_ref width must equal e1_out")
        _check(self.fine_ref_blocks >= 0 and self.e1_widths[-1] % self.fine_ref_heads == 0,
               "fine_ref_blocks >= 0, and fine_ref_heads must divide e1_widths[-1]")
        _check(len(self.e1_widths) >= 2 or not self.fine_ref_blocks, "fine reference fusion needs two E1 stages")
        _check(self.time_kernel >= 2, "time_kernel >= 2")
        _check(self.latent_channels >= 1, "latent_channels must be >= 1")
        _check(0 <= self.motion_dims <= self.latent_channels * self.latent_size**2, "bad motion_dims")

    def latent_space(self) -> "VAEConfig":
        """This config without its decoder-side settings (the motion basis, the fine fusion): a generator
        trained on one VAE's latents can ship with another whose latent_space() is the same."""
        return dataclasses.replace(self, motion_dims=0, fine_ref_blocks=0, fine_ref_heads=VAEConfig.fine_ref_heads)

    @property
    def spatial_down(self) -> int:
        return 2 ** (len(self.e1_widths) + self.e2_downs)

    @property
    def latent_size(self) -> int:
        return self.resolution // self.spatial_down

    @property
    def compression(self) -> float:
        """Pixels*channels per latent value (paper: 768)."""
        return self.image_channels * self.spatial_down**2 * TEMPORAL_DOWN / self.latent_channels


@dataclass(frozen=True)
class AudioConfig:
    """Our speech encoder: causal log-mel + conv stack + 4x temporal embedder (DESIGN.md §2)."""

    n_mels: int = 80
    n_fft: int = 512
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms -> 4 mel frames per video frame at 25 fps
    width: int = 256
    layers: int = 6
    kernel: int = 5
    lookahead_ms: int = 40  # future audio the features may see; adds to latency
    feature_dim: int = 128  # per-latent-frame feature handed to the DiT

    def __post_init__(self) -> None:
        _check(SAMPLE_RATE // self.hop_length * 1 == 100, "hop must give 100 mel frames/s")
        _check(self.lookahead_ms >= 0 and self.lookahead_ms % 10 == 0, "lookahead in 10 ms steps")
        _check(self.kernel % 2 == 1, "odd kernel")

    @property
    def mels_per_frame(self) -> int:
        return SAMPLE_RATE // self.hop_length // FPS  # 4

    @property
    def lookahead_mels(self) -> int:
        return self.lookahead_ms // 10

    @property
    def receptive_mels(self) -> int:
        """Past mel frames one output depends on (dilations 1,2,4,.. cycling over 3)."""
        return sum((self.kernel - 1) * 2 ** (i % 3) for i in range(self.layers))


@dataclass(frozen=True)
class DiTConfig:
    """Block-causal rectified-flow transformer (paper §Generator)."""

    depth: int = 12
    heads: int = 8
    head_dim: int = 64
    mlp_ratio: float = 4.0
    patch: int = 1
    block_frames: int = 1  # latent frames per causal block (paper: 4)
    window_frames: int = 16  # latent frames visible to a block, itself included (paper: 32)
    rope_split: tuple[int, int, int] = (16, 24, 24)  # head dims rotated by (t, y, x); rest unrotated
    # 0: the flow makes latents. > 0: it makes (latent - mean reference latent) x ref_residual, so the
    # person's static appearance comes from the references by construction and the flow only makes what
    # moves (ours, session 8; set by `train generator --ref-residual` to give that residual unit std)
    ref_residual: float = 0.0
    # The model carries a driver face (`DiT.driver`, uint8 [H,W,3], set by `avacast release --driver`): the
    # generator animates it and its motion moves the portrait (Session; SamplerConfig.use_driver switches it).
    driver: bool = False

    def __post_init__(self) -> None:
        _check(self.ref_residual >= 0, "ref_residual >= 0")
        _check(self.window_frames % self.block_frames == 0, "window must be whole blocks")
        _check(self.window_frames > self.block_frames, "window must hold past blocks")
        _check(sum(self.rope_split) <= self.head_dim, "rope_split exceeds head_dim")
        _check(all(r % 2 == 0 for r in self.rope_split), "rope dims must be even")

    @property
    def width(self) -> int:
        return self.heads * self.head_dim

    @property
    def past_blocks(self) -> int:
        """Blocks kept in the rolling KV window besides the current one."""
        return self.window_frames // self.block_frames - 1


@dataclass(frozen=True)
class SamplerConfig:
    steps: int = 12
    shift: float = 5.0
    cfg: float = 2.0
    history_noise: float = 0.0  # noise level of committed history at inference
    # The stream's first latent is the first reference's own latent instead of a sample (a clip that starts
    # on the portrait, as clips start on their frame 0 in training); needs 1-latent-frame blocks.
    anchor_first: bool = False
    # Identity hold (ours, session 8): each generated latent is moved by identity_hold x (mean reference latent
    # - a running mean of the generated latents over ~hold_seconds) before decoding. What changes fast (the
    # mouth) passes; the slow drift of the whole face towards an average one is pulled back to the portrait.
    # The generator's own history is untouched unless hold_history. 0: off. (engine/runtime/hold.py)
    identity_hold: float = 0.0
    hold_seconds: float = 2.0
    # The hold's pull leaves out this many leading motion directions of the latent space (VAEConfig.motion_dims):
    # the portrait's expression (an open smile) is not imposed and the slow speech/pause rhythm of the mouth
    # is not flattened; only the identity is pulled back (session 9; measured no better than 0, so 0 ships).
    hold_free_dims: int = 0
    # The held latent, not the raw one, becomes the generator's history (KV cache): the generator continues from
    # the portrait's identity instead of drifting on from its own output (session 9; halves lip sync: off).
    hold_history: bool = False
    # The hold's strength on the mouth's latent cells (MOUTH_BOX widened by HOLD_MOUTH_MARGIN) relative to the
    # rest of the face: below 1 a portrait's open smile is not pulled back into every pause (session 13). 1: even.
    hold_mouth: float = 1.0
    # The model's driver face (DiTConfig.driver) moves the portrait; False: the generator animates the portrait
    # itself. Read when a session opens (session 14).
    use_driver: bool = True
    # Motion gain (session 15, engine/runtime/magnify.py): each latent's departure from its running mean over
    # ~hold_seconds is scaled by motion_gain before decoding (mouth_gain times more on the mouth's cells):
    # fast motion (the mouth) grows, the identity stays. 1: off (measured: more artefacts, not a wider mouth).
    motion_gain: float = 1.0
    mouth_gain: float = 1.0

    def __post_init__(self) -> None:
        _check(self.steps >= 1, "steps >= 1")
        _check(0.0 <= self.motion_gain <= 4.0 and 0.0 <= self.mouth_gain <= 4.0,
               "motion_gain and mouth_gain in [0, 4]")
        _check(0.0 <= self.hold_mouth <= 1.0, "hold_mouth in [0, 1]")
        _check(0.0 <= self.identity_hold <= 1.0, "identity_hold in [0, 1]")
        _check(self.hold_seconds > 0, "hold_seconds > 0")
        _check(self.hold_free_dims >= 0, "hold_free_dims >= 0")
        _check(self.shift > 0, "shift > 0")
        _check(0.0 <= self.history_noise < 1.0, "history_noise in [0, 1)")


@dataclass(frozen=True)
class RuntimeConfig:
    """Live runner settings. Playout: frame f is shown at (push time of its audio) + D, so every on-time
    frame has mic->frame latency D (engine/runtime/playout.py); D rises when a frame comes late."""

    queue_frames: int = 8  # bounded drop-oldest frame queue per sink (grows with D when live)
    ring_seconds: float = 30.0  # audio ring buffer capacity
    playout_ms: float | None = None  # initial D; None: block + audio look-ahead + playout_margin_ms
    playout_margin_ms: float = 30.0  # compute allowance in the automatic D
    playout_max_ms: float = 2000.0  # D never grows past this (a stalled engine)
    # Live only: when the mic is more than this ahead of the audio the next block needs (an engine slower than
    # real time, e.g. on a CPU), the oldest audio is skipped, counted as dropped frames: the picture follows the
    # voice of now instead of falling further behind, and Stop waits for one block, not a backlog.
    backlog_max_ms: float = 500.0

    def __post_init__(self) -> None:
        _check(self.queue_frames >= 1 and self.ring_seconds >= 1, "bad runtime sizes")
        _check(self.playout_margin_ms >= 0 and self.playout_max_ms > 0, "bad playout margin or cap")
        _check(self.backlog_max_ms > 0, "backlog_max_ms must be > 0")
        _check(self.playout_ms is None or 0 <= self.playout_ms <= self.playout_max_ms,
               "playout_ms must be in [0, playout_max_ms]")


@dataclass(frozen=True)
class EngineConfig:
    name: str = "base"
    vae: VAEConfig = field(default_factory=VAEConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        _check(self.dit.patch <= self.vae.latent_size, "patch larger than latent")
        _check(self.vae.latent_size % self.dit.patch == 0, "latent must divide by patch")

    # --- presets -------------------------------------------------------------------------
    @classmethod
    def tiny(cls) -> "EngineConfig":
        """CPU tests: a whole session in well under a second."""
        return cls(
            name="tiny",
            vae=VAEConfig(resolution=32, latent_channels=8, e1_widths=(8, 8, 8, 16), e1_out=16,
                          e2_downs=0, dref_blocks=1, dref_heads=1, dref_head_dim=16, fine_ref_blocks=1),
            audio=AudioConfig(n_mels=32, width=32, layers=2, kernel=3, feature_dim=16),
            dit=DiTConfig(depth=2, heads=2, head_dim=16, block_frames=1, window_frames=4,
                          rope_split=(4, 4, 4)),
            sampler=SamplerConfig(steps=2, shift=5.0, cfg=2.0),
        )

    @classmethod
    def base(cls) -> "EngineConfig":
        """The shipped model: 256², 1-latent-frame blocks (160 ms), sized for our data and GPU."""
        # Sized for ~20 min of data, a few GPU hours, and transfers of <= 64 MiB per training slot:
        # VAE ~12 M parameters at 384x compression (8x8x32 latent per 4 frames), DiT ~21 M.
        return cls(
            name="base",
            vae=VAEConfig(resolution=256, latent_channels=32, e1_widths=(32, 64, 128, 128), e1_out=256,
                          e2_downs=1, e2_blocks=0, dref_blocks=2, dref_heads=4, dref_head_dim=64),
            # No look-ahead: a 1-latent-frame block already sees the audio of all its 4 frames, and every
            # 10 ms of look-ahead is 10 ms more latency (the 200 ms budget: 160 ms block + compute).
            audio=AudioConfig(width=192, layers=6, feature_dim=128, lookahead_ms=0),
            dit=DiTConfig(depth=8, heads=6, head_dim=64, block_frames=1, window_frames=16),
            sampler=SamplerConfig(steps=4, shift=5.0, cfg=2.0),
        )

    @classmethod
    def paper(cls) -> "EngineConfig":
        """The published sizes (512², 768x VAE, 1.0 B DiT, 4-frame blocks, 32-frame window)."""
        return cls(
            name="paper",
            # Stage widths are not published; these keep the 512² decoder near 1 TFLOP per frame.
            vae=VAEConfig(resolution=512, latent_channels=64, e1_widths=(64, 128, 256, 512),
                          e1_out=1024, e2_downs=2, e2_blocks=2, dref_blocks=6, dref_heads=16,
                          dref_head_dim=64),
            audio=AudioConfig(width=512, layers=8, feature_dim=256),
            dit=DiTConfig(depth=24, heads=12, head_dim=128, block_frames=4, window_frames=32,
                          rope_split=(32, 48, 48)),
            sampler=SamplerConfig(steps=12, shift=5.0, cfg=2.0),
        )

    @classmethod
    def preset(cls, name: str) -> "EngineConfig":
        presets = {"tiny": cls.tiny, "base": cls.base, "paper": cls.paper}
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(presets)}")
        return presets[name]()

    # --- serialisation --------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EngineConfig":
        raw = json.loads(text)
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "EngineConfig":
        subs = {"vae": VAEConfig, "audio": AudioConfig, "dit": DiTConfig,
                "sampler": SamplerConfig, "runtime": RuntimeConfig}
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key in subs:
                kwargs[key] = _build(subs[key], value)
            elif key == "name":
                kwargs[key] = value
            else:
                raise ValueError(f"unknown config field {key!r}")
        return cls(**kwargs)


def _build(kind: type, raw: dict[str, Any]) -> Any:
    names = {f.name: f for f in dataclasses.fields(kind)}
    unknown = set(raw) - set(names)
    if unknown:
        raise ValueError(f"unknown {kind.__name__} fields: {sorted(unknown)}")
    # JSON turns tuples into lists; frozen dataclasses must stay hashable.
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
