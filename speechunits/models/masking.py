"""Span masking of the input frames (training only), for masked prediction.

    feats (B, T, F) --SpanMasking--> feats with spans replaced by a learned vector,
                                     mask (B, T) bool, True on replaced frames

Each valid frame starts a span with probability `prob`; a span covers `span`
frames (spans may overlap and are clipped at the utterance's end), so about
1 - (1 - prob) ** span of the frames are masked (0.065 and 10: 49 %, HuBERT's
setting). The replacement is one learned vector in the input space, so the
encoder cannot tell a masked frame by its statistics alone and must predict from
context. Masks come from torch's global generator, which the trainer seeds and
checkpoints, so a resumed run draws the same masks. At inference (eval mode) or
with prob 0 nothing is masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import as_lengths, length_mask

__all__ = ["MaskingConfig", "SpanMasking", "MASK_LOSSES"]

MASK_LOSSES = ("masked", "all")


@dataclass
class MaskingConfig:
    prob: float = 0.0  # probability that a frame starts a masked span (0: no masking)
    span: int = 10  # frames per span
    loss_on: str = "masked"  # a labels decoder scores "masked" frames only, or "all" frames

    def __post_init__(self):
        if not 0.0 <= self.prob < 1.0:
            raise SpeechUnitsError(f"masking.prob must be in [0, 1), got {self.prob}")
        if self.span < 1:
            raise SpeechUnitsError(f"masking.span must be >= 1, got {self.span}")
        if self.loss_on not in MASK_LOSSES:
            raise SpeechUnitsError(f"masking.loss_on must be one of {', '.join(MASK_LOSSES)}, got {self.loss_on!r}")


class SpanMasking(nn.Module):
    def __init__(self, input_dim: int, cfg: MaskingConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Parameter(torch.zeros(input_dim)) if cfg.prob > 0 else None

    @property
    def active(self) -> bool:
        return self.training and self.embedding is not None

    def draw(self, lengths: Tensor, max_len: int) -> Tensor:
        """(B,) lengths -> (B, max_len) bool mask of spans, only on valid frames."""
        B = lengths.shape[0]
        starts = torch.rand(B, max_len).to(lengths.device) < self.cfg.prob
        mask = starts.clone()
        for offset in range(1, min(self.cfg.span, max_len)):
            mask[:, offset:] |= starts[:, :-offset]
        return mask & length_mask(lengths, max_len)

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """feats (B, T, F) frames, lengths (B,) -> (feats with masked frames replaced, mask (B, T)),
        or (feats, None) when inactive (eval mode, prob 0, or waveform input (B, N))."""
        if not self.active or feats.dim() != 3:
            return feats, None
        mask = self.draw(as_lengths(feats, lengths), feats.shape[1])
        return self.replace(feats, mask), mask

    def replace(self, feats: Tensor, mask: Tensor) -> Tensor:
        """feats (B, T, F), mask (B, T) bool -> feats with the masked frames replaced by the learned vector."""
        return torch.where(mask[..., None], self.embedding.to(feats.dtype), feats)
