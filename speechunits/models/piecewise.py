"""Piecewise-constant VQ bottleneck ("pcvq"; Chorowski et al., the DistSup code).

Like plain VQ (`vq.py`: linear projection C -> D, a `Codebook`, straight-through
gradients, commitment 0.25), but the codes are constant over segments: the
latent sequence is cut into segments and every frame of a segment takes the
segment's code, the one minimising the summed squared distance of its frames.
Units then come with durations, and the code sequence changes at a phone-like
rate instead of flickering frame by frame.

- Training (`update=True`): greedy merging on the minibatch under a budget of
  segments (`segment_rate` per valid frame, or `segments_per_second` with
  `frame_shift`), batch-global by default: the cheapest merges anywhere in the
  batch are taken, each utterance keeps at least one segment (see
  `segmentation.greedy_segment`). Every greedy run also prices a segment
  (`estimate_lambda`); the price is smoothed over batches with an EMA and kept in
  the `lam` buffer, so it travels with checkpoints.
- Inference (`update=False`, `quantize`): the exact DP with the per-segment
  penalty `lam` (or `eval_lambda` when set), so no budget is needed and the
  segment rate follows the data.

Latents are the segment's code vector on every frame of the segment, with
straight-through gradients per frame (latents = z + sg(e - z)). Losses as in plain
VQ, against each frame's segment code: commitment mean ||z - sg(e)||^2 (weight
0.25), codebook mean ||sg(z) - e||^2 only without EMA. The EMA codebook update
receives every frame with its segment's code, which moves each code to the mean
of its frames: the minimiser of the same segment objective. Time jitter, when
used, acts on these latents after the bottleneck (composed model).

The output is a `PiecewiseOutput`: a `BottleneckOutput` plus `segments`, one
(S_b, 3) long tensor (start, end, code) per utterance, end exclusive, in frames
of the latents: the units with their durations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from speechunits.models.bottleneck import BOTTLENECKS, Bottleneck, BottleneckOutput
from speechunits.models.codebook import Codebook, CodebookConfig, sq_distances
from speechunits.models.common import all_reduce_sum, as_lengths, length_mask
from speechunits.models.segmentation import dp_segment, estimate_lambda, greedy_segment, segment_budget
from speechunits.models.vq import batch_code_stats, quantize_with_codes
from speechunits.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["PiecewiseVQConfig", "PiecewiseVQ", "PiecewiseOutput"]


@dataclass
class PiecewiseVQConfig:
    """Piecewise-constant VQ. The default budget, 0.25 segments per frame, is
    12.5 segments/s at the 50 Hz latent rate: about the phone rate of read speech."""

    dim: int = 64
    commitment: float = 0.25
    codebook_weight: float = 1.0  # used only when codebook.ema is False
    codebook: CodebookConfig = field(default_factory=CodebookConfig)
    segment_rate: float = 0.25  # training budget, segments per valid frame
    segments_per_second: float | None = None  # when set, overrides segment_rate
    frame_shift: float = 0.02  # seconds per latent frame; converts segments_per_second
    per_utterance_budget: bool = False  # False: batch-global budget (see module doc)
    lambda_window: int = 16  # last merges that price a segment
    lambda_estimator: str = "max"  # "max" or "mean" of those merge costs
    lambda_decay: float = 0.99  # EMA of the price over batches
    eval_lambda: float | None = None  # fixed inference penalty; None: the learned one
    dp_backend: str = "auto"  # "auto", "torch" or "numba" (see segmentation.dp_segment)

    def __post_init__(self):
        if self.segments_per_second is not None and self.segments_per_second <= 0:
            raise ConfigError(f"segments_per_second must be > 0, got {self.segments_per_second}")
        if not 0.0 < self.rate <= 1.0:
            raise ConfigError(f"segment rate must be in (0, 1] segments per frame, got {self.rate}")
        if self.lambda_estimator not in ("max", "mean"):
            raise ConfigError(f"lambda_estimator must be 'max' or 'mean', got {self.lambda_estimator!r}")
        if not 0.0 <= self.lambda_decay < 1.0:
            raise ConfigError(f"lambda_decay must be in [0, 1), got {self.lambda_decay}")
        if self.eval_lambda is not None and self.eval_lambda < 0:
            raise ConfigError(f"eval_lambda must be >= 0, got {self.eval_lambda}")

    @property
    def rate(self) -> float:
        """The training budget in segments per frame."""
        if self.segments_per_second is not None:
            return self.segments_per_second * self.frame_shift
        return self.segment_rate


@dataclass
class PiecewiseOutput(BottleneckOutput):
    """BottleneckOutput plus segments: B tensors (S_b, 3) long (start, end, code)."""

    segments: list[Tensor] = field(default_factory=list)


@BOTTLENECKS.register("pcvq")
class PiecewiseVQ(Bottleneck):
    config_class = PiecewiseVQConfig
    discrete = True

    def __init__(self, input_dim: int, cfg: PiecewiseVQConfig):
        super().__init__(input_dim, cfg)
        self.proj = nn.Linear(input_dim, cfg.dim)
        self.codebook = Codebook(cfg.dim, cfg.codebook)
        # The smoothed price of a segment (summed squared distance units) and the
        # number of batches that fed it; both saved with the model.
        self.register_buffer("lam", torch.zeros((), dtype=torch.float64))
        self.register_buffer("lam_updates", torch.zeros((), dtype=torch.long))
        self._warned_untrained = False

    @property
    def num_codes(self) -> int:
        return self.codebook.size

    @property
    def inference_lambda(self) -> float:
        """The DP penalty used when not training."""
        if self.cfg.eval_lambda is not None:
            return float(self.cfg.eval_lambda)
        if int(self.lam_updates) == 0 and not self._warned_untrained:
            log.warning("pcvq: no segment price learned yet (lam = 0): inference is frame-wise VQ")
            self._warned_untrained = True
        return float(self.lam)

    def bottleneck(self, x: Tensor, lengths: Tensor | None, update: bool, record: bool = False) -> PiecewiseOutput:
        """x: (B, T, C), lengths: (B,) -> PiecewiseOutput: latents (B, T, D)
        piecewise-constant (straight-through), codes (B, T) (-1 on padding), segments."""
        lengths = as_lengths(x, lengths)
        B, T, _ = x.shape
        mask = length_mask(lengths, T)
        z = self.proj(x) * mask[..., None].to(x.dtype)
        valid = z[mask]
        if update:
            self.codebook.maybe_init(valid)
        with torch.no_grad():
            dist = sq_distances(z.detach().reshape(B * T, -1), self.codebook.embedding).view(B, T, -1)
        stats: dict[str, Tensor | float] = {}
        if update:
            budget = segment_budget(lengths.cpu(), self.cfg.rate, self.cfg.per_utterance_budget)
            seg = greedy_segment(dist, lengths, budget)
            lam_batch = estimate_lambda(seg, self.cfg.lambda_window, self.cfg.lambda_estimator)
            self._update_lambda(lam_batch, x.device)
            if lam_batch is not None:
                stats["lambda_batch"] = lam_batch
        else:
            seg = dp_segment(dist, lengths, lam=self.inference_lambda, backend=self.cfg.dp_backend)
        codes = seg.codes.to(z.device)
        latents, losses, weights = quantize_with_codes(z, codes, mask, self.codebook, self.cfg)
        valid_codes = codes[mask]
        stats.update(batch_code_stats(valid_codes, self.num_codes))
        with torch.no_grad():
            n_frames = mask.sum().clamp_min(1).double()
            stats["segments_per_frame"] = seg.num_segments.sum().double() / n_frames
            stats["distortion_per_frame"] = seg.distortion.sum().double() / n_frames
            stats["lambda"] = float(self.lam)
        if update:
            stats.update(self.codebook.update(valid, valid_codes))
        if record:
            self.codebook.record_usage(valid_codes)
        return PiecewiseOutput(
            latents=latents,
            projected=z,
            codes=codes,
            losses=losses,
            loss_weights=weights,
            stats=stats,
            segments=[s.to(z.device) for s in seg.segments],
        )

    @torch.no_grad()
    def _update_lambda(self, lam_batch: float | None, device) -> None:
        """EMA of the batch price, averaged over ranks; skipped until k-means has run
        (prices of a random codebook say nothing) and for batches without merges."""
        if not bool(self.codebook.init_done):
            return
        pair = torch.tensor([lam_batch or 0.0, float(lam_batch is not None)], dtype=torch.float64, device=device)
        all_reduce_sum(pair)
        if pair[1] == 0:
            return
        value = pair[0] / pair[1]
        if int(self.lam_updates) == 0:
            self.lam.fill_(float(value))
        else:
            d = self.cfg.lambda_decay
            self.lam.mul_(d).add_((1.0 - d) * value.to(self.lam.device))
        self.lam_updates += 1

    def reset_usage(self) -> None:
        self.codebook.reset_usage()

    def usage_stats(self) -> dict[str, float]:
        return self.codebook.usage_stats()
