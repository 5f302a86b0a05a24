"""Segment-boundary detection scores: precision, recall, F1 and the R-value.

A hypothesised boundary (where a unit starts) hits a reference boundary (a phone
edge) when they are at most `tolerance` seconds apart (20 ms by default, the usual
phone-segmentation setting). Each boundary is used at most once: the hits are a
maximum one-to-one matching. On a line with a symmetric window a greedy sweep finds
one: take both lists in time order; if the earlier of the two current boundaries
is out of reach of the other it can reach nothing later either, so drop it;
otherwise match the pair. (Exchange argument: matching the two earliest reachable
boundaries never blocks a larger matching.)

Which boundaries count: the utterance start and end are not boundaries, since any
segmentation "finds" them. Reference boundaries are the edges of the aligned
segments (a phone's start and end; two touching segments share one edge) except the
start of the first segment and the end of the last; hypothesised boundaries are
the unit starts except the first.

With HR = recall and OS = n_hyp / n_ref - 1 (the over-segmentation; equal to
recall / precision - 1 when there are hits), the R-value (Räsänen, Laine & Altosaar
2009) is

    r1 = sqrt((1 - HR)^2 + OS^2),  r2 = (-OS + HR - 1) / sqrt(2),  R = 1 - (|r1| + |r2|) / 2

R = 1 for a perfect segmentation; unlike F1 it penalises over-segmentation, which
otherwise pays (a boundary every frame has recall 1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np

from speechunits.data.ctm import LabelledSegment

__all__ = [
    "BoundaryScores",
    "match_boundaries",
    "r_value",
    "boundary_scores",
    "reference_boundaries",
    "unit_boundaries",
]

_TIME_EPS = 1e-9  # seconds: 0.02 apart counts as within a 0.02 tolerance despite rounding
_MERGE_EPS = 1e-6  # seconds: edges closer than this are one boundary


@dataclass
class BoundaryScores:
    precision: float
    recall: float
    f1: float
    r_value: float
    over_segmentation: float
    hits: int
    n_hyp: int
    n_ref: int
    tolerance: float

    def to_dict(self) -> dict:
        return asdict(self)


def match_boundaries(hyp: Sequence[float], ref: Sequence[float], tolerance: float) -> int:
    """The size of a maximum one-to-one matching of hyp and ref boundaries (seconds)
    with |h - r| <= tolerance."""
    h = np.sort(np.asarray(hyp, dtype=np.float64))
    r = np.sort(np.asarray(ref, dtype=np.float64))
    i = j = hits = 0
    while i < h.size and j < r.size:
        if abs(h[i] - r[j]) <= tolerance + _TIME_EPS:
            hits += 1
            i += 1
            j += 1
        elif h[i] < r[j]:
            i += 1
        else:
            j += 1
    return hits


def r_value(recall: float, over_segmentation: float) -> float:
    """Räsänen et al. (2009): R = 1 - (|r1| + |r2|) / 2 from HR = recall and OS."""
    r1 = math.sqrt((1.0 - recall) ** 2 + over_segmentation**2)
    r2 = (-over_segmentation + recall - 1.0) / math.sqrt(2.0)
    return 1.0 - (abs(r1) + abs(r2)) / 2.0


def _scores(hits: int, n_hyp: int, n_ref: int, tolerance: float) -> BoundaryScores:
    precision = hits / n_hyp if n_hyp else 0.0
    recall = hits / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    os_ = n_hyp / n_ref - 1.0 if n_ref else math.nan
    r = r_value(recall, os_) if n_ref else math.nan
    return BoundaryScores(precision, recall, f1, r, os_, hits, n_hyp, n_ref, tolerance)


def boundary_scores(
    pairs: Iterable[tuple[Sequence[float], Sequence[float]]], tolerance: float = 0.02
) -> BoundaryScores:
    """Scores pooled over utterances: `pairs` yields (hyp, ref) boundary times per
    utterance; hits and counts are summed before the ratios are taken."""
    hits = n_hyp = n_ref = 0
    for hyp, ref in pairs:
        hits += match_boundaries(hyp, ref, tolerance)
        n_hyp += len(hyp)
        n_ref += len(ref)
    return _scores(hits, n_hyp, n_ref, tolerance)


def reference_boundaries(segments: Sequence[LabelledSegment]) -> np.ndarray:
    """Inner phone edges of one utterance's alignment (see the module docstring), sorted."""
    if not segments:
        return np.zeros(0)
    segs = sorted(segments, key=lambda s: (s[0], s[1]))
    edges = np.sort(np.array([t for s, e, _ in segs for t in (s, e)], dtype=np.float64))
    keep = np.concatenate([[True], np.diff(edges) > _MERGE_EPS])
    edges = edges[keep]
    first, last = segs[0][0], max(e for _, e, _ in segs)
    inner = (edges > first + _MERGE_EPS) & (edges < last - _MERGE_EPS)
    return edges[inner]


def unit_boundaries(durations: Sequence[int], shift: float) -> np.ndarray:
    """Start times of all units but the first: cumsum(durations)[:-1] * shift."""
    d = np.asarray(durations, dtype=np.int64)
    return np.cumsum(d)[:-1].astype(np.float64) * float(shift) if d.size > 1 else np.zeros(0)
