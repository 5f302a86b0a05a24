"""k-means on tensors: squared distances, greedy k-means++, one Lloyd pass, re-seeding.

Everything here works on float32 tensors of frames x (N, D) on any torch device,
in chunks of `batch_frames` rows, so that the (chunk, K) distance matrix is the only
large temporary. Distances are computed as |x|^2 - 2 x.c + |c|^2 after moving the
origin to the centroids' mean (translation leaves distances unchanged and keeps the
float32 cancellation small); sums over frames are accumulated in float64.

The update is deterministic on every device: cluster sums are a serial index_add_ on
the CPU, and elsewhere segment sums of the frames sorted by label (stable), not
scatter-adds with float atomics.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from speechunits.errors import ConfigError

__all__ = ["sq_distances", "assign", "kmeans_plus_plus", "cluster_sums", "PassStats"]


def sq_distances(x: torch.Tensor, centroids: torch.Tensor, origin: torch.Tensor | None = None) -> torch.Tensor:
    """(N, D), (K, D) -> (N, K) squared Euclidean distances (>= 0), in float32."""
    if origin is None:
        origin = centroids.mean(0)
    xc, cc = x - origin, centroids - origin
    d = torch.addmm((cc * cc).sum(1), xc, cc.T, beta=1, alpha=-2).add_((xc * xc).sum(1, keepdim=True))
    return d.clamp_min_(0.0)


class _Centroids:
    """Centroids ready for nearest-centroid search: moved to their mean, with their squared norms."""

    def __init__(self, centroids: torch.Tensor):
        self.origin = centroids.mean(0)
        self.cc = centroids - self.origin
        self.c2 = (self.cc * self.cc).sum(1)

    def nearest(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D) -> squared distance to the nearest centroid (N,), its index (N,).
        The argmin runs on |c|^2 - 2 x.c (|x|^2 is the same for every centroid)."""
        xc = x - self.origin
        d, labels = torch.addmm(self.c2, xc, self.cc.T, beta=1, alpha=-2).min(1)
        return d.add_((xc * xc).sum(1)).clamp_min_(0.0), labels


