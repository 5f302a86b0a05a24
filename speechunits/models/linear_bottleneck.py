"""Plain autoencoder bottleneck (`bottleneck: ae`): a linear projection to a small dimension.

The only constraint on the latents is their dimension (64 by default, as in the
paper); no loss terms.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from speechunits.models.bottleneck import BOTTLENECKS, Bottleneck, BottleneckOutput
from speechunits.models.common import as_lengths, zero_padding

__all__ = ["AEConfig", "AEBottleneck"]


@dataclass
class AEConfig:
    dim: int = 64


@BOTTLENECKS.register("ae")
class AEBottleneck(Bottleneck):
    config_class = AEConfig

    def __init__(self, input_dim: int, cfg: AEConfig):
        super().__init__(input_dim, cfg)
        self.proj = nn.Linear(input_dim, cfg.dim)

    def bottleneck(self, x: Tensor, lengths: Tensor | None, update: bool, record: bool = False) -> BottleneckOutput:
        """x: (B, T, C) -> latents (B, T, D) = projection (zero on padding)."""
        lengths = as_lengths(x, lengths)
        z = zero_padding(self.proj(x), lengths)
        return BottleneckOutput(latents=z, projected=z)
