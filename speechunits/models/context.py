"""A local self-attention context network over the encoder's frames.

HuBERT and wav2vec 2.0 put a Transformer on top of their convolutional front: the
masked frames are predicted from the whole crop, not only from the convolutions'
receptive field. Here the same sits at the top of the encoder (EncoderConfig.context),
in a form that keeps the encoder's contracts:

- Attention is banded: frame t attends to frames t - window .. t + window of its own
  utterance. An output frame therefore depends on a bounded span of input (layers x
  window frames each side, on top of the convolutions' field), so chunked encoding of
  long audio (units/chunking.py) still equals the whole-utterance pass, and a model
  trained on 2 s crops sees the same amount of context in a 20 s utterance.
- Positions are relative: each head adds a learned bias per offset -window..window
  to its attention scores (no absolute positions, which crops would not teach).
- Padding frames are never attended to, so a batch gives each utterance's outputs
  exactly as a lone pass does.

Each layer is pre-norm: x + Attention(LayerNorm(x)), then x + FeedForward(LayerNorm(x))
(GELU, `ff_mult` x width); a final LayerNorm closes the stack.

Training crops should be longer than 2 x layers x window frames, or no training frame
sees the full context that inference gives it (a 2 s crop at 100 Hz holds 200 frames).
The scores are computed in tiles: the queries in blocks of `tile` frames, each block
against the keys its band can reach (tile + 2 x window frames). At inference one tile's
scores, (B, heads, tile, tile + 2 x window) floats, exist at a time, beside a boolean mask
of the band, (B, T, tile + 2 x window); in training autograd keeps every tile's scores for
the backward pass. Either way memory grows linearly with the utterance's length instead
of with its square. A sequence of at most `tile` frames is one tile (the dense form); the
tiling changes no result (with dropout on, only which weights a draw drops).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import as_lengths, length_mask, zero_padding

__all__ = ["ContextConfig", "LocalTransformer"]


@dataclass
class ContextConfig:
    layers: int = 0  # 0: no context network (the convolutional encoder alone)
    heads: int = 4
    window: int = 100  # frames each side a frame attends to (at the encoder's output rate)
    ff_mult: int = 4  # feed-forward width = ff_mult x channels
    dropout: float = 0.0  # on attention weights and feed-forward activations (training only)
    tile: int = 512  # query frames per block of attention scores (memory; results equal, dropout draws aside)

    def __post_init__(self):
        if self.layers < 0 or self.heads < 1 or self.window < 1 or self.ff_mult < 1 or self.tile < 1:
            raise SpeechUnitsError(
                f"encoder.context: need layers >= 0, heads >= 1, window >= 1, ff_mult >= 1, tile >= 1; got "
                f"layers={self.layers}, heads={self.heads}, window={self.window}, ff_mult={self.ff_mult}, tile={self.tile}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise SpeechUnitsError(f"encoder.context.dropout must be in [0, 1), got {self.dropout}")

    @property
    def reach(self) -> int:
        """Output frames each side one output frame of the stack depends on."""
        return self.layers * self.window


class _Block(nn.Module):
    def __init__(self, channels: int, cfg: ContextConfig):
        super().__init__()
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        self.ff_in = nn.Linear(channels, cfg.ff_mult * channels)
        self.ff_out = nn.Linear(cfg.ff_mult * channels, channels)

    def feed_forward(self, x: Tensor, dropout: float = 0.0) -> Tensor:
        """x: (B, T, C) -> (B, T, C), the residual branch's second half (before the sum)."""
        return self.ff_out(F.dropout(F.gelu(self.ff_in(self.norm2(x))), dropout, training=dropout > 0))

    def forward(self, x: Tensor, bands: list[tuple[slice, slice, Tensor, Tensor]], position_bias: Tensor,
                dropout: float = 0.0) -> Tensor:
        """x: (B, T, C); bands: (queries, keys, blocked (B, 1, Q, K) bool, relative (Q, K) long)
        per tile, the tiles covering the T query frames once; position_bias: (H, 2 W + 1), the
        score added per relative offset; dropout: probability for this call (0 at inference)
        -> (B, T, C). Each tile's scores, (B, H, Q, K), exist only while it is attended."""
        B, T, C = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, T, C / H) each
        parts = []
        for rows, cols, blocked, relative in bands:
            bias = position_bias[:, relative][None].masked_fill(blocked, float("-inf")).to(q.dtype)  # (B, H, Q, K)
            parts.append(F.scaled_dot_product_attention(q[:, :, rows], k[:, :, cols], v[:, :, cols], attn_mask=bias, dropout_p=dropout))
        attended = torch.cat(parts, dim=2)  # (B, H, T, C / H)
        x = x + self.out(attended.transpose(1, 2).reshape(B, T, C))
        return x + self.feed_forward(x, dropout)


class LocalTransformer(nn.Module):
    """Banded self-attention layers over (B, T, C) frames; see the module docstring."""

    def __init__(self, channels: int, cfg: ContextConfig):
        super().__init__()
        if channels % cfg.heads:
            raise SpeechUnitsError(f"encoder.context.heads ({cfg.heads}) must divide the encoder's channels ({channels})")
        self.cfg = cfg
        self.blocks = nn.ModuleList(_Block(channels, cfg) for _ in range(cfg.layers))
        self.position_bias = nn.Parameter(torch.zeros(cfg.layers, cfg.heads, 2 * cfg.window + 1))
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor, lengths: Tensor, inference: bool = False) -> Tensor:
        """x: (B, T, C) encoder frames with zero padding, lengths: (B,) -> (B, T, C), padding
        zeroed. Dropout only in training mode and not for `inference` (encode() in any mode)."""
        T, W, tile = x.shape[1], self.cfg.window, self.cfg.tile
        lengths = as_lengths(x, lengths)
        valid = length_mask(lengths, T)  # (B, T)
        bands = []  # (queries, keys, blocked (B, 1, Q, K), relative offsets (Q, K)) per tile
        for start in range(0, max(T, 1), tile):  # one (empty) tile for T = 0
            rows, cols = slice(start, min(T, start + tile)), slice(max(0, start - W), min(T, start + tile + W))
            query = torch.arange(rows.start, rows.stop, device=x.device)[:, None]
            offset = torch.arange(cols.start, cols.stop, device=x.device)[None, :] - query  # (Q, K): key - query
            allowed = (offset.abs() <= W)[None] & valid[:, None, cols] & valid[:, rows, None]
            blocked = ~(allowed | (offset == 0)[None])  # a padding frame sees itself only
            bands.append((rows, cols, blocked[:, None], offset.clamp(-W, W) + W))
        dropout = self.cfg.dropout if self.training and not inference else 0.0
        for i, block in enumerate(self.blocks):
            x = block(x, bands, self.position_bias[i], dropout)
        return zero_padding(self.norm(x), lengths)
