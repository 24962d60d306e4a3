"""The three trained parts of Avacast in one module, so one state dict holds a whole model."""
from __future__ import annotations

from torch import nn

from engine.audio.encoder import AudioEncoder
from engine.config import EngineConfig
from engine.dit.model import DiT
from engine.vae.model import CausalVAE


class AvacastModel(nn.Module):
    def __init__(self, cfg: EngineConfig):
        super().__init__()
        self.cfg = cfg
        self.vae = CausalVAE(cfg.vae)
        self.audio = AudioEncoder(cfg.audio)
        self.dit = DiT(cfg)
