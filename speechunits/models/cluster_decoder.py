"""Cluster-prediction "decoder": conditioning -> the cluster id of every target frame.

With input masking (models/masking.py) this turns the autoencoder into a masked
predictor in the manner of HuBERT's first iteration: the encoder sees frames with
spans replaced by a learned vector and must predict, for the masked frames, the
k-means label of each frame of a cheap feature (`speechunits kmeans apply` on MFCCs
writes such labels as `codes/`). Predicting a masked span's labels needs the
phonetic context around it, not the frame's own detail, which is what makes the
encoder's features phonetic. A second iteration predicts the k-means labels of the
first model's own features.

The target is (B, N) long labels at 1 / frame_shift Hz; -1 marks a position that
does not count (padding, or an unmasked frame when only masked frames are scored).
The loss is the cross-entropy in nats, averaged over the positions that count.
Several label sets of the same frames (k-means of other features or of other K:
HuBERT's cluster ensembles) come as (B, N, M) labels, column 0 for the main head of
`num_classes` and column m for the head of `extra_classes[m - 1]`; the heads share
everything but their output rows, and the loss is the mean of their cross-entropies. The
speaker embedding, when the model is speaker-conditioned, is concatenated to every
frame, so speaker-dependent targets need not be encoded in the latents (the
autoencoder's own argument for its speaker-conditioned decoder).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import as_lengths, length_mask
from speechunits.models.decoders import DECODERS, Decoder, DecoderOutput, residual_convs, with_speaker

__all__ = ["ClusterDecoderConfig", "ClusterDecoder", "IGNORE_LABEL"]

IGNORE_LABEL = -1  # target positions that do not count in the loss


@dataclass
class ClusterDecoderConfig:
    num_classes: int = 100  # clusters of the target labels (k of the k-means that made them)
    frame_shift: float = 0.01  # seconds between target labels
    channels: int = 256
    layers: int = 0  # k-wide residual convolutions before the output layer (0: a linear read-out)
    kernel_size: int = 3
    extra_classes: list[int] = field(default_factory=list)  # one more head per extra label set (data.extra_target_feats)

    def __post_init__(self):
        if not isinstance(self.extra_classes, (list, tuple)):
            raise SpeechUnitsError(f"cluster decoder extra_classes must be a list of K, e.g. [50,200], got {self.extra_classes!r}")
        self.extra_classes = [int(k) for k in self.extra_classes]
        if self.num_classes < 2 or any(k < 2 for k in self.extra_classes):
            raise SpeechUnitsError(
                f"cluster decoder num_classes and extra_classes must be >= 2, got {self.num_classes} and {self.extra_classes}"
            )
        if self.kernel_size % 2 != 1:
            raise SpeechUnitsError(f"cluster decoder kernel_size must be odd, got {self.kernel_size}")
        if self.layers < 0:
            raise SpeechUnitsError(f"cluster decoder layers must be >= 0, got {self.layers}")


@DECODERS.register("cluster")
class ClusterDecoder(Decoder):
    config_class = ClusterDecoderConfig
    target_kind = "labels"

    def __init__(self, cfg: ClusterDecoderConfig, cond_dim: int, speaker_dim: int):
        super().__init__()
        self.cfg, self.speaker_dim = cfg, int(speaker_dim)
        k, width = cfg.kernel_size, cond_dim + self.speaker_dim
        self.inp = nn.Conv1d(width, cfg.channels, k, padding=k // 2) if cfg.layers else None
        self.convs = nn.ModuleList(nn.Conv1d(cfg.channels, cfg.channels, k, padding=k // 2) for _ in range(max(0, cfg.layers - 1)))
        self.heads = [cfg.num_classes, *cfg.extra_classes]  # classes per label set
        self.out = nn.Linear(cfg.channels if cfg.layers else width, sum(self.heads))

    @property
    def target_rate(self) -> float:
        return 1.0 / self.cfg.frame_shift

    def all_logits(self, cond: Tensor, speaker: Tensor | None, lengths: Tensor | None = None) -> list[Tensor]:
        """cond (B, N, C), speaker (B, S) or None, lengths (B,) -> logits (B, N, K_m) of every head."""
        lengths = as_lengths(cond, lengths)
        x = with_speaker(cond, speaker, lengths, self.speaker_dim)
        if self.inp is not None:
            x = residual_convs(x, self.inp, self.convs, lengths).transpose(1, 2)
        return list(self.out(x).split(self.heads, dim=-1))

    def logits(self, cond: Tensor, speaker: Tensor | None, lengths: Tensor | None = None) -> Tensor:
        """cond (B, N, C), speaker (B, S) or None, lengths (B,) -> logits (B, N, num_classes) of the main head."""
        return self.all_logits(cond, speaker, lengths)[0]

    def forward(self, cond: Tensor, speaker: Tensor | None, target: Tensor, target_lengths: Tensor | None = None) -> DecoderOutput:
        """cond (B, N, C), speaker (B, S), target (B, N) long labels, or (B, N, M) with one column
        per head (-1: ignored) -> DecoderOutput(loss: mean over heads of the cross-entropy in nats,
        predictions: the main head's logits (B, N, K))."""
        heads = len(self.heads)
        labels = target[..., None] if target.dim() == 2 else target
        if labels.dim() != 3 or labels.shape[2] != heads or target.dtype not in (torch.int64, torch.int32):
            if heads == 1:
                want, hint = "(B, N)", "data.target_feats must hold unit ids, e.g. kmeans apply's codes/"
            else:
                want, hint = f"(B, N, {heads})", "set data.extra_target_feats: one label dir per decoder_cfg.extra_classes entry"
            raise SpeechUnitsError(
                f"the cluster decoder predicts frame labels: the target must be {want} integers, got "
                f"{tuple(target.shape)} {target.dtype} ({hint})"
            )
        lengths = as_lengths(target, target_lengths)
        logits = self.all_logits(cond, speaker, lengths)
        labels = labels.long().masked_fill(~length_mask(lengths, target.shape[1])[..., None], IGNORE_LABEL)
        top = labels.amax(dim=(0, 1)).tolist() if labels.numel() else [IGNORE_LABEL] * heads  # one sync for all heads
        for m, (k, largest) in enumerate(zip(self.heads, top)):
            if largest >= k:
                which = "num_classes" if m == 0 else f"extra_classes[{m - 1}]"
                raise SpeechUnitsError(f"target label {largest} is out of range for decoder_cfg.{which}={k}")
        losses = []
        for m, (head, k) in enumerate(zip(logits, self.heads)):
            if top[m] == IGNORE_LABEL:  # nothing counts in this head's column
                losses.append(head.sum() * 0.0)  # keeps the graph (DDP) without a NaN
            else:
                losses.append(F.cross_entropy(head.reshape(-1, k).float(), labels[..., m].reshape(-1), ignore_index=IGNORE_LABEL))
        return DecoderOutput(loss=torch.stack(losses).mean(), predictions=logits[0], lengths=lengths)

    def generate(self, cond: Tensor, speaker: Tensor | None, lengths: Tensor, **options) -> Tensor:
        raise SpeechUnitsError(
            "a cluster-prediction model predicts labels, not audio or spectra: it cannot resynthesize "
            "(use its units with an autoencoder's decoder)"
        )
