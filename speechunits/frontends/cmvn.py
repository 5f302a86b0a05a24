"""Cepstral mean (and variance) normalisation, per utterance or per speaker.

Kaldi's semantics (compute-cmvn-stats [--spk2utt] + apply-cmvn): statistics are a
frame count, a per-dimension sum and sum of squares, accumulated in float64 over
an utterance or over all of a speaker's utterances; applying them subtracts the
mean and, with norm_vars, divides by the standard deviation (variance floored at
1e-20). Per speaker is a second pass: accumulate over the speaker's utterances
first, then normalise each one with the speaker's statistics.

    stats = speaker_cmvn_stats(feats_by_utt, utt2spk)        # {spk: CmvnStats}
    normed = apply_speaker_cmvn(feats_by_utt, utt2spk, stats)  # {utt: feats}
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from speechunits.errors import SpeechUnitsError

VAR_FLOOR = 1e-20


class CmvnStats:
    """Running CMVN statistics of D-dimensional features: count, sum, sum of squares (float64)."""

    def __init__(self, dim: int):
        self.count = 0.0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.sum_sq = np.zeros(dim, dtype=np.float64)

    @property
    def dim(self) -> int:
        return self.sum.shape[0]

    def accumulate(self, feats) -> "CmvnStats":
        """Add the frames of one utterance, `(T, D)` numpy array or tensor. Returns self."""
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise SpeechUnitsError(f"CMVN: expected features of shape (T, {self.dim}), got {tuple(feats.shape)}")
        if isinstance(feats, torch.Tensor):
            x = feats.detach().to(torch.float64)
            s, sq = x.sum(0).cpu().numpy(), (x * x).sum(0).cpu().numpy()
        else:
            x = np.asarray(feats, dtype=np.float64)
            s, sq = x.sum(0), (x * x).sum(0)
        self.count += feats.shape[0]
        self.sum += s
        self.sum_sq += sq
        return self

    def merge(self, other: "CmvnStats") -> "CmvnStats":
        self.count += other.count
        self.sum += other.sum
        self.sum_sq += other.sum_sq
        return self

    @property
    def mean(self) -> np.ndarray:
        return self.sum / self.count

    @property
    def var(self) -> np.ndarray:
        """Biased (divide by count) variance, floored at 1e-20 as Kaldi does."""
        return np.maximum(self.sum_sq / self.count - self.mean**2, VAR_FLOOR)

    def transform(self, norm_vars: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset) in float64 such that normalised = feats * scale + offset."""
        if self.count < 1.0:
            raise SpeechUnitsError(f"CMVN: insufficient statistics (count = {self.count})")
        mean = self.mean
        if not norm_vars:
            return np.ones_like(mean), -mean
        scale = 1.0 / np.sqrt(self.var)
        return scale, -mean * scale

    def apply(self, feats, norm_vars: bool = False):
        """Normalise `(..., D)` features (numpy or tensor; same type and dtype back)."""
        scale, offset = self.transform(norm_vars)
        if isinstance(feats, torch.Tensor):
            s = torch.as_tensor(scale, dtype=feats.dtype, device=feats.device)
            o = torch.as_tensor(offset, dtype=feats.dtype, device=feats.device)
            return feats * s + o if norm_vars else feats + o
        x = np.asarray(feats)
        return (x * scale + offset).astype(x.dtype) if norm_vars else (x + offset).astype(x.dtype)

    def to_kaldi(self) -> np.ndarray:
        """Kaldi's (2, D + 1) layout: [sums, count; sums of squares, 0]."""
        out = np.zeros((2, self.dim + 1))
        out[0, :-1], out[0, -1], out[1, :-1] = self.sum, self.count, self.sum_sq
        return out

    @classmethod
    def from_kaldi(cls, stats: np.ndarray) -> "CmvnStats":
        stats = np.asarray(stats, dtype=np.float64)
        if stats.ndim != 2 or stats.shape[0] != 2:
            raise SpeechUnitsError(f"CMVN: Kaldi statistics have shape (2, D+1), got {stats.shape}")
        out = cls(stats.shape[1] - 1)
        out.sum, out.count, out.sum_sq = stats[0, :-1].copy(), float(stats[0, -1]), stats[1, :-1].copy()
        return out


def utterance_cmvn(feats, lengths: torch.Tensor | None = None, norm_vars: bool = False):
    """Per-utterance CMVN of `(T, D)` (numpy or tensor) or a batch `(B, T, D)` with lengths."""
    if feats.ndim == 2:
        return CmvnStats(feats.shape[1]).accumulate(feats).apply(feats, norm_vars)
    if not isinstance(feats, torch.Tensor):
        raise TypeError("a batch (B, T, D) must be a tensor")
    lens = [feats.shape[1]] * feats.shape[0] if lengths is None else lengths.tolist()
    out = torch.zeros_like(feats)
    for b, n in enumerate(lens):
        if n > 0:
            out[b, :n] = CmvnStats(feats.shape[2]).accumulate(feats[b, :n]).apply(feats[b, :n], norm_vars)
    return out


def _speaker_of(utt: str, utt2spk: Mapping[str, str]) -> str:
    try:
        return utt2spk[utt]
    except KeyError:
        raise SpeechUnitsError(f"utterance {utt} has no speaker in utt2spk") from None


def speaker_cmvn_stats(feats: Mapping[str, object], utt2spk: Mapping[str, str]) -> dict[str, CmvnStats]:
    """Statistics per speaker over all of its utterances in `feats` ({utt: (T, D)})."""
    stats: dict[str, CmvnStats] = {}
    for utt, x in feats.items():
        spk = _speaker_of(utt, utt2spk)
        if spk not in stats:
            stats[spk] = CmvnStats(x.shape[1])
        stats[spk].accumulate(x)
    return stats


def apply_speaker_cmvn(
    feats: Mapping[str, object],
    utt2spk: Mapping[str, str],
    stats: Mapping[str, CmvnStats] | None = None,
    norm_vars: bool = False,
) -> dict[str, object]:
    """Normalise each utterance with its speaker's statistics (computed here if not given)."""
    if stats is None:
        stats = speaker_cmvn_stats(feats, utt2spk)
    out = {}
    for utt, x in feats.items():
        spk = _speaker_of(utt, utt2spk)
        if spk not in stats:
            raise SpeechUnitsError(f"utterance {utt}: no CMVN statistics for speaker {spk}")
        out[utt] = stats[spk].apply(x, norm_vars)
    return out
