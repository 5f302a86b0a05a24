"""Chunked encoding of long inputs that equals whole-utterance encoding.

The encoder is a stack of convolutions (speechunits/models/encoder.py): output
frame j of a layer with kernel k, dilation d, span e = (k - 1) d + 1, stride r and
left padding p = (e - r) / 2 reads input frames [j r - p, j r - p + e - 1]. Walking
that map down the stack from one output frame gives the encoder's receptive field:
output frame j of the whole stack (total stride R) depends exactly on input frames

    [j R - left, j R + (R - 1) + right]

Banded self-attention on top of the convolutions (EncoderConfig.context) widens
the field by layers x window output frames each side, and nothing else changes.

So an hour of audio can be encoded in chunks of output frames [j0, j1): feed
input frames [j0 R - left', j1 R + right') (clipped to the utterance), where
left' and right' are the context rounded up to a multiple of R so every chunk
starts on a stride boundary, and keep the outputs that belong to [j0, j1). The
zero padding a layer applies at a chunk's edge only reaches outputs whose
receptive field leaves the chunk, i.e. the discarded context; at the utterance's
true edges the chunk edges are the utterance's edges, with the same padding as a
whole-file pass. The kept outputs are therefore the whole-file outputs (up to
float rounding of differently shaped matmuls), and memory is bounded by the chunk
size instead of the utterance length. The exception is `norm: instance`, whose
statistics span the utterance: such an encoder is run over the whole utterance in one
pass, and its memory grows with the utterance's length (linearly, a context network's
tiled attention included).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from speechunits.models.encoder import Encoder, EncoderConfig

__all__ = ["ReceptiveField", "receptive_field", "encode_chunked", "chunk_spans"]


@dataclass(frozen=True)
class ReceptiveField:
    """Input frames an output frame needs: `left` before its own span [j R, (j+1) R),
    `right` after it; `stride` = R. padded_left / padded_right round them up to multiples of R."""

    left: int
    right: int
    stride: int

    @property
    def padded_left(self) -> int:
        return -(-self.left // self.stride) * self.stride

    @property
    def padded_right(self) -> int:
        return -(-self.right // self.stride) * self.stride

    @property
    def size(self) -> int:
        """Input frames one output frame sees in all."""
        return self.left + self.stride + self.right


def receptive_field(cfg: EncoderConfig) -> ReceptiveField:
    """The encoder's receptive field from its layer list (see the module docstring)."""
    lo, hi = 0, 0
    for spec in reversed(cfg.specs):
        lo = lo * spec.stride - spec.pad_left
        hi = hi * spec.stride - spec.pad_left + spec.span - 1  # span: (kernel - 1) x dilation + 1
    stride = cfg.total_stride
    reach = cfg.context.reach * stride  # banded self-attention on top: `reach` output frames each side
    return ReceptiveField(left=-lo + reach, right=hi - (stride - 1) + reach, stride=stride)


def chunk_spans(num_inputs: int, field: ReceptiveField, chunk_outputs: int) -> list[tuple[int, int, int, int]]:
    """Chunks of an utterance of `num_inputs` input frames, as tuples
    (out_start, out_end, in_start, in_end): outputs [out_start, out_end) are computed
    from inputs [in_start, in_end); in_start is a multiple of the stride."""
    R = field.stride
    n_out = -(-num_inputs // R)
    step = max(1, int(chunk_outputs))
    spans = []
    for j0 in range(0, n_out, step):
        j1 = min(n_out, j0 + step)
        a = max(0, j0 * R - field.padded_left)
        b = min(num_inputs, j1 * R + field.padded_right)
        spans.append((j0, j1, a, b))
    return spans


@torch.no_grad()
def encode_chunked(encoder: Encoder, feats: Tensor, chunk_outputs: int) -> Tensor:
    """One utterance's input frames feats: (T, F) (or (N,) waveform) -> encoder output
    (ceil(T / R), C), computed chunk by chunk of `chunk_outputs` output frames (in one
    pass for `norm: instance`, whose statistics span the utterance)."""
    if feats.dim() == 1:
        feats = feats.unsqueeze(-1)
    if encoder.cfg.norm == "instance":  # statistics over the whole utterance: no chunk can reproduce them
        return encoder(feats.unsqueeze(0), inference=True).values[0]
    field = receptive_field(encoder.cfg)
    T = feats.shape[0]
    spans = chunk_spans(T, field, chunk_outputs)
    n_out = spans[-1][1] if spans else 0
    out = feats.new_empty(n_out, encoder.out_dim)
    for j0, j1, a, b in spans:
        y = encoder(feats[a:b].unsqueeze(0), inference=True).values[0]
        k0 = j0 - a // field.stride
        out[j0:j1] = y[k0 : k0 + (j1 - j0)]
    return out
