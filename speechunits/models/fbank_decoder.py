"""Fast non-autoregressive decoder: conditioning -> filterbank frames.

For quick experiments: instead of modelling 16 kHz samples, reconstruct the
100 Hz log-mel frames (80 by default) from the conditioning features, which the
autoencoder has already upsampled to the frame rate (latent frame j covers frames
[j f, (j+1) f)). A few centred k3 convolutions with ReLU and a residual path, the
speaker embedding concatenated to every frame, a linear output; the loss is the
MSE (or L1) over valid frames and all bins. Orders of magnitude cheaper than the
WaveNet, at the price of a decoder that cannot model fine detail, so the latents
are pushed to carry more of it (speaker information included).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import as_lengths, length_mask, masked_mean, zero_padding
from speechunits.models.decoders import DECODERS, Decoder, DecoderOutput, residual_convs, with_speaker

__all__ = ["FbankDecoderConfig", "FbankDecoder"]


@dataclass
class FbankDecoderConfig:
    out_dim: int = 80
    frame_shift: float = 0.01  # seconds between target frames
    channels: int = 256
    layers: int = 3
    kernel_size: int = 3
    loss: str = "mse"  # "mse" or "l1"

    def __post_init__(self):
        if self.loss not in ("mse", "l1"):
            raise SpeechUnitsError(f"fbank decoder loss must be 'mse' or 'l1', got {self.loss!r}")
        if self.kernel_size % 2 != 1:
            raise SpeechUnitsError(f"fbank decoder kernel_size must be odd, got {self.kernel_size}")


@DECODERS.register("fbank")
class FbankDecoder(Decoder):
    config_class = FbankDecoderConfig
    target_kind = "frames"

    def __init__(self, cfg: FbankDecoderConfig, cond_dim: int, speaker_dim: int):
        super().__init__()
        self.cfg, self.speaker_dim = cfg, int(speaker_dim)
        k = cfg.kernel_size
        self.inp = nn.Conv1d(cond_dim + self.speaker_dim, cfg.channels, k, padding=k // 2)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.channels, cfg.channels, k, padding=k // 2) for _ in range(cfg.layers))
        self.out = nn.Conv1d(cfg.channels, cfg.out_dim, 1)

    @property
    def target_rate(self) -> float:
        return 1.0 / self.cfg.frame_shift

    def predict(self, cond: Tensor, speaker: Tensor | None, lengths: Tensor | None = None) -> Tensor:
        """cond (B, T, C), speaker (B, S), lengths (B,) -> frames (B, T, out_dim), zero on padding."""
        lengths = as_lengths(cond, lengths)
        h = residual_convs(with_speaker(cond, speaker, lengths, self.speaker_dim), self.inp, self.convs, lengths)
        return zero_padding(self.out(h).transpose(1, 2), lengths)

    def forward(self, cond: Tensor, speaker: Tensor | None, target: Tensor, target_lengths: Tensor | None = None) -> DecoderOutput:
        """cond (B, T, C), speaker (B, S), target (B, T, F) -> DecoderOutput(loss, frames (B, T, F))."""
        lengths = as_lengths(target, target_lengths)
        pred = self.predict(cond, speaker, lengths)
        err = pred - target.to(pred.dtype)
        err = err.pow(2) if self.cfg.loss == "mse" else err.abs()
        return DecoderOutput(loss=masked_mean(err, length_mask(lengths, target.shape[1])), predictions=pred, lengths=lengths)

    @torch.no_grad()
    def generate(self, cond: Tensor, speaker: Tensor | None, lengths: Tensor, **options) -> Tensor:
        """cond (B, T, C), speaker, lengths -> predicted frames (B, T, F)."""
        return self.predict(cond, speaker, lengths)
