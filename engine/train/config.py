"""Training hyper-parameters (frozen; stored in every training checkpoint)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    task: str = "vae"  # "vae", "generator" or "audio" (the phonetic pretext task)
    batch: int = 8  # per process
    lr: float = 2e-4
    warmup_steps: int = 200
    total_steps: int = 20_000  # cosine schedule length (training may stop earlier)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_minutes: float = 3.0
    log_every: int = 20
    # VAE
    clip_frames_start: int = 5  # progressive clip length: 4k+1 frames, growing ...
    clip_frames_end: int = 17  # ... to this by half of total_steps
    max_refs: int = 3
    ssim_weight: float = 0.2
    kl_weight: float = 1e-6
    freeze_encoder: bool = False  # train the decoder only: the latents (and a generator trained on them) stay valid
    latent_noise: float = 0.0  # max std of Gaussian noise on the decoder's input latent, in latent stds (a
    # decoder for the generator's imperfect latents); 0: none
    encoder_jitter: float = 0.0  # strength of a random colour transform on the encoder's input only (the target
    # and the references stay): the latent cannot carry the colours, so the decoder takes them from the
    # references; 0: none
    adversarial: float = 0.0  # the discriminators' term in the VAE's loss, its gradient at the decoder's output
    # layer relative to the reconstruction loss's (train/adversarial.py: balanced_weight); 0: off
    adversarial_mouth: float = 1.0  # the mouth discriminator's share of that term, x the whole frame's (the
    # balanced weight keeps the total; more puts more of it on the lips and teeth)
    adversarial_start: int = 0  # step from which that term counts: the discriminators, fresh, learn alone before
    disc_lr_scale: float = 4.0  # the discriminators' learning rate over the VAE's (two time-scale update rule)
    fine_refs_lr_scale: float = 1.0  # the fine reference fusion's learning rate over the VAE's (new blocks added
    # to a trained VAE start at zero and need larger steps)
    # generator
    blocks: int = 16  # blocks per training sequence
    history_noise_max: float = 0.7  # paper: noise 0..0.7 on history latents
    audio_drop: float = 0.1  # null-embedding dropout for CFG
    ref_drop: float = 0.1
    freeze_audio_convs: bool = False  # keep a pretrained (phonetic) encoder's mel-rate conv stack fixed
    video_only_share: float = 0.0  # share of examples drawn from clips without usable audio (a learned
    # "unknown audio" embedding): more identities for the reference pathway; 0 keeps them out
    self_history: float = 0.0  # share of examples whose history is the model's own one-step prediction
    mouth_weight: float = 1.0  # loss weight of the mouth (engine.config.MOUTH_BOX) relative to the rest of the face:
    # the VAE's L1 on its pixels, the generator's flow loss on its latent cells; 1: a plain mean
    # audio (phonetic pretext, issue 4)
    phone_delay: int = 2  # mel frames (10 ms) the label lags the audio: see engine/train/phonetic/task.py
    crop_seconds: float = 4.0  # audio per example
    babble: float = 0.0  # share of examples with 1-3 other voices mixed in below the speech (run2 used 0.4)

    def __post_init__(self) -> None:
        if self.task not in ("vae", "generator", "audio"):
            raise ValueError(f"task must be vae, generator or audio, got {self.task!r}")
        for f in (self.clip_frames_start, self.clip_frames_end):
            if f < 1 or (f - 1) % 4:
                raise ValueError("clip frame counts must be 4k+1")
        if not 0.0 <= self.babble <= 1.0 or not 0.0 <= self.video_only_share < 1.0:
            raise ValueError("babble is a share in [0, 1] and video_only_share in [0, 1)")
        if self.latent_noise < 0 or self.adversarial < 0 or self.adversarial_start < 0:
            raise ValueError("latent_noise, adversarial and adversarial_start must be >= 0")
        if self.disc_lr_scale <= 0 or self.fine_refs_lr_scale <= 0 or self.adversarial_mouth <= 0:
            raise ValueError("disc_lr_scale, fine_refs_lr_scale and adversarial_mouth must be > 0")
        if not 0 <= self.encoder_jitter <= 1:
            raise ValueError("encoder_jitter must be in [0, 1]")
        if self.mouth_weight < 1 or self.history_noise_max < 0 or self.history_noise_max > 1:
            raise ValueError("mouth_weight must be >= 1 and history_noise_max in [0, 1]")
        if not 0.0 <= self.self_history <= 1.0:
            raise ValueError("self_history is a share in [0, 1]")
        if self.phone_delay < 0 or self.crop_seconds < 0.5:
            raise ValueError("phone_delay >= 0 and crop_seconds >= 0.5")
        if self.batch < 1 or self.lr <= 0:
            raise ValueError("batch >= 1 and lr > 0")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls(**json.loads(text))
