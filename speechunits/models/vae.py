"""Gaussian (VAE) bottleneck: a variational information bottleneck on each frame.

A linear layer gives the posterior q(z_t | x) = N(mean_t, diag(exp(logvar_t))).
Training samples z_t = mean_t + exp(logvar_t / 2) * eps (reparameterisation);
inference uses the mean. The loss is the KL divergence to the prior N(0, I),

    KL_t = 0.5 * sum_d (mean^2 + exp(logvar) - 1 - logvar)

reported per frame (summed over dimensions, averaged over valid frames) and
weighted by `beta`. With `free_bits` > 0 each dimension's KL, averaged over the
batch's valid frames, is floored at `free_bits` nats (Kingma et al. 2016): below
the floor a dimension costs a constant and gets no gradient pushing it to the
prior, which keeps the decoder from ignoring the latents entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from speechunits.models.bottleneck import BOTTLENECKS, Bottleneck, BottleneckOutput
from speechunits.models.common import as_lengths, length_mask, zero_padding

__all__ = ["VAEConfig", "VAEBottleneck", "gaussian_kl"]


@dataclass
class VAEConfig:
    dim: int = 64
    beta: float = 1.0  # weight of the KL term ("kl" loss)
    free_bits: float = 0.0  # per-dimension KL floor in nats (0 = off)
    logvar_min: float = -12.0  # clamps keep exp(logvar) finite early in training
    logvar_max: float = 8.0


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per element (same shape as the inputs)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


@BOTTLENECKS.register("vae")
class VAEBottleneck(Bottleneck):
    config_class = VAEConfig

    def __init__(self, input_dim: int, cfg: VAEConfig):
        super().__init__(input_dim, cfg)
        self.proj = nn.Linear(input_dim, 2 * cfg.dim)

    def bottleneck(self, x: Tensor, lengths: Tensor | None, update: bool, record: bool = False) -> BottleneckOutput:
        """x: (B, T, C) -> latents (B, T, D): a sample in training, the mean otherwise."""
        lengths = as_lengths(x, lengths)
        mask = length_mask(lengths, x.shape[1])
        mean, logvar = self.proj(x).chunk(2, dim=-1)
        logvar = logvar.clamp(self.cfg.logvar_min, self.cfg.logvar_max)
        if update:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        else:
            z = mean
        kl_per_dim = self.kl_per_dim(mean, logvar, mask)  # (D,)
        kl = kl_per_dim.clamp_min(self.cfg.free_bits).sum() if self.cfg.free_bits > 0 else kl_per_dim.sum()
        return BottleneckOutput(
            latents=zero_padding(z, lengths),
            projected=zero_padding(mean, lengths),
            losses={"kl": kl},
            loss_weights={"kl": self.cfg.beta},
            stats={
                "kl_raw": kl_per_dim.sum().detach(),
                "active_dims": (kl_per_dim > 0.01).sum().detach(),
                "mean_std": (torch.exp(0.5 * logvar) * mask[..., None]).sum().detach()
                / (mask.sum() * self.dim).clamp_min(1),
            },
        )

    @staticmethod
    def kl_per_dim(mean: Tensor, logvar: Tensor, mask: Tensor) -> Tensor:
        """(B, T, D) posterior, (B, T) mask -> (D,) KL per dimension averaged over valid frames."""
        kl = gaussian_kl(mean, logvar) * mask[..., None].to(mean.dtype)
        return kl.sum(dim=(0, 1)) / mask.sum().clamp_min(1).to(mean.dtype)
