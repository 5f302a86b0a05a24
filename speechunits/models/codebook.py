"""A vector-quantisation codebook with the machinery that keeps it healthy.

`Codebook` holds K code vectors of dimension D and everything that touches them
apart from the loss terms, so that every quantiser (plain VQ, piecewise-constant
VQ) shares one implementation:

- nearest-code search (squared euclidean, computed in float32 even under autocast);
- EMA updates (van den Oord et al. 2017, appendix): per code, an exponential moving
  average of the number of frames assigned (N_k) and of their sum (m_k), with
  Laplace smoothing of the counts so a rarely used code never divides by zero:
      N_k <- decay N_k + (1 - decay) n_k ;  m_k <- decay m_k + (1 - decay) sum_{i->k} x_i
      N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j ;  e_k = m_k / N~_k
  (with `ema=False` the code vectors are a Parameter trained by the codebook loss);
- k-means initialisation: the first `kmeans_batches` training batches feed a
  reservoir sample (Vitter's algorithm R, uniform over all frames seen) of the
  inputs; then k-means++ seeding and a few Lloyd iterations on the reservoir
  (all seeded) set the codes. This
  puts every code where the data is, instead of where a random init happened to be;
- restarts of dead codes: a code no frame was assigned to for `dead_code_steps`
  consecutive training steps is moved onto a random input frame of the batch;
- usage accounting over an accounting period (an epoch): `reset_usage()`,
  `usage_stats()` (perplexity exp(H(p)) of the code distribution, codes used).

Distributed training: when torch.distributed is initialised, the per-batch code
counts and sums are all-reduced before the EMA update (every rank then holds the
same codebook), the k-means result and restarted codes are broadcast from rank 0,
and `usage_stats()` sums the counts over ranks (so every rank must call it).
Random draws use a private CPU generator seeded from the config (offset by the
rank), never the global RNG.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.models.common import all_reduce_sum, broadcast_from_zero, distributed
from speechunits.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["CodebookConfig", "Codebook", "kmeans", "kmeans_plus_plus", "reservoir_update", "sq_distances", "perplexity"]


@dataclass
class CodebookConfig:
    """Codebook size and upkeep. K = 256 is a middle value of the paper's sweep
    (it reports sizes from 32 to 512 working); sweep it per corpus."""

    size: int = 256
    ema: bool = True  # EMA updates (True) or a learned codebook with the codebook loss
    decay: float = 0.99
    epsilon: float = 1e-5  # Laplace smoothing of the EMA counts
    init: str = "kmeans"  # "kmeans" (from a reservoir of inputs) or "random"
    kmeans_batches: int = 10  # training batches that feed the reservoir before k-means
    reservoir_size: int = 8192
    kmeans_iters: int = 10
    dead_code_steps: int = 200  # restart codes unused this many training steps (0 = never)
    seed: int = 0

    def __post_init__(self):
        if self.size < 1:
            raise ConfigError(f"codebook size must be >= 1, got {self.size}")
        if self.init not in ("kmeans", "random"):
            raise ConfigError(f"codebook init must be 'kmeans' or 'random', got {self.init!r}")
        if not 0.0 <= self.decay < 1.0:
            raise ConfigError(f"EMA decay must be in [0, 1), got {self.decay}")


def sq_distances(x: Tensor, codes: Tensor) -> Tensor:
    """x: (..., D), codes: (K, D) -> (..., K) squared euclidean distances.

    One matmul, ||x||^2 - 2 x.c + ||c||^2, in float32 or wider even under autocast
    (a half-precision expansion loses the small distances to cancellation), clamped
    at 0 (rounding can make the expansion slightly negative). The one distance of
    the quantisers: nearest-code search here, the piecewise-constant segmentation
    (`speechunits/models/segmentation.py` takes these as its d(t, k)).
    """
    dtype = torch.promote_types(torch.promote_types(x.dtype, codes.dtype), torch.float32)
    x, codes = x.to(dtype), codes.to(dtype)
    flat = x.reshape(-1, x.shape[-1])
    with torch.autocast(device_type=x.device.type, enabled=False):
        d = flat.pow(2).sum(1, keepdim=True) - 2.0 * (flat @ codes.t()) + codes.pow(2).sum(1)[None, :]
    return d.clamp_min_(0.0).reshape(*x.shape[:-1], codes.shape[0])


def perplexity(counts: Tensor) -> Tensor:
    """exp(entropy) of the distribution `counts / counts.sum()`; 0 when all counts are 0.

    A 0-dim float tensor on counts' device (no host synchronisation).
    """
    counts = counts.float()
    total = counts.sum()
    p = counts / total.clamp_min(1.0)
    entropy = -torch.where(p > 0, p * torch.log(p.clamp_min(1e-30)), torch.zeros_like(p)).sum()
    return torch.where(total > 0, torch.exp(entropy), torch.zeros_like(entropy))


def reservoir_update(reservoir: Tensor, n_seen: int, x: Tensor, generator: torch.Generator) -> int:
    """Algorithm R over a stream: add the rows of x (N, D) to `reservoir` (R, D) in place.

    `n_seen` counts the rows offered so far; returns the new count. After any
    number of calls each row offered is in the reservoir with probability
    min(1, R / n_seen), independently of batch boundaries: row i (0-based, global)
    fills slot i while i < R, afterwards it replaces slot j ~ U{0..i} when j < R.
    Replacements within one call are applied in stream order (a later row wins a
    slot drawn twice), exactly as the sequential algorithm would.
    """
    R, n = reservoir.shape[0], x.shape[0]
    if n == 0:
        return n_seen
    idx = torch.arange(n_seen, n_seen + n, dtype=torch.float64)
    fill = idx < R
    if fill.any():
        rows = fill.nonzero().squeeze(1)
        reservoir[idx[rows].long().to(reservoir.device)] = x[rows.to(x.device)].to(reservoir.dtype)
    rest = (~fill).nonzero().squeeze(1)
    if rest.numel():
        u = torch.rand(rest.numel(), generator=generator, dtype=torch.float64)
        j = torch.floor(u * (idx[rest] + 1.0)).long()
        keep = j < R
        slots, src = j[keep], rest[keep]
        if slots.numel():
            # Keep the last row drawn for each slot: stable sort by slot, take group ends.
            order = torch.sort(slots, stable=True).indices
            slots, src = slots[order], src[order]
            last = torch.ones_like(slots, dtype=torch.bool)
            last[:-1] = slots[1:] != slots[:-1]
            reservoir[slots[last].to(reservoir.device)] = x[src[last].to(x.device)].to(reservoir.dtype)
    return n_seen + n


def kmeans_plus_plus(points: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): indices (k,) into points (N, D).

    The first centre is uniform; each next one is drawn with probability proportional
    to the squared distance to the nearest centre chosen so far, which spreads the
    seeds over the clusters. When fewer than k distinct points exist, the rest are
    drawn uniformly (duplicates).
    """
    n = points.shape[0]
    pts = points.float()
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    d2 = sq_distances(pts, pts[chosen[0]][None]).squeeze(1).cpu().double()
    for _ in range(1, k):
        total = float(d2.sum())
        if total <= 0:
            idx = int(torch.randint(n, (1,), generator=generator))
        else:
            idx = int(torch.multinomial(d2 / total, 1, generator=generator))
        chosen.append(idx)
        d2 = torch.minimum(d2, sq_distances(pts, pts[idx][None]).squeeze(1).cpu().double())
    return torch.tensor(chosen, dtype=torch.long)


