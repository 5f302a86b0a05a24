"""Delta and delta-delta features, as Kaldi's add-deltas computes them.

Kaldi does not take deltas of deltas frame by frame. It builds one filter per
order: order 1 is the regression filter j / sum(j^2), j in [-window, window];
order i convolves order i-1 with it (so order 2 spans 2*window*2 + 1 frames).
Each filter is applied to the *static* features, with frames before the start
and after the end replaced by the first and last frame (edge replication). Near
the edges this differs from iterating the order-1 delta, so we follow Kaldi.

`balanced_deltas` appends order-1 deltas scaled per utterance to carry a set share
of the energy: the dynamic read-out of a learned tap (`speechunits extract --deltas`),
whose frames change slowly, so that plain deltas would weigh little in a distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from speechunits.errors import ConfigError


@dataclass
class DeltaConfig:
    """order: 1 adds deltas, 2 adds deltas and delta-deltas; window: frames each side."""

    order: int = 2
    window: int = 2

    def __post_init__(self) -> None:
        if self.order < 0 or self.window < 1:
            raise ConfigError(f"need order >= 0 and window >= 1, got order={self.order}, window={self.window}")


def delta_filters(order: int, window: int) -> list[np.ndarray]:
    """Kaldi's filters, one per order 0..order; filter i has 2*i*window + 1 taps, centred."""
    filters = [np.ones(1)]
    regression = np.arange(-window, window + 1, dtype=np.float64)
    regression /= np.sum(regression**2)
    for _ in range(order):
        filters.append(np.convolve(filters[-1], regression))
    return filters


class Deltas(nn.Module):
    """Appends deltas: `feats: (B, T, D) -> (B, T, D * (order + 1))`, statics first."""

    def __init__(self, config: DeltaConfig | None = None):
        super().__init__()
        self.config = config = config or DeltaConfig()
        self.filters = [torch.from_numpy(f.astype(np.float32)) for f in delta_filters(config.order, config.window)]

    def output_dim(self, input_dim: int) -> int:
        return input_dim * (self.config.order + 1)

    @torch.no_grad()
    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """feats: (B, T, D), lengths: (B,) valid frames -> (B, T, D*(order+1)); zero past each length.

        Edge replication uses each utterance's own last valid frame, never padding.
        """
        b, t, d = feats.shape
        reach = self.config.order * self.config.window
        pos = torch.arange(-reach, t + reach, device=feats.device)
        if lengths is None:
            idx = pos.clamp(0, max(t - 1, 0)).expand(b, -1)
        else:
            last = (lengths.to(feats.device).long() - 1).clamp_min(0)[:, None]
            idx = torch.minimum(pos.clamp_min(0)[None, :], last)
        if t == 0:
            return feats.new_zeros(b, 0, self.output_dim(d))
        padded = feats.gather(1, idx.unsqueeze(-1).expand(-1, -1, d))  # (B, T + 2*reach, D)
        out = feats.new_empty(b, t, self.output_dim(d))
        out[:, :, :d] = feats
        for i, filt in enumerate(self.filters[1:], start=1):
            half = (filt.numel() - 1) // 2
            acc = out[:, :, i * d : (i + 1) * d]
            acc.zero_()
            for j, w in enumerate(filt.tolist()):
                if w != 0.0:
                    start = reach - half + j
                    acc.add_(padded[:, start : start + t], alpha=w)
        if lengths is not None:
            valid = torch.arange(t, device=feats.device)[None, :] < lengths.to(feats.device)[:, None]
            out.mul_(valid.unsqueeze(-1))
        return out


def add_deltas(feats, order: int = 2, window: int = 2):
    """One utterance: `(T, D) -> (T, D*(order+1))`; numpy in -> numpy out."""
    is_numpy = isinstance(feats, np.ndarray)
    x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32)) if is_numpy else feats
    out = Deltas(DeltaConfig(order, window))(x.unsqueeze(0))[0]
    return out.numpy() if is_numpy else out


MIN_DELTA_RATIO = 1e-5  # an RMS ratio of deltas to statics below this is rounding error (set to zero)


def check_balance(balance: float, what: str = "the deltas' balance") -> float:
    """`balance` as a float, or ConfigError naming `what` unless it is a finite number >= 0."""
    try:
        value = float(balance)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{what} must be a number >= 0, got {balance}")
    return value


def rebalance_deltas(feats: torch.Tensor, static_dim: int, balance: float,
                     lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Scale the delta dims of `feats: (B, T, D * (order + 1))` (statics first, as `Deltas`
    gives them), all orders by one factor per utterance, so that their RMS over the valid
    frames is `balance` times the statics'; in place, returned. Deltas under MIN_DELTA_RATIO
    of the statics' RMS (a constant or one-frame utterance: rounding error) become zero."""
    check_balance(balance)
    b, t, _ = feats.shape
    valid = torch.ones(b, t, 1, dtype=torch.float64, device=feats.device)
    if lengths is not None:
        valid = (torch.arange(t, device=feats.device)[None, :] < lengths.to(feats.device)[:, None]).double()[..., None]
    dynamic_dim = max(feats.shape[-1] - static_dim, 1)
    static = (feats[..., :static_dim].double().square() * valid).sum(dim=(1, 2)) / static_dim  # mean squares
    dynamic = (feats[..., static_dim:].double().square() * valid).sum(dim=(1, 2)) / dynamic_dim
    ok = dynamic > MIN_DELTA_RATIO**2 * static
    scale = torch.where(ok, balance * torch.sqrt(static / torch.where(ok, dynamic, torch.ones_like(dynamic))),
                        torch.zeros_like(static))
    scaled = feats[..., static_dim:].float() * scale.float()[:, None, None]  # float32: a half scale may overflow
    feats[..., static_dim:] = scaled.to(feats.dtype)
    return feats


def balanced_deltas(feats: np.ndarray, balance: float = 1.0, window: int = 2) -> np.ndarray:
    """One utterance's frames with their order-1 deltas appended, the deltas scaled so that
    their root-mean-square over the utterance is `balance` times the frames':
    `(T, D) -> (T, 2 D)` float32, statics first.

    The deltas are Kaldi's (the regression over +-window frames, edges replicated). The
    scale is the utterance's own (`rebalance_deltas`), so no statistics are fitted and any
    tap or feature scale works. On the masked model's projection the deltas' RMS is about
    0.14 of the frames', so plain deltas (`add_deltas`) change an angular distance little;
    balance 1 weighs the two halves equally (egs/speechocean762/EXPERIMENTS.md, fifteenth
    session). Feature types get the same through `FeaturePipelineConfig.delta_balance`."""
    x = np.asarray(feats, dtype=np.float32)
    if x.ndim != 2:
        raise ConfigError(f"expected frames (T, D), got shape {x.shape}")
    out = add_deltas(torch.from_numpy(np.ascontiguousarray(x)), order=1, window=window)
    return rebalance_deltas(out.unsqueeze(0), x.shape[1], balance)[0].numpy()
