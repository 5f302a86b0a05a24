"""Centroid regression: an affine read-out that pulls a tap's frames toward their k-means centroids.

An affine map y = W x + b (W (D, D), b (D,)) is fitted on training frames x_t by least
squares so that each frame lands on its nearest centroid c_t, with a ridge term pulling
W toward the identity, alternately with reassigning every frame to the centroid nearest
to its mapped value:

    minimise  sum_t ||W x_t + b - c_t||^2 + lam ||W - I||^2,   lam = ridge * sum_t ||x_t||^2 / D

(lam is `ridge` times the mean eigenvalue of the frames' second-moment matrix, summed
over the frames, so `ridge` does not depend on the features' scale or the sample's
size). Neither half-step can raise this objective (the reassignment minimises it over
the labels, the solve over W and b), so it never rises. At the first assignment c_t is
the nearest centroid of x_t itself, and since k-means residuals sum to zero in each
cluster W is close to (S_b + lam I)(S_b + S_w + lam I)^-1 (second moments), a
Wiener-style filter of the between-cluster scatter S_b (kept) against the within-cluster
scatter S_w (shrunk): frames of one cluster draw together, the directions along which
the clusters differ are kept. On speechocean762 this read-out of a masked model's
projection lowered the across-speaker ABX of 5 of 6 models (egs/speechocean762/
EXPERIMENTS.md, eighth session), unlike LDA, whitening or per-speaker fMLLR.

    reg = CentroidRegression.fit(frames, kmeans, RegressionConfig(ridge=0.3, iterations=5))
    y = reg(x)                        # (T, D) -> (T, D)
    reg.save("exp/masked/readout.pt") # speechunits kmeans regress; extract --readout

k-means on the mapped frames (`kmeans fit --readout`, `kmeans apply --readout`) reads a
feature dir through MappedFeatures; check_pairing refuses a k-means model and a read-out
that do not belong together (units of frames the centroids were not fitted for).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from speechunits.errors import SpeechUnitsError
from speechunits.units.kmeans.lloyd import assign

__all__ = ["RegressionConfig", "CentroidRegression", "fit_regression", "MappedFeatures", "check_pairing"]

MODEL_KIND = "centroid-regression"
MODEL_VERSION = 1


@dataclass
class RegressionConfig:
    ridge: float = 0.3  # weight of ||W - I||^2, relative to the frames' mean squared norm per dimension
    iterations: int = 5  # least-squares fits, each after reassigning the frames under the current map
    max_frames: int = 300_000  # frames sampled for the fit (kmeans fit's seeded sample)
    seed: int = 0
    batch_frames: int = 8192  # frames per accumulation step

    def __post_init__(self):
        if not (self.ridge > 0 and np.isfinite(self.ridge)):
            raise SpeechUnitsError(f"centroid regression ridge must be a positive number, got {self.ridge}")
        if self.iterations < 1:
            raise SpeechUnitsError(f"centroid regression iterations must be >= 1, got {self.iterations}")
        if self.max_frames < 1 or self.batch_frames < 1:
            raise SpeechUnitsError("centroid regression max_frames and batch_frames must be >= 1")


class CentroidRegression:
    """The fitted map: weight (D, D) and bias (D,) float32, applied as x @ weight.T + bias,
    with the fit's report (`info`) and the id of the k-means model it was fitted for."""

    def __init__(self, weight, bias, kmeans_id: str | None = None, info: dict | None = None):
        w = torch.as_tensor(np.asarray(weight) if not isinstance(weight, torch.Tensor) else weight).float()
        b = torch.as_tensor(np.asarray(bias) if not isinstance(bias, torch.Tensor) else bias).float()
        if w.ndim != 2 or w.shape[0] != w.shape[1] or b.shape != (w.shape[0],):
            raise SpeechUnitsError(f"a centroid regression needs weight (D, D) and bias (D,), got "
                                   f"{tuple(w.shape)} and {tuple(b.shape)}")
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise SpeechUnitsError("the centroid regression's weight or bias is not finite")
        self.weight, self.bias = w.contiguous(), b.contiguous()
        self.kmeans_id = kmeans_id
        self.info = dict(info or {})

    @property
    def dim(self) -> int:
        return int(self.weight.shape[0])

    def model_id(self) -> str:
        """A short hash of the map: names it in extract outputs."""
        data = self.weight.numpy().tobytes() + self.bias.numpy().tobytes()
        return hashlib.sha1(data).hexdigest()[:16]

    def describe(self) -> dict:
        """How outputs name the map: its kind, id and the id of its k-means model."""
        return {"kind": MODEL_KIND, "id": self.model_id(), "kmeans_id": self.kmeans_id}

    def __call__(self, x):
        """Frames (T, D) (numpy or torch) -> mapped frames (T, D), the same kind (float32)."""
        if isinstance(x, torch.Tensor):
            if x.ndim != 2 or x.shape[1] != self.dim:
                raise SpeechUnitsError(f"expected frames of shape (T, {self.dim}), got {tuple(x.shape)}")
            w, b = self.weight.to(x.device), self.bias.to(x.device)
            return x.float() @ w.T + b
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise SpeechUnitsError(f"expected frames of shape (T, {self.dim}), got {x.shape}")
        return x @ self.weight.numpy().T + self.bias.numpy()

    @classmethod
    def fit(cls, frames, kmeans, config: RegressionConfig | None = None) -> "CentroidRegression":
        """Fit on frames (N, D) held in memory for a k-means model (speechunits.units.kmeans.KMeans)
        with D-dim centroids (see the module docstring). Float64 sums; the report lists, per
        iteration, the objective per frame and the fraction of frames whose centroid changed
        (None for the first: its labels are the k-means model's own). Memory: the frames as
        float32 and one chunk in float64."""
        cfg = config or RegressionConfig()
        _check_single_frames(kmeans)
        start = time.perf_counter()
        x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames).cpu().float()
        centroids32 = kmeans.centroids.cpu().float()
        centroids = centroids32.double()
        n, d = x.shape if x.ndim == 2 else (0, 0)
        if x.ndim != 2 or d != centroids.shape[1]:
            raise SpeechUnitsError(f"centroid regression: frames of shape {tuple(x.shape)} for "
                                   f"{centroids.shape[1]}-dim centroids")
        if n <= d:
            raise SpeechUnitsError(f"centroid regression: {n} frames for a {d} x {d} map; give more than {d}")
        if not torch.isfinite(x).all():
            raise SpeechUnitsError("centroid regression: the frames hold NaN or infinite values")
        chunks = range(0, n, cfg.batch_frames)
        gram = torch.zeros(d + 1, d + 1, dtype=torch.float64)
        for s in chunks:
            xa = _augment(x[s : s + cfg.batch_frames])
            gram += xa.T @ xa
        lam = cfg.ridge * float(torch.trace(gram[:d, :d])) / d
        prior = torch.zeros(d + 1, d, dtype=torch.float64)  # the identity map, in (x, 1) -> y form
        prior[:d] = torch.eye(d, dtype=torch.float64) * lam
        lhs = gram.clone()
        lhs[:d, :d] += torch.eye(d, dtype=torch.float64) * lam
        wb = torch.cat([torch.eye(d, dtype=torch.float64), torch.zeros(1, d, dtype=torch.float64)])  # (D+1, D)
        history, previous = [], None
        for _ in range(cfg.iterations):
            rhs = prior.clone()
            labels = []
            for s in chunks:
                xa = _augment(x[s : s + cfg.batch_frames])
                lab, _ = assign((xa @ wb).float(), centroids32, cfg.batch_frames)
                labels.append(lab)
                rhs += xa.T @ centroids[lab]
            labels = torch.cat(labels)
            moved = None if previous is None else float((labels != previous).double().mean())
            previous = labels
            wb = torch.linalg.solve(lhs, rhs)
            history.append({"objective_per_frame": _objective(x, wb, centroids, labels, lam, cfg.batch_frames) / n,
                            "reassigned": moved})
        info = {"frames": n, "dim": d, "k": int(centroids.shape[0]), "config": asdict(cfg), "lambda": lam,
                "history": history, "seconds": time.perf_counter() - start}
        return cls(wb[:d].T.float(), wb[d].float(), kmeans_id=kmeans.model_id(), info=info)

    def save(self, path: str | os.PathLike) -> None:
        from speechunits.fileio import save_torch

        save_torch(path, {"kind": MODEL_KIND, "version": MODEL_VERSION, "weight": self.weight, "bias": self.bias,
                          "kmeans_id": self.kmeans_id, "info": self.info})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CentroidRegression":
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise SpeechUnitsError(f"{path}: no such centroid regression file") from None
        except Exception as e:  # noqa: BLE001 - a corrupt or foreign file, named
            raise SpeechUnitsError(f"{path}: not a centroid regression file ({e})") from None
        if not isinstance(state, dict) or state.get("kind") != MODEL_KIND:
            raise SpeechUnitsError(f"{path}: not a centroid regression file (from `speechunits kmeans regress`)")
        if not isinstance(state.get("version", 0), int) or state.get("version", 0) > MODEL_VERSION:
            raise SpeechUnitsError(f"{path}: centroid regression version {state['version']} is newer than "
                                   f"this toolkit's")
        try:
            return cls(state["weight"], state["bias"], state.get("kmeans_id"), state.get("info"))
        except (KeyError, TypeError, ValueError) as e:
            raise SpeechUnitsError(f"{path}: a malformed centroid regression file ({e!r})") from None