def kmeans(points: Tensor, k: int, iters: int, generator: torch.Generator) -> Tensor:
    """Lloyd's k-means: points (N, D) -> centres (k, D).

    Seeded with k-means++ (so the centres start on k data points); an empty cluster
    keeps its previous centre. With iters=0 the centres are the seeds themselves.
    """
    n = points.shape[0]
    if n == 0:
        raise ConfigError("k-means needs at least one point")
    start = kmeans_plus_plus(points, k, generator)
    centres = points[start.to(points.device)].clone()
    for _ in range(iters):
        assign = sq_distances(points, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


class Codebook(nn.Module):
    """K x D code vectors with EMA / k-means / restart upkeep; see the module docstring."""

    def __init__(self, dim: int, cfg: CodebookConfig):
        super().__init__()
        self.cfg, self.dim, self.size = cfg, int(dim), int(cfg.size)
        gen = torch.Generator().manual_seed(cfg.seed)
        init = torch.randn(self.size, self.dim, generator=gen) / math.sqrt(self.dim)
        if cfg.ema:
            self.register_buffer("embedding", init)
            self.register_buffer("ema_count", torch.ones(self.size))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.embedding = nn.Parameter(init)
        self.register_buffer("steps_unused", torch.zeros(self.size, dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))
        self.register_buffer("init_done", torch.tensor(cfg.init != "kmeans"))
        self.register_buffer("init_batches", torch.zeros((), dtype=torch.long))
        # Not saved: the reservoir only matters until k-means has run.
        self.register_buffer("reservoir", torch.zeros(0, self.dim), persistent=False)
        self.register_buffer("usage", torch.zeros(self.size, dtype=torch.long), persistent=False)
        self._n_seen = 0
        self._generator: torch.Generator | None = None

    # ------------------------------------------------------------------ lookup
    @property
    def generator(self) -> torch.Generator:
        if self._generator is None:
            rank = dist.get_rank() if distributed() else 0
            self._generator = torch.Generator().manual_seed(self.cfg.seed + 1 + rank)
        return self._generator

    @torch.no_grad()
    def nearest(self, x: Tensor) -> Tensor:
        """x: (..., D) -> (...) long index of the nearest code (no gradient: argmin)."""
        flat = x.reshape(-1, self.dim)
        return sq_distances(flat, self.embedding).argmin(1).view(x.shape[:-1])

    def lookup(self, codes: Tensor) -> Tensor:
        """codes: (...) long -> (..., D) code vectors (codes < 0 give code 0's vector)."""
        return F.embedding(codes.clamp_min(0), self.embedding)

    # ------------------------------------------------------------------ training upkeep
    @torch.no_grad()
    def maybe_init(self, x: Tensor) -> bool:
        """Feed valid frames x (N, D) to the k-means reservoir; run k-means when it is time.

        Returns True when the codebook was (re)initialised by this call.
        """
        if bool(self.init_done):
            return False
        if self.reservoir.shape[0] != self.cfg.reservoir_size:
            self.reservoir = torch.zeros(self.cfg.reservoir_size, self.dim, device=x.device)
            self._n_seen = 0
        self._n_seen = reservoir_update(self.reservoir, self._n_seen, x.detach().float(), self.generator)
        self.init_batches += 1
        if int(self.init_batches) < self.cfg.kmeans_batches:
            return False
        filled = min(self._n_seen, self.reservoir.shape[0])
        if filled == 0:
            centres = self.embedding.detach().float().clone()
        else:
            centres = kmeans(self.reservoir[:filled], self.size, self.cfg.kmeans_iters, self.generator)
        broadcast_from_zero(centres)
        self.set_codes(torch.arange(self.size, device=centres.device), centres)
        self.init_done.fill_(True)
        self.reservoir = torch.zeros(0, self.dim, device=x.device)
        log.info("codebook: k-means initialised %d codes from %d reservoir frames", self.size, filled)
        return True

    @torch.no_grad()
    def set_codes(self, which: Tensor, vectors: Tensor) -> None:
        """Overwrite codes `which` (long (n,)) with `vectors` (n, D); resets their EMA state."""
        which = which.to(self.embedding.device)
        vectors = vectors.to(self.embedding.device, self.embedding.dtype)
        self.embedding.data[which] = vectors
        if self.cfg.ema:
            self.ema_sum[which] = vectors
            self.ema_count[which] = 1.0
        self.steps_unused[which] = 0

    @torch.no_grad()
    def update(self, x: Tensor, codes: Tensor) -> dict[str, Tensor]:
        """One training step of upkeep from valid frames x (N, D) and their codes (N,).

        EMA update (when enabled) and dead-code restarts. Counts and sums are
        all-reduced across ranks first. Returns detached statistics.
        """
        x = x.detach().float()
        counts = torch.bincount(codes, minlength=self.size).to(x.dtype)
        sums = torch.zeros(self.size, self.dim, device=x.device, dtype=x.dtype).index_add_(0, codes, x)
        all_reduce_sum(counts)
        if self.cfg.ema:
            all_reduce_sum(sums)
            self.ema_update(counts, sums)
        self.steps_unused += 1
        self.steps_unused[counts > 0] = 0
        restarted = 0
        if self.cfg.dead_code_steps > 0:
            dead = (self.steps_unused >= self.cfg.dead_code_steps).nonzero().squeeze(1)
            if dead.numel():
                self.restart(dead, x)
                restarted = dead.numel()
        return {"restarted": torch.tensor(float(restarted))}

    @torch.no_grad()
    def ema_update(self, counts: Tensor, sums: Tensor) -> None:
        """counts (K,), sums (K, D): global batch statistics -> EMA step (see module doc)."""
        d = self.cfg.decay
        self.ema_count.mul_(d).add_(counts.to(self.ema_count.dtype), alpha=1.0 - d)
        self.ema_sum.mul_(d).add_(sums.to(self.ema_sum.dtype), alpha=1.0 - d)
        total = self.ema_count.sum()
        eps = self.cfg.epsilon
        smoothed = (self.ema_count + eps) / (total + self.size * eps) * total
        self.embedding.copy_(self.ema_sum / smoothed[:, None])

    @torch.no_grad()
    def restart(self, which: Tensor, x: Tensor) -> None:
        """Move codes `which` onto random frames of x (N, D) (rank 0's choice when distributed)."""
        n = which.numel()
        if x.shape[0] > 0:
            if x.shape[0] >= n:
                pick = torch.randperm(x.shape[0], generator=self.generator)[:n]
            else:
                pick = torch.randint(x.shape[0], (n,), generator=self.generator)
            vectors = x[pick.to(x.device)].clone()
        else:  # no frames on this rank: a random vector at the codebook's scale
            scale = self.embedding.detach().float().std().clamp_min(1e-3)
            vectors = (torch.randn(n, self.dim, generator=self.generator) * scale).to(self.embedding.device)
        broadcast_from_zero(vectors)
        self.set_codes(which, vectors)
        self.restarts += n
        log.debug("codebook: restarted %d dead codes", n)

    # ------------------------------------------------------------------ usage accounting
    @torch.no_grad()
    def record_usage(self, codes: Tensor) -> None:
        """Add valid codes (any shape; negative entries = padding, ignored) to the counts."""
        codes = codes.reshape(-1)
        codes = codes[codes >= 0]
        self.usage += torch.bincount(codes, minlength=self.size).to(self.usage.device)

    def reset_usage(self) -> None:
        self.usage.zero_()

    def usage_counts(self) -> Tensor:
        """(K,) long frames per code since `reset_usage()`, summed over ranks."""
        counts = self.usage.clone()
        return all_reduce_sum(counts)

    def usage_stats(self) -> dict[str, float]:
        """Perplexity, codes used, fraction used and frames counted since `reset_usage()`."""
        counts = self.usage_counts()
        used = int((counts > 0).sum())
        return {
            "perplexity": float(perplexity(counts)),
            "used_codes": float(used),
            "used_fraction": used / self.size,
            "frames": float(counts.sum()),
        }
