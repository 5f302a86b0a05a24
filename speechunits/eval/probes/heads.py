"""Probe heads: a linear map, or a one-hidden-layer MLP, on standardised tap frames.

    head = build_head("mlp", in_dim=64, out_dim=40, config=HeadConfig(hidden=512))
    logits = head(x)          # x: (N, in_dim) -> (N, out_dim)

Inputs are z-scored with the training frames' mean and standard deviation inside
the head (buffers, not parameters), so a probe is insensitive to the scale of a tap
(the encoder's ReLU outputs and the VQ codewords differ by orders of magnitude)
and the linear head stays a linear function of the tap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from speechunits.registry import Registry

__all__ = ["HeadConfig", "PROBE_HEADS", "build_head", "Standardize", "LinearHead", "MlpHead"]

PROBE_HEADS = Registry("probe head")


@dataclass
class HeadConfig:
    """hidden: MLP hidden units; dropout: MLP dropout (on the hidden layer). Dropout's
    random masks are the costliest part of an MLP step on CPU; 256 x 0.1 keeps a probe
    to a second or two on the synthetic corpus."""

    hidden: int = 256
    dropout: float = 0.1


class Standardize(nn.Module):
    """x: (N, D) -> (x - mean) / std with fixed statistics (set by `fit`)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0, unbiased=False).clamp_min(1e-5))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


@PROBE_HEADS.register("linear")
class LinearHead(nn.Module):
    """x: (N, in_dim) -> (N, out_dim): one affine map after standardisation."""

    def __init__(self, in_dim: int, out_dim: int, config: HeadConfig | None = None):
        super().__init__()
        self.norm = Standardize(in_dim)
        self.out = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.norm(x))


@PROBE_HEADS.register("mlp")
class MlpHead(nn.Module):
    """x: (N, in_dim) -> (N, out_dim): standardise, Linear-ReLU-Dropout, Linear."""

    def __init__(self, in_dim: int, out_dim: int, config: HeadConfig | None = None):
        super().__init__()
        cfg = config or HeadConfig()
        self.norm = Standardize(in_dim)
        self.net = nn.Sequential(
            nn.Linear(in_dim, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, out_dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.norm(x))


def build_head(name: str, in_dim: int, out_dim: int, config: HeadConfig | None = None) -> nn.Module:
    return PROBE_HEADS.get(name)(in_dim, out_dim, config)
