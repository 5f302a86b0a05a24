"""A speaker adversary on the projection (training only): features that hide the speaker.

    projection (B, T', D) --gradient reversal (x -weight)--> linear --> speaker logits (B, T', S)
    loss = cross-entropy of each valid frame's speaker (nats), accuracy for logging

The classifier learns to tell the training speakers apart from single frames of the
projection; the gradient that reaches the encoder is reversed and scaled by `weight`
(Ganin and Lempitsky 2015), so the encoder learns to make that harder: whatever in
the projection identifies the speaker is pushed out, while the masked-prediction
loss keeps what identifies the phone. The speaker-conditioned decoder already makes
speaker detail unnecessary; this makes it costly. Speakers are the model's training
speakers (`model.speakers`).

`weight` 0 (the default) builds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import length_mask

__all__ = ["SpeakerAdversaryConfig", "SpeakerAdversary", "reverse_gradient"]


@dataclass
class SpeakerAdversaryConfig:
    weight: float = 0.0  # scale of the reversed gradient into the encoder (0: no adversary)

    def __post_init__(self):
        if not self.weight >= 0.0:
            raise SpeechUnitsError(f"speaker_adversary.weight must be >= 0, got {self.weight}")


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return -ctx.scale * grad, None


def reverse_gradient(x: Tensor, scale: float) -> Tensor:
    """Identity forward; the gradient comes back multiplied by -scale."""
    return _ReverseGradient.apply(x, float(scale))


class SpeakerAdversary(nn.Module):
    def __init__(self, dim: int, n_speakers: int, cfg: SpeakerAdversaryConfig):
        super().__init__()
        if n_speakers < 2:
            raise SpeechUnitsError(
                f"a speaker adversary needs at least 2 training speakers (model.speakers), got {n_speakers}"
            )
        self.cfg = cfg
        self.classifier = nn.Linear(dim, n_speakers)

    def forward(self, projected: Tensor, lengths: Tensor, speaker_ids: Tensor) -> tuple[Tensor, Tensor]:
        """projected (B, T', D), lengths (B,), speaker_ids (B,) -> (loss: mean cross-entropy
        over valid frames, accuracy: detached fraction of valid frames whose speaker is guessed)."""
        logits = self.classifier(reverse_gradient(projected, self.cfg.weight)).float()
        valid = length_mask(lengths.to(projected.device), projected.shape[1])
        labels = speaker_ids.to(projected.device)[:, None].expand(-1, projected.shape[1])
        if not bool(valid.any()):
            return logits.sum() * 0.0, logits.new_zeros(())
        loss = F.cross_entropy(logits[valid], labels[valid])
        accuracy = (logits[valid].argmax(-1) == labels[valid]).float().mean().detach()
        return loss, accuracy