def assign(x: torch.Tensor, centroids: torch.Tensor, batch_frames: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid of every frame: (N, D), (K, D) -> labels (N,) int64, squared distances (N,) float32."""
    prepared = _Centroids(centroids)
    labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    dist = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
    for s in range(0, x.shape[0], batch_frames):
        dist[s:s + batch_frames], labels[s:s + batch_frames] = prepared.nearest(x[s:s + batch_frames])
    return labels, dist


def kmeans_plus_plus(x: torch.Tensor, k: int, rng: np.random.Generator, batch_frames: int = 4096) -> torch.Tensor:
    """Greedy k-means++ (Arthur & Vassilvitskii 2007, with scikit-learn's 2 + ln k local
    trials per centre): (N, D) -> (k, D) centroids chosen among the rows of x.

    The random draws come from `rng` (numpy), so a seed gives the same centres on a
    given device."""
    n = x.shape[0]
    if n < k:
        raise ConfigError(f"k-means++ needs at least k={k} frames, got {n}")
    trials = 2 + int(math.log(k))
    centres = torch.empty(k, x.shape[1], dtype=x.dtype, device=x.device)
    first = int(rng.integers(n))
    centres[0] = x[first]
    closest = _to_candidates(x, x[first:first + 1], batch_frames)[0]  # (N,)
    for c in range(1, k):
        cum = torch.cumsum(closest.double(), 0)
        total = float(cum[-1])
        if total <= 0:  # every frame sits on a centre already: take any frames
            cand = torch.as_tensor(rng.integers(n, size=trials), device=x.device)
        else:
            draws = torch.as_tensor(rng.random(trials) * total, dtype=torch.float64, device=x.device)
            cand = torch.searchsorted(cum, draws, right=True).clamp_(max=n - 1)
        d = torch.minimum(_to_candidates(x, x[cand], batch_frames), closest)  # (trials, N)
        best = int(torch.argmin(d.double().sum(1)))
        closest = d[best]
        centres[c] = x[cand[best]]
    return centres


def _to_candidates(x: torch.Tensor, cand: torch.Tensor, batch_frames: int) -> torch.Tensor:
    """(N, D), (L, D) -> (L, N) squared distances."""
    origin = cand.mean(0)
    out = torch.empty(cand.shape[0], x.shape[0], dtype=torch.float32, device=x.device)
    for s in range(0, x.shape[0], batch_frames):
        out[:, s:s + batch_frames] = sq_distances(x[s:s + batch_frames], cand, origin).T
    return out


def cluster_sums(x: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor, segments: bool | None = None
                 ) -> torch.Tensor:
    """(N, D) frames, (N,) labels, (K,) counts -> (K, D) float64 sums of each cluster's frames.

    On the CPU a serial index_add_ (deterministic, in index order); elsewhere
    (segments=True) the differences of a cumulative sum over the frames sorted by
    label, so that no float atomics make the result vary from run to run."""
    if segments is None:
        segments = x.device.type != "cpu"
    if not segments:
        return torch.zeros(counts.shape[0], x.shape[1], dtype=torch.float64, device=x.device).index_add_(
            0, labels, x.double())
    order = torch.argsort(labels, stable=True)
    csum = torch.cat([x.new_zeros(1, x.shape[1], dtype=torch.float64), x[order].double().cumsum(0)])
    ends = counts.cumsum(0)
    return csum[ends] - csum[ends - counts]


class PassStats:
    """What one Lloyd pass accumulates over chunks of frames: per-cluster counts and
    float64 sums, the inertia (sum of squared distances to the nearest centroid), and
    the `k` frames farthest from their centroid (where empty clusters are re-seeded).

        stats = PassStats(centroids)
        for chunk in chunks: stats.add(chunk)
        new, reseeded = stats.update(min_cluster_size=1)
    """

    def __init__(self, centroids: torch.Tensor, batch_frames: int = 4096):
        self.centroids = centroids
        self.batch_frames = batch_frames
        k, dim = centroids.shape
        dev = centroids.device
        self.counts = torch.zeros(k, dtype=torch.int64, device=dev)
        self.sums = torch.zeros(k, dim, dtype=torch.float64, device=dev)
        self.inertia = 0.0
        self.frames = 0
        self._prepared = _Centroids(centroids)
        self._far_x = torch.empty(0, dim, dtype=centroids.dtype, device=dev)
        self._far_d = torch.empty(0, dtype=torch.float32, device=dev)

    def add(self, x: torch.Tensor) -> None:
        """Accumulate frames x (N, D) (on the centroids' device)."""
        for s in range(0, x.shape[0], self.batch_frames):
            self._add_chunk(x[s:s + self.batch_frames])

    def _add_chunk(self, x: torch.Tensor) -> None:
        k = self.centroids.shape[0]
        dist, labels = self._prepared.nearest(x)
        self.inertia += float(dist.double().sum())
        self.frames += x.shape[0]
        counts = torch.bincount(labels, minlength=k)
        self.sums += cluster_sums(x, labels, counts)
        self.counts += counts
        # keep the k farthest frames seen so far (candidates for re-seeding)
        far_d = torch.cat([self._far_d, dist])
        far_x = torch.cat([self._far_x, x])
        if far_d.shape[0] > k:
            far_d, idx = torch.topk(far_d, k, sorted=True)
            far_x = far_x[idx]
        self._far_d, self._far_x = far_d, far_x

    def update(self, min_cluster_size: int = 1) -> tuple[torch.Tensor, int]:
        """(new centroids (K, D), number re-seeded): the mean of each cluster's frames;
        a cluster with fewer than `min_cluster_size` frames (at least the empty ones)
        is moved onto one of the frames farthest from their centroid, the farthest
        first, each frame used once."""
        counts = self.counts
        new = self.centroids.clone()
        ok = counts > 0
        new[ok] = (self.sums[ok] / counts[ok, None].double()).to(new.dtype)
        small = torch.nonzero(counts < max(1, min_cluster_size)).flatten()
        if small.numel():
            order = torch.argsort(self._far_d, descending=True, stable=True)
            m = min(small.numel(), order.numel())
            new[small[:m]] = self._far_x[order[:m]]
        return new, int(small.numel())
