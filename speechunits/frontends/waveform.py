"""The raw-waveform "front end": samples as one-dimensional features at the sample rate."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechunits.frontends.base import FRONTENDS, Features, FrontEnd, as_batch


@dataclass
class WaveformConfig:
    """sample_rate: of the input (frame shift = 1 / sample_rate); scale: multiplies the samples."""

    sample_rate: int = 16000
    scale: float = 1.0


@FRONTENDS.register("waveform")
class Waveform(FrontEnd):
    """Passthrough: `(B, N) -> (B, N, 1)`, one frame per sample, zero beyond each length."""

    config_class = WaveformConfig

    def __init__(self, config: WaveformConfig | None = None):
        super().__init__()
        self.config = config or WaveformConfig()

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def frame_shift(self) -> float:
        return 1.0 / self.config.sample_rate

    @property
    def feature_dim(self) -> int:
        return 1

    def num_frames(self, num_samples):
        return num_samples

    @torch.no_grad()
    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> Features:
        """waveform: (B, N) float, lengths: (B,) -> Features (B, N, 1)."""
        x, lens = as_batch(waveform, lengths)
        feats = (x * self.config.scale).unsqueeze(-1)
        if lengths is not None:
            valid = torch.arange(x.shape[1], device=x.device)[None, :] < torch.tensor(lens, device=x.device)[:, None]
            feats = feats * valid.unsqueeze(-1)
        counts = torch.tensor(lens, dtype=torch.long, device=x.device)
        return Features(feats, counts, self.frame_shift)
