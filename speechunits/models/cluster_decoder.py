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
The loss is the cross-entropy in nats, averaged over the positions that count. The
speaker embedding, when the model is speaker-conditioned, is concatenated to every
frame, so speaker-dependent targets need not be encoded in the latents (the
autoencoder's own argument for its speaker-conditioned decoder).
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def __post_init__(self):
        if self.num_classes < 2:
            raise SpeechUnitsError(f"cluster decoder num_classes must be >= 2, got {self.num_classes}")
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
        self.out = nn.Linear(cfg.channels if cfg.layers else width, cfg.num_classes)

    @property
    def target_rate(self) -> float:
        return 1.0 / self.cfg.frame_shift

    def logits(self, cond: Tensor, speaker: Tensor | None, lengths: Tensor | None = None) -> Tensor:
        """cond (B, N, C), speaker (B, S) or None, lengths (B,) -> logits (B, N, num_classes)."""
        lengths = as_lengths(cond, lengths)
        x = with_speaker(cond, speaker, lengths, self.speaker_dim)
        if self.inp is not None:
            x = residual_convs(x, self.inp, self.convs, lengths).transpose(1, 2)
        return self.out(x)

    def forward(self, cond: Tensor, speaker: Tensor | None, target: Tensor, target_lengths: Tensor | None = None) -> DecoderOutput:
        """cond (B, N, C), speaker (B, S), target (B, N) long labels (-1: ignored)
        -> DecoderOutput(loss: mean cross-entropy in nats, predictions: logits (B, N, K))."""
        if target.dim() != 2 or target.dtype not in (torch.int64, torch.int32):
            raise SpeechUnitsError(
                f"the cluster decoder predicts frame labels: the target must be (B, N) integers, got "
                f"{tuple(target.shape)} {target.dtype} (data.target_feats must hold unit ids, e.g. kmeans apply's codes/)"
            )
        lengths = as_lengths(target, target_lengths)
        logits = self.logits(cond, speaker, lengths)
        labels = target.long().masked_fill(~length_mask(lengths, target.shape[1]), IGNORE_LABEL)
        if bool((labels >= self.cfg.num_classes).any()):
            raise SpeechUnitsError(
                f"target label {int(labels.max())} is out of range for decoder_cfg.num_classes={self.cfg.num_classes}"
            )
        counted = labels != IGNORE_LABEL
        if not bool(counted.any()):
            loss = logits.sum() * 0.0  # keeps the graph (DDP) without a NaN
        else:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE_LABEL)
        return DecoderOutput(loss=loss, predictions=logits, lengths=lengths)

    def generate(self, cond: Tensor, speaker: Tensor | None, lengths: Tensor, **options) -> Tensor:
        raise SpeechUnitsError(
            "a cluster-prediction model predicts labels, not audio or spectra: it cannot resynthesize "
            "(use its units with an autoencoder's decoder)"
        )
