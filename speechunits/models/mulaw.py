"""Mu-law companding and quantisation (ITU-T G.711 style, as in WaveNet).

    y    = sign(x) * ln(1 + mu |x|) / ln(1 + mu)          x in [-1, 1]
    code = floor((y + 1) / 2 * mu + 0.5)                  in {0, ..., mu}
    x'   = sign(y') * ((1 + mu)^|y'| - 1) / mu,  y' = 2 code / mu - 1

with mu = Q - 1 for Q quantisation levels (256 by default). Decoding returns the
centre of the code's bin in the companded domain, so the round-trip error of a
sample is at most half a bin there; it grows with |x| in the linear domain
(fine steps near silence, coarse ones for loud samples), which is the point.
Inputs outside [-1, 1] are clipped.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["mulaw_encode", "mulaw_decode", "mulaw_compand", "mulaw_expand"]


def mulaw_compand(x: Tensor, quantization_channels: int = 256) -> Tensor:
    """Float waveform in [-1, 1] -> companded float in [-1, 1] (same shape)."""
    mu = quantization_channels - 1
    x = x.clamp(-1.0, 1.0)
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mulaw_expand(y: Tensor, quantization_channels: int = 256) -> Tensor:
    """Inverse of `mulaw_compand`: companded float in [-1, 1] -> waveform."""
    mu = quantization_channels - 1
    return torch.sign(y) * (torch.pow(1.0 + mu, y.abs()) - 1.0) / mu


def mulaw_encode(x: Tensor, quantization_channels: int = 256) -> Tensor:
    """Float waveform (any shape) in [-1, 1] -> long codes in [0, Q-1] (same shape)."""
    mu = quantization_channels - 1
    y = mulaw_compand(x.float() if not x.is_floating_point() else x, quantization_channels)
    codes = torch.floor((y + 1.0) / 2.0 * mu + 0.5).long()
    return codes.clamp_(0, mu)


def mulaw_decode(codes: Tensor, quantization_channels: int = 256, dtype: torch.dtype = torch.float32) -> Tensor:
    """Long codes in [0, Q-1] (any shape) -> float waveform in [-1, 1]."""
    mu = quantization_channels - 1
    y = 2.0 * codes.to(dtype) / mu - 1.0
    return mulaw_expand(y, quantization_channels)
