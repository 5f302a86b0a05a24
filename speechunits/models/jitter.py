"""Time jitter on the latent sequence (Chorowski et al. 2019), training only.

Each latent position t of an utterance independently, with probability p, takes
the value of a neighbour: t-1 with probability p/2, t+1 with probability p/2
(docs/design.md section 5; p = 0.12 by default). Replacements read the original
sequence (no chains). At the utterance edges the neighbour index is clamped into
[0, length-1], so position 0 "replaced by its left neighbour" keeps its own
value: the realised replacement rate there is p/2. Padding frames are left alone.

The paper phrases it as each latent possibly replacing one or both of its
neighbours; the per-position formulation here is the one docs/design.md (section
5) fixes. Both make the decoder unable to rely on the exact position of a latent,
which pushes the encoder towards slowly varying, phone-like codes.

At evaluation time (module in eval mode) the jitter is the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from speechunits.models.common import as_lengths
from speechunits.errors import ConfigError

__all__ = ["TimeJitter", "jitter_indices"]


def jitter_indices(lengths: Tensor, max_len: int, p: float, generator: torch.Generator | None = None) -> Tensor:
    """(B,) lengths -> (B, max_len) long source index of every position.

    index[b, t] = t, or t-1 / t+1 (each with probability p/2) clamped to the
    utterance; padding positions map to themselves. Random numbers come from
    `generator` (on its device) or the global RNG.
    """
    B = lengths.shape[0]
    device = lengths.device
    if generator is not None:
        u = torch.rand(B, max_len, generator=generator, device=generator.device).to(device)
    else:
        u = torch.rand(B, max_len, device=device)
    offset = torch.zeros(B, max_len, dtype=torch.long, device=device)
    offset[u < p / 2] = -1
    offset[(u >= p / 2) & (u < p)] = 1
    t = torch.arange(max_len, device=device)[None, :]
    last = (lengths[:, None] - 1).clamp_min(0)
    idx = torch.minimum(torch.clamp_min(t + offset, 0), last)
    return torch.where(t < lengths[:, None], idx, t.expand(B, max_len))


class TimeJitter(nn.Module):
    def __init__(self, p: float = 0.12):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"jitter probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor, lengths: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """x: (B, T, D), lengths: (B,) -> (B, T, D) jittered (identity in eval mode or p = 0)."""
        if not self.training or self.p == 0.0:
            return x
        lengths = as_lengths(x, lengths)
        idx = jitter_indices(lengths, x.shape[1], self.p, generator)
        return torch.gather(x, 1, idx[..., None].expand_as(x))

    def extra_repr(self) -> str:
        return f"p={self.p}"
