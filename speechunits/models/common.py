"""Small pieces every model module shares: length masks, probe taps, DDP helpers.

Padded batches travel as a tensor (B, T, ...) plus `lengths` (B,) long: frame t
of utterance b is real when t < lengths[b]. Everything beyond is padding and is
kept out of losses and statistics (`length_mask`, `masked_mean`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "Tap",
    "length_mask",
    "full_lengths",
    "as_lengths",
    "masked_mean",
    "zero_padding",
    "distributed",
    "all_reduce_sum",
    "broadcast_from_zero",
]


@dataclass
class Tap:
    """A probe tap: what a probe (or unit extraction) reads from the model.

    values:      (B, T, C) the tapped activations (padding frames are zero).
    lengths:     (B,) long, valid frames per utterance.
    frame_shift: seconds between frames; frame t is centred at (t + 0.5) * frame_shift.
    """

    values: Tensor
    lengths: Tensor
    frame_shift: float

    def detach(self) -> "Tap":
        return Tap(self.values.detach(), self.lengths, self.frame_shift)


def full_lengths(x: Tensor) -> Tensor:
    """Lengths (B,) for an unpadded batch x: (B, T, ...)."""
    return torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)


def as_lengths(x: Tensor, lengths: Tensor | None) -> Tensor:
    """`lengths` as a long tensor on x's device; all T frames valid when None."""
    if lengths is None:
        return full_lengths(x)
    return lengths.to(device=x.device, dtype=torch.long)


def length_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, max_len) bool, True on valid frames."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] < lengths[:, None]


def zero_padding(x: Tensor, lengths: Tensor) -> Tensor:
    """x: (B, T, ...) with frames t >= lengths[b] set to zero (out of place)."""
    mask = length_mask(lengths.to(x.device), x.shape[1])
    return x * mask.view(*mask.shape, *([1] * (x.dim() - 2))).to(x.dtype)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` (B, T, ...) over the positions where mask (B, T) is True.

    Trailing dimensions are averaged too, so an MSE over (B, T, D) is the mean over
    valid frames and all D dimensions. An empty mask gives 0 (not NaN), so a batch
    of empty utterances does not poison the loss.
    """
    m = mask.to(values.dtype)
    while m.dim() < values.dim():
        m = m.unsqueeze(-1)
    per_frame = math.prod(values.shape[2:])
    total = (values * m).sum()
    count = m.sum() * per_frame
    return total / count.clamp_min(1.0)


def distributed() -> bool:
    """True when torch.distributed is initialised (statistics must be synchronised)."""
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum `t` over all ranks in place when running distributed; returns t."""
    if distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_from_zero(t: Tensor) -> Tensor:
    """Overwrite `t` on every rank with rank 0's value (in place) when distributed."""
    if distributed():
        dist.broadcast(t, src=0)
    return t
