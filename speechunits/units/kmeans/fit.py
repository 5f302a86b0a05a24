"""Fitting k-means on a feature dir with bounded memory.

    result = fit_kmeans("feats/train", KMeansConfig(k=100, max_frames=500_000, seed=0))
    result.model.save("kmeans.pt"); result.report.failures   # {utt: reason}

How (deterministic for a seed, on a given device):

1. One pass over the utterances (one array in memory at a time) draws a uniform
   sample of at most `max_frames` frames: every frame gets a random key from
   (seed, utterance id, frame index) and the frames with the smallest keys are
   kept (bottom-k sampling; the buffer never exceeds 2 x max_frames frames). The
   sample does not depend on the order of the utterances. When the dir has at most
   `max_frames` frames, the sample is all of them.
2. Greedy k-means++ on `init_frames` of the sampled frames.
3. Full-batch Lloyd iterations on the sample (held on the device) until the inertia
   falls by less than `tol` (relative) or after `iterations`.
4. Optionally `full_passes` more full-batch Lloyd iterations streamed over every
   frame of the dir (per-cluster sums accumulated utterance by utterance).
5. A last streamed pass (skipped when the sample is every frame) measures the
   inertia and the cluster sizes on all frames.

Clusters left with fewer than `min_cluster_size` frames after an iteration (always
the empty ones) are re-seeded on the frames farthest from their centroids; the
re-seedings are counted per iteration in the model's info["history"].

With `context` = c > 0 every utterance's frames are stacked with their c neighbours on
either side before sampling (frames.stack_context), and the model records c so that it
stacks the frames it labels the same way.

Memory: the sample, max_frames x D float32 (4 bytes each, twice that while
sampling; D = (2c + 1) x the features' dimension with context), plus one
(batch_frames, K) distance matrix.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from speechunits.batch import BatchReport
from speechunits.data.featdir import FeatureSource
from speechunits.errors import SpeechUnitsError
from speechunits.units.kmeans.frames import open_features, read_frames, select_utts, stack_context
from speechunits.units.kmeans.lloyd import PassStats, kmeans_plus_plus
from speechunits.units.kmeans.model import KMeans

log = logging.getLogger(__name__)

__all__ = ["KMeansConfig", "FitResult", "FrameSample", "fit_frames", "fit_kmeans"]


@dataclass
class KMeansConfig:
    """k: clusters; max_frames: frames sampled for fitting; init_frames: sampled frames
    k-means++ runs on; iterations / tol: Lloyd iterations on the sample (at most; stop
    when the inertia falls by less than tol, relative); full_passes: Lloyd iterations
    streamed over every frame afterwards; min_cluster_size: smaller clusters are
    re-seeded; batch_frames: frames per distance computation; device: torch device;
    context: frames stacked on either side of each frame before clustering (0: none)."""

    k: int = 100
    max_frames: int = 500_000
    init_frames: int = 100_000
    iterations: int = 100
    tol: float = 1e-5
    full_passes: int = 0
    min_cluster_size: int = 1
    seed: int = 0
    batch_frames: int = 4096
    device: str = "cpu"
    context: int = 0

    def __post_init__(self):
        for name in ("k", "max_frames", "init_frames", "batch_frames", "min_cluster_size"):
            if getattr(self, name) < 1:
                raise SpeechUnitsError(f"k-means: {name} must be at least 1, got {getattr(self, name)}")
        if self.iterations < 0 or self.full_passes < 0:
            raise SpeechUnitsError("k-means: iterations and full_passes must be >= 0")
        if self.tol < 0:
            raise SpeechUnitsError(f"k-means: tol must be >= 0, got {self.tol}")
        if self.context < 0:
            raise SpeechUnitsError(f"k-means: context must be >= 0 frames, got {self.context}")


@dataclass
class FitResult:
    model: KMeans
    report: BatchReport  # failures: utterances left out of the fit, with the reason


class FrameSample:
    """A seeded uniform sample of at most `max_frames` frames from utterances added one
    at a time (bottom-k sampling: the frames with the smallest random keys)."""

    def __init__(self, max_frames: int, seed: int = 0):
        self.max_frames, self.seed = max_frames, seed
        self._x: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._held = 0

    def add(self, utt: str, x: np.ndarray) -> None:
        keys = np.random.default_rng([self.seed, zlib.crc32(utt.encode("utf-8"))]).random(x.shape[0])
        self._x.append(x)
        self._keys.append(keys)
        self._held += x.shape[0]
        if self._held >= 2 * self.max_frames:
            self._compact()

    def _compact(self) -> None:
        if not self._x:
            return
        x, keys = np.concatenate(self._x), np.concatenate(self._keys)
        if keys.size > self.max_frames:
            keep = np.argpartition(keys, self.max_frames - 1)[: self.max_frames]
            x, keys = x[keep], keys[keep]
        self._x, self._keys, self._held = [x], [keys], keys.size

    def frames(self) -> np.ndarray:
        """The sample (n, D), in key order (a random permutation of the frames)."""
        self._compact()
        if not self._x:
            return np.zeros((0, 0), dtype=np.float32)
        order = np.argsort(self._keys[0], kind="stable")
        return self._x[0][order]


Pass = Callable[[torch.Tensor], PassStats]


def _memory_pass(x: torch.Tensor, batch_frames: int) -> Pass:
    def run(centroids: torch.Tensor) -> PassStats:
        stats = PassStats(centroids, batch_frames)
        stats.add(x)
        return stats
    return run


def _lloyd(run_pass: Pass, centroids: torch.Tensor, iterations: int, tol: float, min_cluster_size: int,
           history: list[dict], stage: str) -> tuple[torch.Tensor, bool]:
    """Up to `iterations` Lloyd iterations; appends one record per iteration to `history`.
    Returns (centroids, converged)."""
    prev = None
    for it in range(iterations):
        stats = run_pass(centroids)
        centroids, reseeded = stats.update(min_cluster_size)
        history.append({"stage": stage, "iteration": it + 1, "inertia": stats.inertia, "frames": stats.frames,
                        "reseeded": reseeded})
        converged = reseeded == 0 and prev is not None and prev - stats.inertia <= tol * prev
        level = logging.INFO if it == 0 or (it + 1) % 10 == 0 or converged or reseeded else logging.DEBUG
        log.log(level, "k-means %s iteration %d: inertia %.6g per frame, %d cluster(s) re-seeded%s",
                stage, it + 1, stats.inertia / max(stats.frames, 1), reseeded, " (converged)" if converged else "")
        if converged:
            return centroids, True
        prev = stats.inertia
    return centroids, False


def _summary(stats: PassStats, history: list[dict], cfg: KMeansConfig, **extra) -> dict:
    counts = stats.counts.cpu().tolist()
    return {
        "config": dataclasses.asdict(cfg),
        "frames": stats.frames,
        "inertia": stats.inertia,
        "inertia_per_frame": stats.inertia / max(stats.frames, 1),
        "counts": counts,
        "empty_clusters": sum(1 for c in counts if c == 0),
        "small_clusters": sum(1 for c in counts if c < cfg.min_cluster_size),
        "reseeded": sum(h["reseeded"] for h in history),
        "history": history,
        "inertia_history": [h["inertia"] / max(h["frames"], 1) for h in history],
        **extra,
    }


def _initial(x: torch.Tensor, cfg: KMeansConfig, rng: np.random.Generator, init) -> torch.Tensor:
    if init is not None:
        c = torch.as_tensor(np.asarray(init, dtype=np.float32)).to(x.device)
        if c.shape != (cfg.k, x.shape[1]):
            raise SpeechUnitsError(f"k-means: initial centroids of shape {tuple(c.shape)}, expected "
                                   f"({cfg.k}, {x.shape[1]})")
        return c
    return kmeans_plus_plus(x[: cfg.init_frames], cfg.k, rng, cfg.batch_frames)


def fit_frames(frames, config: KMeansConfig | None = None, init=None) -> KMeans:
    """k-means on frames (N, D) in memory: k-means++ on `init_frames` of them drawn at
    random (or the given `init` centroids (K, D)), then Lloyd iterations on all of
    them (max_frames and full_passes do not apply). With config.context the frames are
    one sequence, stacked with their neighbours (KMeans.fit on an utterance)."""
    cfg = config or KMeansConfig()
    start = time.perf_counter()
    x = np.asarray(frames, dtype=np.float32)
    if x.ndim != 2:
        raise SpeechUnitsError(f"k-means needs frames of shape (N, D), got {tuple(x.shape)}")
    x = torch.as_tensor(stack_context(x, cfg.context)).to(cfg.device)
    if x.shape[0] < cfg.k:
        raise SpeechUnitsError(f"k-means: {x.shape[0]} frames for k={cfg.k} clusters")
    if not torch.isfinite(x).all():
        raise SpeechUnitsError("k-means: frames hold NaN or inf")
    rng = np.random.default_rng(cfg.seed)
    perm = torch.as_tensor(rng.permutation(x.shape[0])[: cfg.init_frames], device=x.device)
    centroids = _initial(x[perm], cfg, rng, init)
    history: list[dict] = []
    run = _memory_pass(x, cfg.batch_frames)
    centroids, converged = _lloyd(run, centroids, cfg.iterations, cfg.tol, cfg.min_cluster_size, history, "sample")
    info = _summary(run(centroids), history, cfg, converged=converged, sample_frames=x.shape[0],
                    seconds=time.perf_counter() - start)
    return KMeans(centroids, info=info, device=cfg.device, context=cfg.context)


@dataclass
class SampledFrames:
    """sample_frames' result: the seeded sample of a feature store's frames."""
    source: FeatureSource
    frames: np.ndarray  # (n, D) float32, n <= max_frames
    utts: list[str]  # the utterances read
    total: int  # their frames
    dim: int | None  # D of the features, before any context (None when no utterance was read)
    report: BatchReport  # failures: utterances left out, with the reason


def sample_frames(features: str | os.PathLike | FeatureSource, max_frames: int, seed: int = 0,
                  utts: list[str] | None = None, frame_shift: float | None = None,
                  dim: int | None = None, context: int = 0) -> SampledFrames:
    """One pass over a feature dir (or .scp, or any FeatureSource): a FrameSample of at most
    `max_frames` frames of `utts` (all when None), every frame checked (read_frames; `dim`,
    else the store's meta.json feature_dim, else the first utterance's), each stacked with
    `context` neighbours on either side. Unreadable or malformed utterances are left out and
    named in the report."""
    source = open_features(features, frame_shift)
    names, missing = select_utts(source, utts)
    report = BatchReport(failures=dict(missing))
    if dim is None:
        dim = (getattr(source, "meta", {}) or {}).get("feature_dim")
    sample = FrameSample(max_frames, seed)
    good, total = [], 0
    for utt in names:
        with report.attempt(utt):
            x = read_frames(source, utt, dim)
            dim = x.shape[1]
            sample.add(utt, stack_context(x, context))
            total += x.shape[0]
            good.append(utt)
    return SampledFrames(source, sample.frames(), good, total, dim, report)


def fit_kmeans(features: str | os.PathLike | FeatureSource, config: KMeansConfig | None = None,
               utts: list[str] | None = None, frame_shift: float | None = None, init=None) -> FitResult:
    """k-means on a feature dir (or .scp, or any FeatureSource), streamed (see the module
    docstring). `utts` restricts the fit to these utterances. Unreadable or malformed
    utterances are left out and reported (result.report.failures); no usable frame at
    all, or fewer frames than clusters, is an error."""
    cfg = config or KMeansConfig()
    start = time.perf_counter()
    sampled = sample_frames(features, cfg.max_frames, cfg.seed, utts, frame_shift, context=cfg.context)
    source, frames, good, total, dim, report = (sampled.source, sampled.frames, sampled.utts, sampled.total,
                                                sampled.dim, sampled.report)
    del sampled
    meta = getattr(source, "meta", {}) or {}
    where = getattr(source, "path", features)
    if not good:
        first = "; ".join(f"{u}: {m}" for u, m in sorted(report.failures.items())[:3])
        raise SpeechUnitsError(f"{where}: no usable utterance to fit k-means on "
                               f"({len(report.failures)} failed{', e.g. ' + first if first else ''})")
    if frames.shape[0] < cfg.k:
        raise SpeechUnitsError(f"{where}: {frames.shape[0]} frames for k={cfg.k} clusters")
    x = torch.as_tensor(frames).to(cfg.device)
    del frames
    rng = np.random.default_rng(cfg.seed)
    centroids = _initial(x, cfg, rng, init)
    history: list[dict] = []
    run_sample = _memory_pass(x, cfg.batch_frames)
    centroids, converged = _lloyd(run_sample, centroids, cfg.iterations, cfg.tol, cfg.min_cluster_size, history,
                                  "sample")
    everything = x.shape[0] == total
    if everything:
        final = run_sample(centroids)
    else:
        del x, run_sample

        def run_all(c: torch.Tensor) -> PassStats:
            stats = PassStats(c, cfg.batch_frames)
            for chunk in _chunks(source, good, dim, cfg.batch_frames, cfg.context):
                stats.add(chunk.to(cfg.device))
            return stats

        if cfg.full_passes:
            centroids, converged = _lloyd(run_all, centroids, cfg.full_passes, cfg.tol, cfg.min_cluster_size,
                                          history, "full")
        final = run_all(centroids)
    info = _summary(final, history, cfg, converged=converged, sample_frames=min(total, cfg.max_frames),
                    utterances=len(good), failed_utterances=len(report.failures), features=str(where),
                    seconds=time.perf_counter() - start)
    return FitResult(KMeans(centroids, source.frame_shift, meta, info, device=cfg.device, context=cfg.context), report)


def _chunks(source: FeatureSource, utts: list[str], dim: int, batch_frames: int,
            context: int = 0) -> Iterator[torch.Tensor]:
    """The frames of `utts` (with `context`), concatenated into tensors of about `batch_frames` rows."""
    held, n = [], 0
    for utt in utts:
        x = stack_context(read_frames(source, utt, dim), context)
        held.append(x)
        n += x.shape[0]
        if n >= batch_frames:
            yield torch.from_numpy(np.concatenate(held))
            held, n = [], 0
    if held:
        yield torch.from_numpy(np.concatenate(held))
