"""Two-view invariance: the same crop warped twice should give the same projection.

    feats (B, T, F) --two frequency warps, one span mask--> (2B, T, F)
        --encoder, bottleneck--> projections a (B, T', D), b (B, T', D)
        --> loss "cosine":      mean over valid frames of 1 - cos(a_t, b_t)
        loss "contrastive": InfoNCE, a_t must pick b_t among the frames of b's utterance
                            more than `exclude` frames away from t (and vice versa)

The masked-prediction objective asks for the same labels whatever the warp, but only
through the decoder, and only on masked frames: speaker detail can stay in the
projection as long as the decoder can ignore it. This term asks for it directly, on
every frame: each training crop is warped with two independent factors (two vocal
tract lengths, models/augment.py), both copies get the same mask and both predict
the labels, and the projections of the two copies are pulled together frame by
frame. "cosine" only pulls; "contrastive" also pushes frame t of one copy away from
the other frames of the other copy (temperature `temperature`), except its
neighbours within `exclude` frames, which are mostly the same phone: an
across-speaker ABX triple in miniature (A and X one frame in two voices, B another
frame in X's voice). It is the idea of ContentVec (Qian et al. 2022), which pulls together the
features of an utterance and of its voice-converted copy; a frequency warp is our
CPU-cheap voice conversion. The prediction loss keeps the projection from
collapsing to a constant. Each step encodes twice the crops, so a run with
`data.batch_size=8` costs what one without the term costs at 16.

`weight` 0 (the default) turns the term and the second copy off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import length_mask

__all__ = ["InvarianceConfig", "INVARIANCE_LOSSES", "frame_disagreement", "frame_contrast", "two_view_loss"]

INVARIANCE_LOSSES = ("cosine", "contrastive")


@dataclass
class InvarianceConfig:
    weight: float = 0.0  # weight of the two-view term in the loss (0: off, one copy per crop)
    loss: str = "cosine"  # "cosine" (pull the copies together) or "contrastive" (InfoNCE within the utterance)
    temperature: float = 0.1  # contrastive: softmax temperature over cosine similarities
    exclude: int = 5  # contrastive: frames within this distance of t are neither positive nor negative

    def __post_init__(self):
        if not self.weight >= 0.0:
            raise SpeechUnitsError(f"invariance.weight must be >= 0, got {self.weight}")
        if self.loss not in INVARIANCE_LOSSES:
            raise SpeechUnitsError(f"invariance.loss must be one of {', '.join(INVARIANCE_LOSSES)}, got {self.loss!r}")
        if not self.temperature > 0.0:
            raise SpeechUnitsError(f"invariance.temperature must be > 0, got {self.temperature}")
        if self.exclude < 0:
            raise SpeechUnitsError(f"invariance.exclude must be >= 0, got {self.exclude}")


def two_view_loss(cfg: InvarianceConfig, a: Tensor, b: Tensor, lengths: Tensor) -> Tensor:
    """The configured term for views a, b (B, T, D) with lengths (B,) -> scalar."""
    if cfg.loss == "contrastive":
        return 0.5 * (frame_contrast(a, b, lengths, cfg.temperature, cfg.exclude)
                      + frame_contrast(b, a, lengths, cfg.temperature, cfg.exclude))
    return frame_disagreement(a, b, lengths)


def frame_disagreement(a: Tensor, b: Tensor, lengths: Tensor) -> Tensor:
    """a, b: (B, T, D) two views' frames, lengths (B,) -> scalar mean of 1 - cos(a_t, b_t)
    over the valid frames (0 when there are none)."""
    if a.shape != b.shape:
        raise SpeechUnitsError(f"two views must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    valid = length_mask(lengths.to(a.device), a.shape[1])
    cos = F.cosine_similarity(a.float(), b.float(), dim=-1, eps=1e-6)
    if not bool(valid.any()):
        return cos.sum() * 0.0
    return (1.0 - cos)[valid].mean()


def frame_contrast(a: Tensor, b: Tensor, lengths: Tensor, temperature: float, exclude: int) -> Tensor:
    """a, b: (B, T, D), lengths (B,) -> scalar mean over valid frames t of
    -log softmax_s(cos(a_t, b_s) / temperature)[s = t], s over the valid frames of the
    same utterance with s = t or |s - t| > exclude (0 when there are none)."""
    if a.shape != b.shape:
        raise SpeechUnitsError(f"two views must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    T = a.shape[1]
    valid = length_mask(lengths.to(a.device), T)  # (B, T)
    an = F.normalize(a.float(), dim=-1, eps=1e-6)
    bn = F.normalize(b.float(), dim=-1, eps=1e-6)
    logits = torch.bmm(an, bn.transpose(1, 2)) / temperature  # (B, T anchors, T candidates)
    steps = torch.arange(T, device=a.device)
    gap = (steps[:, None] - steps[None, :]).abs()
    candidate = ((gap == 0) | (gap > exclude))[None] & valid[:, None, :]  # (B, T, T)
    logits = logits.masked_fill(~candidate, float("-inf"))
    log_p = torch.diagonal(logits, dim1=1, dim2=2) - torch.logsumexp(logits, dim=-1)  # (B, T)
    if not bool(valid.any()):
        return logits.new_zeros(()) + (an.sum() + bn.sum()) * 0.0
    return -log_p[valid].mean()
