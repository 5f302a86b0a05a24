"""Speaker swap of input frames by cluster-conditional means (training only).

    feats (B, T, F), labels (B, T), speaker ids (B,) --SpeakerShift--> the same crops,
    some of them moved as another training speaker would place the same clusters

A masked-prediction model predicts k-means labels of its input; the labels tell, for
every frame, which cluster (a phone-like class) it belongs to. The module keeps, for
every training speaker s and cluster c, the sum and count of the input frames it has
seen (accumulated over training, from the unperturbed crops: the inputs are fixed, so
these are the speaker's cluster means on the training data seen so far) and from them
each speaker's offset from the cluster's mean over all speakers,

    d[s, c] = (sum[s, c] - n[s, c] m[c]) / (n[s, c] + shrink),   m[c] = sum_s sum[s, c] / sum_s n[s, c],

shrunk toward 0 when the speaker has few frames of that cluster. A share `prob` of the
crops is then re-voiced as a random other training speaker s': every frame t of
cluster c_t moves by d[s', c_t] - d[s, c_t] (a moving average of `smooth` frames over
time, so a flickering label does not make the spectrum flicker), and the targets stay
those of the original audio. The model thus sees each cluster where other speakers put
it (formant positions relative to each other, spectral tilt, voice quality, accent: what
a frequency warp alone does not move) and must predict the same label. Inputs are
expected with speaker mean normalisation (as the masked pipeline reads them), so the
offsets are the class-conditional part of what separates the speakers.

Under torch.distributed the batch's sums are added up over the ranks, so that all ranks
keep the same statistics. Crops whose labels are missing (IGNORE_LABEL) or past the
target's end move by nothing there. `prob` 0 (the default) builds nothing.

Costs: the statistics are S x K x F float64 (6.7 MB for 105 speakers, 100 clusters and 80
bins; 2,300 speakers and 500 clusters would take 740 MB), kept in the checkpoint (so a
resumed run goes on with them) and, under torch.distributed, summed over the ranks at every
step. They count every frame each time a crop shows it, so after a few epochs `shrink`
weighs less against a speaker's counts than it did at the start; the first steps swap with
the statistics of a few batches (nearly nothing, once shrunk). On CUDA the sums are atomic
adds, not bit-reproducible from run to run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import all_reduce_sum, length_mask

__all__ = ["SpeakerShiftConfig", "SpeakerShift"]


@dataclass
class SpeakerShiftConfig:
    prob: float = 0.0  # share of training crops re-voiced as another training speaker (0: off)
    shrink: float = 100.0  # pseudo-frames that pull a speaker's cluster mean toward all speakers' mean
    smooth: int = 5  # frames of the moving average over each frame's shift (odd; 1: none)

    def __post_init__(self):
        if not 0.0 <= self.prob <= 1.0:
            raise SpeechUnitsError(f"speaker_shift.prob must be in [0, 1], got {self.prob}")
        if self.shrink < 0:
            raise SpeechUnitsError(f"speaker_shift.shrink must be >= 0, got {self.shrink}")
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise SpeechUnitsError(f"speaker_shift.smooth must be an odd number of frames >= 1, got {self.smooth}")


class SpeakerShift(nn.Module):
    def __init__(self, num_speakers: int, num_classes: int, num_bins: int, cfg: SpeakerShiftConfig):
        super().__init__()
        if num_speakers < 2:
            raise SpeechUnitsError(f"speaker_shift re-voices a crop as another training speaker: needs >= 2 speakers, got {num_speakers}")
        if num_bins < 2:
            raise SpeechUnitsError(f"speaker_shift moves feature frames (log-mel input): input_dim must be >= 2, got {num_bins}")
        self.cfg = cfg
        self.num_speakers, self.num_classes, self.num_bins = int(num_speakers), int(num_classes), int(num_bins)
        self.register_buffer("sums", torch.zeros(self.num_speakers, self.num_classes, self.num_bins, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(self.num_speakers, self.num_classes, dtype=torch.float64))

    @torch.no_grad()
    def accumulate(self, feats: Tensor, labels: Tensor, speaker_ids: Tensor, lengths: Tensor) -> None:
        """Add the frames of feats (B, T, F) with a label (labels (B, T), < 0: none) to
        their speaker's (speaker_ids (B,)) and cluster's sums."""
        valid = length_mask(lengths, feats.shape[1]) & (labels >= 0)
        cell = (speaker_ids[:, None] * self.num_classes + labels.clamp_min(0))[valid]
        sums = torch.zeros_like(self.sums).view(-1, self.num_bins)
        sums.index_add_(0, cell, feats[valid].to(sums.dtype))
        counts = torch.zeros_like(self.counts).view(-1)
        counts.index_add_(0, cell, torch.ones_like(cell, dtype=counts.dtype))
        all_reduce_sum(sums)
        all_reduce_sum(counts)
        self.sums += sums.view_as(self.sums)
        self.counts += counts.view_as(self.counts)

    def offsets(self, speakers: Tensor) -> Tensor:
        """speakers (...) long -> (..., K, F) each speaker's shrunk offset d[s, c] from the
        clusters' means over all speakers (0 for a cluster nobody has shown yet)."""
        total = self.counts.sum(0)  # (K,)
        means = self.sums.sum(0) / total.clamp_min(1.0)[:, None]  # (K, F)
        sums, counts = self.sums[speakers], self.counts[speakers]  # (..., K, F), (..., K)
        return (sums - counts[..., None] * means) / (counts + self.cfg.shrink).clamp_min(1e-12)[..., None]

    def shift(self, labels: Tensor, source: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
        """labels (B, T) (< 0: none), source and target speakers (B,) -> (B, T, F) the
        smoothed per-frame move d[target, c_t] - d[source, c_t] (0 where there is no label)."""
        both = self.offsets(torch.stack([target, source]))  # (2, B, K, F), the clusters' means computed once
        delta = both[0] - both[1]  # (B, K, F)
        valid = length_mask(lengths, labels.shape[1]) & (labels >= 0)
        idx = labels.clamp_min(0)[..., None].expand(-1, -1, self.num_bins)
        moves = torch.gather(delta, 1, idx) * valid[..., None]  # (B, T, F)
        k = self.cfg.smooth
        if k > 1 and moves.shape[1] > 0:
            # a centred moving average over the crop's valid frames (edges average what exists)
            weights = valid.to(moves.dtype)[:, None, :]
            num = F.avg_pool1d(moves.transpose(1, 2), k, stride=1, padding=k // 2, count_include_pad=True)
            den = F.avg_pool1d(weights, k, stride=1, padding=k // 2, count_include_pad=True)
            moves = (num / den.clamp_min(1e-12)).transpose(1, 2) * valid[..., None]
        return moves

    def forward(self, feats: Tensor, lengths: Tensor, speaker_ids: Tensor, labels: Tensor) -> Tensor:
        """feats (B, T, F), lengths (B,), speaker_ids (B,) long, labels (B, T) long at the
        input rate (< 0: none) -> (B, T, F): the statistics updated with the unperturbed
        frames, then each crop re-voiced with probability prob (training only; unchanged
        in eval mode)."""
        if not self.training or self.cfg.prob <= 0 or feats.dim() != 3:
            return feats
        self.accumulate(feats, labels, speaker_ids, lengths)
        batch = feats.shape[0]
        chosen = torch.rand(batch) < self.cfg.prob
        if not bool(chosen.any()):
            return feats
        # another speaker, uniformly among the rest
        other = torch.randint(0, self.num_speakers - 1, (batch,)).to(speaker_ids.device)
        other = other + (other >= speaker_ids).long()
        moves = self.shift(labels, speaker_ids, other, lengths).to(feats.dtype)
        return feats + moves * chosen.to(feats.device)[:, None, None].to(feats.dtype)
