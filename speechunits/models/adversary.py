"""A speaker adversary on the projection (training only): features that hide the speaker.

    projection (B, T', D) --(detached)--> linear --> speaker logits --> classifier loss
    projection (B, T', D) --the same linear, frozen--> speaker logits --> confusion loss

Two terms, each moving one side (the form of Tzeng et al.'s domain confusion):
- the classifier learns to tell the training speakers apart from single frames of the
  projection (cross-entropy with the true speaker; the projection is detached, so
  this moves only the classifier);
- the encoder is asked to make the classifier's guess uniform: the cross-entropy of
  its softmax against the uniform distribution over the speakers, minus log S, so the
  term is 0 when the guess is uniform and positive otherwise (the classifier is frozen
  for this term), weighted by `weight`.
Whatever in the projection identifies the speaker is pushed out while the
masked-prediction loss keeps what identifies the phone. A bounded confusion target
is used rather than a reversed gradient of the classifier's loss: with the reversal,
the encoder can raise that loss without limit by making the classifier confidently
wrong, which is how a first run on speechocean762 diverged (EXPERIMENTS.md).
Speakers are the model's training speakers (`model.speakers`).

`weight` 0 (the default) builds nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import length_mask

__all__ = ["SpeakerAdversaryConfig", "SpeakerAdversary", "AdversaryOutput"]


@dataclass
class SpeakerAdversaryConfig:
    weight: float = 0.0  # weight of the confusion term for the encoder (0: no adversary)

    def __post_init__(self):
        if not self.weight >= 0.0:
            raise SpeechUnitsError(f"speaker_adversary.weight must be >= 0, got {self.weight}")


@dataclass
class AdversaryOutput:
    """classifier: cross-entropy of the true speakers (moves the classifier only);
    confusion: cross-entropy against uniform minus log S (moves the encoder only);
    accuracy: detached fraction of valid frames whose speaker is guessed."""

    classifier: Tensor
    confusion: Tensor
    accuracy: Tensor


class SpeakerAdversary(nn.Module):
    def __init__(self, dim: int, n_speakers: int, cfg: SpeakerAdversaryConfig):
        super().__init__()
        if n_speakers < 2:
            raise SpeechUnitsError(
                f"a speaker adversary needs at least 2 training speakers (model.speakers), got {n_speakers}"
            )
        self.cfg = cfg
        self.classifier = nn.Linear(dim, n_speakers)

    def forward(self, projected: Tensor, lengths: Tensor, speaker_ids: Tensor) -> AdversaryOutput:
        """projected (B, T', D), lengths (B,), speaker_ids (B,) -> AdversaryOutput (means over valid frames)."""
        valid = length_mask(lengths.to(projected.device), projected.shape[1])
        labels = speaker_ids.to(projected.device)[:, None].expand(-1, projected.shape[1])[valid]
        frames = projected[valid]  # (N, D)
        guess = self.classifier(frames.detach()).float()
        frozen = F.linear(frames, self.classifier.weight.detach(), self.classifier.bias.detach()).float()
        if frames.shape[0] == 0:
            zero = guess.sum() * 0.0 + frozen.sum() * 0.0
            return AdversaryOutput(zero, zero, zero.detach())
        n = guess.shape[-1]
        return AdversaryOutput(
            classifier=F.cross_entropy(guess, labels),
            confusion=-F.log_softmax(frozen, dim=-1).mean(-1).mean() - math.log(n),
            accuracy=(guess.argmax(-1) == labels).float().mean().detach(),
        )
