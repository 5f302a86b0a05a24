"""A k-means model: centroids (K, D) and what they were fitted on; predict, save, load.

    model = KMeans.fit(frames, KMeansConfig(k=50, seed=0))    # in memory, (N, D)
    model = fit_kmeans("feats/train", KMeansConfig(k=50)).model  # a feature dir, streamed (fit.py)
    codes = model.predict(frames)                              # (T,) int64
    codes = model.predict(frames, penalty=1.0)                 # duration-penalised (DPDP)
    model.save("kmeans.pt"); KMeans.load("kmeans.pt")

Context (`context` = c > 0, `kmeans fit --context`): the model clusters each frame
stacked with its c neighbours on either side, [x_{t-c} .. x_{t+c}] (edges repeated;
frames.stack_context), so its centroids are (K, (2c + 1) D); predict, distances, inertia
and segment take an utterance's frames (T, D) and stack them themselves. Context makes
the units follow the frames' trajectory rather than single frames: fewer flickers, more
phone-like clusters.

The file is a plain dict of tensors, numbers, strings and lists (torch.load with
weights_only=True reads it): kind, version, centroids, k, dim, frame_shift,
feature_meta (the feature dir's meta.json), info (the fit's report: config, inertia
history, re-seeded clusters, cluster sizes, ...), context.

Duration-penalised units (`penalty` > 0; DPDP, Kamper 2022): instead of each frame's
nearest centroid, the utterance is cut into segments with one centroid each, minimising

    sum_t ||x_t - c(t)||^2 + lam * (number of segments),  lam = penalty * inertia per frame

exactly, by dynamic programming (speechunits.models.segmentation.dp_segment, the
piecewise-constant quantizer's solver). A unit must now save more distortion than lam
to start, so the one- and two-frame flickers of frame-wise k-means merge into their
neighbours: fewer, longer units, more alike across speakers. `penalty` is relative to
the fit's mean squared distance of a frame to its centroid (info["inertia_per_frame"]),
so one value suits any feature scale; 0 is the nearest centroid.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from speechunits.errors import SpeechUnitsError
from speechunits.fileio import save_torch
from speechunits.units.kmeans.frames import stack_context
from speechunits.units.kmeans.lloyd import assign, sq_distances

if TYPE_CHECKING:
    from speechunits.units.kmeans.fit import KMeansConfig

__all__ = ["KMeans", "MODEL_KIND"]

MODEL_KIND = "speechunits-kmeans"
MODEL_VERSION = 1


class KMeans:
    """Centroids (K, (2 context + 1) D) float32 on a device, with the frame shift and
    feature meta of the features they were fitted on, the fit report (`info`) and the
    frames of context stacked on either side of a frame (module docstring)."""

    def __init__(self, centroids, frame_shift: float | None = None, feature_meta: dict | None = None,
                 info: dict | None = None, device: str | torch.device = "cpu", context: int = 0):
        c = torch.as_tensor(np.asarray(centroids) if not isinstance(centroids, torch.Tensor) else centroids)
        if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
            raise SpeechUnitsError(f"k-means centroids must have shape (K, D), got {tuple(c.shape)}")
        if context < 0 or c.shape[1] % (2 * context + 1):
            raise SpeechUnitsError(f"k-means centroids of {c.shape[1]} dims cannot hold {context} frames of context "
                                   "on either side")
        self.context = int(context)
        self.centroids = c.to(device=device, dtype=torch.float32).contiguous()
        self.frame_shift = frame_shift
        self.feature_meta = dict(feature_meta or {})
        self.info = dict(info or {})

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        """The centroids' dimension: (2 context + 1) x frame_dim."""
        return int(self.centroids.shape[1])

    @property
    def frame_dim(self) -> int:
        """The dimension of one input frame (dim without context)."""
        return self.dim // (2 * self.context + 1)

    def to(self, device: str | torch.device) -> "KMeans":
        """The same model with its centroids on `device`."""
        return type(self)(self.centroids, self.frame_shift, self.feature_meta, self.info, device, self.context)

    @property
    def device(self) -> torch.device:
        return self.centroids.device

    @classmethod
    def fit(cls, frames, config: "KMeansConfig | None" = None, init=None) -> "KMeans":
        """Fit on frames (N, D) held in memory (numpy or torch): k-means++ (or the
        given `init` centroids (K, D)), then Lloyd iterations (see fit.py)."""
        from speechunits.units.kmeans.fit import KMeansConfig, fit_frames

        return fit_frames(frames, config or KMeansConfig(), init=init)

    def model_id(self) -> str:
        """A short hash of the centroids: names this model in apply outputs."""
        return hashlib.sha1(self.centroids.cpu().numpy().tobytes()).hexdigest()[:16]

    def _frames(self, x) -> torch.Tensor:
        """An utterance's frames (T, frame_dim) -> (T, dim): checked, context stacked, on the device."""
        shape = tuple(np.shape(x))
        if len(shape) != 2 or shape[1] != self.frame_dim:
            raise SpeechUnitsError(f"expected frames of shape (T, {self.frame_dim}), got {shape}")
        if self.context:
            if isinstance(x, torch.Tensor):
                x = x.detach().cpu().float()
            x = stack_context(np.asarray(x, dtype=np.float32), self.context) if shape[0] else np.zeros((0, self.dim))
        return torch.as_tensor(x).to(device=self.device, dtype=torch.float32)

    def predict(self, x, batch_frames: int = 4096, penalty: float = 0.0) -> np.ndarray:
        """Frames (T, frame_dim) -> the nearest centroid of each, (T,) int64 (ties: the lowest index);
        with penalty > 0, the centroid of each frame's segment in the duration-penalised
        segmentation (module docstring)."""
        if self.segment_cost(penalty) > 0:
            return self.segment(x, penalty)
        labels, _ = assign(self._frames(x), self.centroids, batch_frames)
        return labels.cpu().numpy()

    def segment_cost(self, penalty: float) -> float:
        """The cost lam of one segment for a duration penalty: penalty times the fit's mean
        squared distance of a frame to its centroid (0 for penalty 0). Raises for a negative
        penalty, or a positive one on a model whose fit recorded no inertia per frame."""
        if penalty < 0:
            raise SpeechUnitsError(f"the duration penalty must be >= 0, got {penalty}")
        if penalty == 0:
            return 0.0
        scale = self.info.get("inertia_per_frame")
        if not scale or scale <= 0:
            raise SpeechUnitsError("this k-means model records no inertia per frame (info['inertia_per_frame']), "
                                   "which scales the duration penalty: refit it with `speechunits kmeans fit`")
        return float(penalty) * float(scale)

    def segment(self, x, penalty: float) -> np.ndarray:
        """Frames (T, frame_dim) -> (T,) int64 codes, piecewise constant: the exact minimum of
        squared distances + segment_cost(penalty) per segment."""
        from speechunits.models.segmentation import dp_segment

        lam = self.segment_cost(penalty)
        frames = self._frames(x)
        if frames.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        dist = sq_distances(frames, self.centroids).clamp_min(0)[None]
        seg = dp_segment(dist, torch.tensor([frames.shape[0]], device=dist.device), lam)
        return seg.codes[0].cpu().numpy().astype(np.int64)

    def distances(self, x) -> np.ndarray:
        """Frames (T, frame_dim) -> squared Euclidean distances to every centroid, (T, K) float32."""
        return sq_distances(self._frames(x), self.centroids).cpu().numpy()

    def inertia(self, x, batch_frames: int = 4096) -> float:
        """Sum over frames (T, frame_dim) of the squared distance to the nearest centroid."""
        _, d = assign(self._frames(x), self.centroids, batch_frames)
        return float(d.double().sum())

    def to_dict(self) -> dict:
        return {
            "kind": MODEL_KIND,
            "version": MODEL_VERSION,
            "centroids": self.centroids.cpu(),
            "k": self.k,
            "dim": self.dim,
            "frame_shift": self.frame_shift,
            "feature_meta": self.feature_meta,
            "info": self.info,
            "context": self.context,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the model atomically (torch.save of `to_dict()`)."""
        save_torch(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "KMeans":
        path = Path(path)
        if not path.is_file():
            raise SpeechUnitsError(f"{path}: k-means model not found")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise SpeechUnitsError(f"{path}: cannot read k-means model: {e}") from e
        if not isinstance(obj, dict) or obj.get("kind") != MODEL_KIND:
            raise SpeechUnitsError(f"{path}: not a k-means model (speechunits kmeans fit writes them)")
        if obj.get("version", 0) > MODEL_VERSION:
            raise SpeechUnitsError(f"{path}: k-means model version {obj['version']} is newer than this toolkit's")
        return cls(obj["centroids"], obj.get("frame_shift"), obj.get("feature_meta"), obj.get("info"), device=device,
                   context=int(obj.get("context", 0)))