def _augment(x: torch.Tensor) -> torch.Tensor:
    """(n, D) -> (n, D + 1) float64 with a column of ones (the bias)."""
    x = x.double()
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)


def _objective(x, wb, centroids, labels, lam, batch_frames) -> float:
    d = x.shape[1]
    total = lam * float(((wb[:d].T - torch.eye(d, dtype=wb.dtype)) ** 2).sum())
    for s in range(0, x.shape[0], batch_frames):
        r = _augment(x[s : s + batch_frames]) @ wb - centroids[labels[s : s + batch_frames]]
        total += float((r * r).sum())
    return total


def _check_single_frames(kmeans) -> None:
    """A centroid regression maps single frames onto centroids of single frames."""
    if getattr(kmeans, "context", 0):
        raise SpeechUnitsError(f"the k-means model stacks {kmeans.context} frames of context on either side, and a "
                               "centroid regression maps single frames: fit it for a k-means model without --context")


def fit_regression(features, kmeans, config: RegressionConfig | None = None, utts: list[str] | None = None,
                   frame_shift: float | None = None):
    """Centroid regression on a feature dir (or .scp) for a k-means model: a seeded sample of
    at most config.max_frames frames (as kmeans fit draws it), then CentroidRegression.fit.
    Returns (CentroidRegression, BatchReport): unreadable or malformed utterances are left out
    and named in the report."""
    from speechunits.units.kmeans.fit import sample_frames

    cfg = config or RegressionConfig()
    _check_single_frames(kmeans)  # before reading any frame
    sampled = sample_frames(features, cfg.max_frames, cfg.seed, utts, frame_shift, dim=kmeans.dim)
    frames, report, good = sampled.frames, sampled.report, len(sampled.utts)
    if frames.shape[0] == 0:
        where = getattr(sampled.source, "path", features)
        first = "; ".join(f"{u}: {m}" for u, m in sorted(report.failures.items())[:3])
        raise SpeechUnitsError(f"{where}: no usable utterance to fit the centroid regression on "
                               f"({len(report.failures)} failed{', e.g. ' + first if first else ''})")
    del sampled
    reg = CentroidRegression.fit(frames, kmeans, cfg)
    reg.info["utterances"] = good
    reg.info["features"] = str(features)
    return reg, report


