"""Vector-quantised (VQ-VAE) bottleneck.

A linear projection C -> D, then each frame is replaced by its nearest code
vector e_k (`Codebook`). Gradients reach the encoder straight through the
quantiser: latents = z + sg(e_k - z), so d latents / d z is the identity.

Losses (raw; weights in the config), means over valid frames and the D dimensions:

    commitment = mean ||z - sg(e_k)||^2        weight `commitment` (0.25, as the paper)
    codebook   = mean ||sg(z) - e_k||^2        weight `codebook_weight`; only without EMA

With `codebook.ema` (the default) the codes follow an EMA of the frames assigned
to them instead of the codebook loss (van den Oord et al. 2017), which is
insensitive to the learning rate and tends to leave fewer dead codes. Codebook
initialisation, dead-code restarts and usage accounting live in `Codebook`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from speechunits.models.bottleneck import BOTTLENECKS, Bottleneck, BottleneckOutput
from speechunits.models.codebook import Codebook, CodebookConfig, perplexity
from speechunits.models.common import as_lengths, length_mask, masked_mean

__all__ = ["VQConfig", "VQBottleneck"]



def quantize_with_codes(z: Tensor, codes: Tensor, mask: Tensor, codebook: Codebook, cfg) -> tuple:
    """Codewords of `codes` with straight-through gradients, and the VQ losses.

    z: (B, T, D), codes: (B, T) (-1 on padding), mask: (B, T) ->
    (latents (B, T, D), losses {"commitment"[, "codebook"]}, their weights). The codebook
    loss is there only without EMA updates. `cfg` has commitment, codebook_weight, codebook.ema.
    """
    q = codebook.lookup(codes).to(z.dtype) * mask[..., None].to(z.dtype)
    latents = z + (q - z).detach()
    losses = {"commitment": masked_mean((z - q.detach()).pow(2), mask)}
    weights = {"commitment": cfg.commitment}
    if not cfg.codebook.ema:
        losses["codebook"] = masked_mean((z.detach() - q).pow(2), mask)
        weights["codebook"] = cfg.codebook_weight
    return latents, losses, weights


@torch.no_grad()
def batch_code_stats(valid_codes: Tensor, num_codes: int) -> dict[str, Tensor]:
    """Perplexity and number of codes used in this batch (valid frames only)."""
    counts = torch.bincount(valid_codes, minlength=num_codes)
    return {"batch_perplexity": perplexity(counts), "batch_used_codes": (counts > 0).sum().float()}

@dataclass
class VQConfig:
    dim: int = 64
    commitment: float = 0.25
    codebook_weight: float = 1.0  # used only when codebook.ema is False
    codebook: CodebookConfig = field(default_factory=CodebookConfig)


@BOTTLENECKS.register("vq")
class VQBottleneck(Bottleneck):
    config_class = VQConfig
    discrete = True

    def __init__(self, input_dim: int, cfg: VQConfig):
        super().__init__(input_dim, cfg)
        self.proj = nn.Linear(input_dim, cfg.dim)
        self.codebook = Codebook(cfg.dim, cfg.codebook)

    @property
    def num_codes(self) -> int:
        return self.codebook.size

    def nearest_codes(self, z: Tensor) -> Tensor:
        """Projected frames z: (..., D) -> (...) long nearest code indices."""
        return self.codebook.nearest(z)

    def bottleneck(self, x: Tensor, lengths: Tensor | None, update: bool, record: bool = False) -> BottleneckOutput:
        """x: (B, T, C) -> latents (B, T, D) quantised (straight-through), codes (B, T)."""
        lengths = as_lengths(x, lengths)
        mask = length_mask(lengths, x.shape[1])
        z = self.proj(x) * mask[..., None].to(x.dtype)
        valid = z[mask]  # (N, D) the frames that count
        if update:
            self.codebook.maybe_init(valid)
        codes = self.codebook.nearest(z).masked_fill(~mask, -1)
        latents, losses, weights = quantize_with_codes(z, codes, mask, self.codebook, self.cfg)
        valid_codes = codes[mask]
        stats: dict[str, Tensor | float] = batch_code_stats(valid_codes, self.num_codes)
        if update:
            stats.update(self.codebook.update(valid, valid_codes))
        if record:
            self.codebook.record_usage(valid_codes)
        return BottleneckOutput(
            latents=latents, projected=z, codes=codes, losses=losses, loss_weights=weights, stats=stats
        )

    def reset_usage(self) -> None:
        self.codebook.reset_usage()

    def usage_stats(self) -> dict[str, float]:
        return self.codebook.usage_stats()
