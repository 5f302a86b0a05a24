"""The bottleneck interface and its registry.

A bottleneck sits between the encoder and the conditioning stack. Every kind
(plain projection "ae", Gaussian "vae", vector quantiser "vq", piecewise-constant
VQ "pcvq", ...) has the same shape of interface so the autoencoder, the training
engine, probes and unit extraction never branch on the kind:

    @BOTTLENECKS.register("name")
    class MyBottleneck(Bottleneck):
        config_class = MyConfig            # dataclass with a `dim` field
        discrete = False                   # True when it emits codes

        def __init__(self, input_dim: int, cfg: MyConfig): ...
        def bottleneck(self, x, lengths, update: bool, record: bool) -> BottleneckOutput: ...

`forward(x, lengths)` runs it with training-time behaviour when the module is in
training mode (`update=True`: sampling, EMA / codebook updates) and counts code
usage in both modes (`record=True`, see `reset_usage` / `usage_stats`);
`quantize(x, lengths)` is the inference path: deterministic and free of side
effects (`update=False, record=False`), whatever the mode. Each bottleneck owns its input projection (linear C -> D), so the
"projection" probe tap (before quantisation / sampling) comes out of it too.

Losses are returned raw (unweighted) in `BottleneckOutput.losses`; the weights
come from the bottleneck's config and travel in `BottleneckOutput.loss_weights`.
`weighted_loss()` is their weighted sum, which the autoencoder adds to the
reconstruction loss. Logging the raw values keeps runs with different weights
comparable.

Padding frames (t >= lengths[b]) are excluded from every loss and statistic; the
latents and projections are zero there and codes are -1.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field

from torch import Tensor, nn

from speechunits.config import from_dict, to_dict
from speechunits.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["BOTTLENECKS", "Bottleneck", "BottleneckOutput", "build_bottleneck", "bottleneck_config"]

BOTTLENECKS = Registry("bottleneck")

# Modules that register bottlenecks; imported on first use of the registry helpers.
# A module listed here that does not exist (yet) is skipped.
_BOTTLENECK_MODULES = (
    "speechunits.models.linear_bottleneck",
    "speechunits.models.vae",
    "speechunits.models.vq",
    "speechunits.models.piecewise",
)


@dataclass
class BottleneckOutput:
    """What every bottleneck returns.

    latents:      (B, T, D) what the decoder side receives (quantised, sampled, ...).
    projected:    (B, T, D) the linear projection before quantisation / sampling
                  (the "projection" probe tap; for the VAE, the posterior mean).
    codes:        (B, T) long code indices (-1 on padding), or None when continuous.
    losses:       name -> scalar tensor, raw (unweighted).
    loss_weights: name -> weight; `weighted_loss()` = sum weight * loss.
    stats:        name -> detached scalar tensor (or float) for logging, e.g.
                  batch perplexity; never used for gradients.
    """

    latents: Tensor
    projected: Tensor
    codes: Tensor | None = None
    losses: dict[str, Tensor] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Tensor | float] = field(default_factory=dict)

    def weighted_loss(self) -> Tensor:
        """sum_k loss_weights[k] * losses[k] (0 when there are none)."""
        total = self.latents.new_zeros(())
        for name, value in self.losses.items():
            total = total + self.loss_weights.get(name, 1.0) * value
        return total


class Bottleneck(nn.Module):
    """Base class; see the module docstring for the contract."""

    config_class: type = None  # type: ignore[assignment]
    discrete: bool = False

    def __init__(self, input_dim: int, cfg):
        super().__init__()
        self.input_dim = int(input_dim)
        self.cfg = cfg
        self.dim = int(cfg.dim)

    def bottleneck(self, x: Tensor, lengths: Tensor | None, update: bool, record: bool = False) -> BottleneckOutput:
        """x: (B, T, C), lengths: (B,) -> BottleneckOutput with (B, T, D) latents.

        `update` selects training behaviour (sampling, codebook / statistics updates);
        `record` adds the batch's codes to the usage counts.
        """
        raise NotImplementedError

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> BottleneckOutput:
        """x: (B, T, C) encoder output, lengths: (B,) -> BottleneckOutput (B, T, D)."""
        return self.bottleneck(x, lengths, update=self.training, record=True)

    def quantize(self, x: Tensor, lengths: Tensor | None = None) -> BottleneckOutput:
        """Inference: x: (B, T, C) -> BottleneckOutput; deterministic, no state changes."""
        return self.bottleneck(x, lengths, update=False, record=False)

    # Usage accounting (discrete bottlenecks override these).
    def reset_usage(self) -> None:
        """Start a new accounting period (e.g. an epoch) for code usage."""

    def usage_stats(self) -> dict[str, float]:
        """Code usage accumulated since `reset_usage()` (empty for continuous ones)."""
        return {}


def _import_bottleneck_modules() -> None:
    for name in _BOTTLENECK_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise


def bottleneck_config(name: str, data: dict | None = None):
    """The typed config of bottleneck `name` from a dict (unknown keys are errors)."""
    _import_bottleneck_modules()
    cls = BOTTLENECKS.get(name)
    return from_dict(cls.config_class, data or {}, where="bottleneck_cfg")


def resolve_bottleneck_config(name: str, data: dict | None = None) -> dict:
    """`data` completed with the defaults of bottleneck `name`, as a plain dict."""
    return to_dict(bottleneck_config(name, data))


def build_bottleneck(name: str, input_dim: int, cfg: dict | object | None = None) -> Bottleneck:
    """Bottleneck `name` on `input_dim`-channel inputs; cfg is its config (dataclass or dict)."""
    _import_bottleneck_modules()
    cls = BOTTLENECKS.get(name)
    if cfg is None or isinstance(cfg, dict):
        cfg = from_dict(cls.config_class, cfg or {}, where="bottleneck_cfg")
    return cls(input_dim, cfg)