class MappedFeatures:
    """A feature source (FeatureSource) whose frames pass through a centroid regression: the
    utterances, frame shift and path of `source`; meta is the source's meta.json with the map
    recorded under "readout" (so a k-means model fitted on these frames names its read-out).
    Frames of another width than the map's are an error naming the utterance; an array that
    is not float (T, D) is passed on unmapped, for the reader's checks to name."""

    def __init__(self, source, readout: CentroidRegression):
        meta = getattr(source, "meta", None) or {}
        where = getattr(source, "path", None) or "the features"
        if meta.get("readout"):
            raise SpeechUnitsError(f"{where}: these frames are already mapped by the centroid regression "
                                   f"{meta['readout'].get('id')}; give them without --readout")
        if meta.get("feature_dim") not in (None, readout.dim):
            raise SpeechUnitsError(f"{where}: {meta['feature_dim']}-dim features, but the read-out maps "
                                   f"{readout.dim}-dim frames")
        self.source, self.readout = source, readout
        self.frame_shift = source.frame_shift
        self.path = getattr(source, "path", None)
        self.meta = {**meta, "feature_dim": readout.dim, "readout": readout.describe()}

    def utts(self) -> list[str]:
        return self.source.utts()

    def load(self, utt: str) -> np.ndarray:
        x = np.asarray(self.source.load(utt))
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
            return x
        if x.shape[1] != self.readout.dim:
            raise SpeechUnitsError(f"utterance {utt}: {x.shape[1]}-dim frames, but the read-out maps "
                                   f"{self.readout.dim}-dim frames")
        return self.readout(x)


def check_pairing(kmeans, mapped_by: dict | None) -> None:
    """Refuse k-means units of frames the centroids were not fitted for. `mapped_by` is the
    read-out the frames went through (CentroidRegression.describe(), or the record in a mapped
    feature dir's meta.json), None for unmapped frames. A model fitted on mapped frames
    (kmeans fit --readout) needs frames mapped by that same read-out; mapped frames otherwise
    go with the k-means model their read-out was fitted for (kmeans regress)."""
    fitted_on = (getattr(kmeans, "feature_meta", None) or {}).get("readout")
    if mapped_by is None:
        if fitted_on:
            raise SpeechUnitsError(f"the k-means model was fitted on frames mapped by the centroid regression "
                                   f"{fitted_on.get('id')}: give that read-out too (--readout)")
        return
    if fitted_on:
        if fitted_on.get("id") != mapped_by.get("id"):
            raise SpeechUnitsError(f"the k-means model was fitted on frames mapped by the centroid regression "
                                   f"{fitted_on.get('id')}, not by this one ({mapped_by.get('id')})")
    elif mapped_by.get("kmeans_id") not in (None, kmeans.model_id()):
        raise SpeechUnitsError(f"the read-out {mapped_by.get('id')} was fitted for the k-means model "
                               f"{mapped_by.get('kmeans_id')}, not this one ({kmeans.model_id()}): give its own "
                               "k-means model, or one fitted on its mapped frames (kmeans fit --readout)")
