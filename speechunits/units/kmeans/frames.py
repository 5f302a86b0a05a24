"""Reading frames for k-means: one utterance at a time, checked, and the utterance list.

An utterance's array must be float (T, D) with T >= 1, the model's D, and finite
values; anything else is a SpeechUnitsError that names the utterance (and the
file, through the feature store's own errors).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from speechunits.data.featdir import FeatureSource, open_feature_source
from speechunits.errors import DataFormatError, SpeechUnitsError

__all__ = ["read_frames", "open_features", "utterance_list", "select_utts", "stack_context"]


def open_features(features: str | os.PathLike | FeatureSource, frame_shift: float | None = None) -> FeatureSource:
    """A feature source from a path (folder of arrays, or a Kaldi .scp), or the source itself."""
    if isinstance(features, (str, os.PathLike)):
        return open_feature_source(features, frame_shift)
    return features


def read_frames(source: FeatureSource, utt: str, dim: int | None = None) -> np.ndarray:
    """Utterance `utt` of `source` as float32 (T, D), checked (see the module docstring)."""
    x = source.load(utt)
    x = np.asarray(x)
    where = f"utterance {utt}"
    if not np.issubdtype(x.dtype, np.floating):
        kind = "integer unit ids" if np.issubdtype(x.dtype, np.integer) else f"dtype {x.dtype}"
        raise SpeechUnitsError(f"{where}: k-means needs float features (T, D), found {kind} of shape {x.shape}")
    if x.ndim != 2:
        raise SpeechUnitsError(f"{where}: k-means needs features of shape (T, D), found shape {x.shape}")
    if x.shape[0] == 0:
        raise SpeechUnitsError(f"{where}: no frames")
    if dim is not None and x.shape[1] != dim:
        raise SpeechUnitsError(f"{where}: {x.shape[1]}-dimensional features, expected {dim}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(1))[0])
        raise SpeechUnitsError(f"{where}: non-finite values (NaN or inf), first at frame {bad}")
    return x


def stack_context(x: np.ndarray, context: int) -> np.ndarray:
    """Each frame with `context` neighbours on either side: (T, D) -> (T, (2 context + 1) D),
    row t = [x[t - context], ..., x[t + context]] with the first and last frames repeated
    beyond the edges (context 0: x itself)."""
    if context < 0:
        raise SpeechUnitsError(f"the k-means context must be >= 0 frames, got {context}")
    if context == 0:
        return x
    t = x.shape[0]
    index = np.clip(np.arange(t)[:, None] + np.arange(-context, context + 1)[None, :], 0, t - 1)
    return x[index].reshape(t, -1)


def utterance_list(path: str | os.PathLike) -> list[str]:
    """Utterance ids from a file whose lines start with one (a list, utt2spk, wav.scp,
    segments, text, feats.scp) or from a Kaldi data dir (its utt2spk)."""
    path = Path(path)
    if path.is_dir():
        if not (path / "utt2spk").is_file():
            raise SpeechUnitsError(f"{path}: a data dir needs utt2spk to list its utterances")
        path = path / "utt2spk"
    if not path.is_file():
        raise SpeechUnitsError(f"{path}: utterance list not found")
    out, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if fields[0] in seen:
                raise DataFormatError(f"utterance {fields[0]} listed twice", str(path), n)
            seen.add(fields[0])
            out.append(fields[0])
    return out


def select_utts(source: FeatureSource, utts: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """(the source's utterances, restricted to `utts` when given, sorted;
    {utt: reason} for listed utterances the source does not have)."""
    have = source.utts()
    if utts is None:
        return sorted(have), {}
    present = set(have)
    missing = {u: "listed, but not in the feature store" for u in utts if u not in present}
    return sorted(u for u in set(utts) if u in present), missing
