"""Brute-force ABX: the slow, readable reference the fast code (speechunits.eval.abx) is tested against.

Everything is spelled out: frames selected with exact fractions, an O(N M) DTW with an
explicit backtrack for the path length, explicit loops over every (A, B, X) triplet,
averages over plain dicts. It shares nothing with the fast path except the seeded
choice of subsets (`select_subset` and the labels it hashes), so that both score the
very same triplets when subsampling is on. Use it on small problems only (the
benchmark times it on a fraction of the cells).

Semantics (see speechunits.eval.abx for the discussion):
- frames of an item: centres (i + 1/2) * shift within [onset, offset]; libri-light
  slicing drops the last one; frames past the end of the features are dropped.
- d(p, q): DTW over frame distances, cost / path length; the token that comes first
  in (file, onset, offset, labels) order gives the rows.
- frame distances: angular arccos(cos) / pi (zero vector: 0 to a zero vector, 1 to
  others), euclidean, symmetric KL with eps 1e-6; integer units become one-hot vectors.
- cells and averaging as libri-light / fastabx.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from speechunits.data.items import ItemSet
from speechunits.eval.abx.cells import group_label, select_subset, stable_hash, token_id, x_speakers_label
from speechunits.errors import ConfigError

EPS = 1e-6


@dataclass
class ReferenceResult:
    score: float  # error rate, fraction
    by_phone_pair: dict[tuple[str, str], float]
    by_speaker: dict[str, float]
    cells: dict[tuple[str, str, str, str, str], tuple[float, int]]  # (a, b, context, spk, spk_x) -> (error, triplets)
    n_triplets: int  # triplets scored
    n_triplets_all: int  # triplets of all cells (more than n_triplets when cell_subset < 1)


def select_frames(onset: float, offset: float, shift: float, n_frames: int, libri_light: bool) -> tuple[int, int]:
    """[start, end) of the frames whose centres lie in [onset, offset], exactly."""
    on, off, s = Fraction(repr(float(onset))), Fraction(repr(float(offset))), Fraction(repr(float(shift)))
    start = math.ceil(on / s - Fraction(1, 2))
    end = math.floor(off / s - Fraction(1, 2)) + 1
    if libri_light:
        end -= 1
    return max(start, 0), min(end, n_frames)


def frame_distance_matrix(x: np.ndarray, y: np.ndarray, distance: str) -> np.ndarray:
    """(N, D), (M, D) -> (N, M) frame distances."""
    if distance == "angular":
        nx = np.linalg.norm(x, axis=1)
        ny = np.linalg.norm(y, axis=1)
        out = np.empty((len(x), len(y)))
        for i in range(len(x)):
            for j in range(len(y)):
                if nx[i] == 0 or ny[j] == 0:
                    out[i, j] = 0.0 if (nx[i] == 0 and ny[j] == 0) else 1.0
                else:
                    cos = float(np.dot(x[i], y[j])) / (nx[i] * ny[j])
                    out[i, j] = math.acos(min(1.0, max(-1.0, cos))) / math.pi
        return out
    if distance == "euclidean":
        return np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    if distance == "kl_symmetric":
        p, q = x[:, None, :], y[None, :, :]
        return 0.5 * ((p - q) * (np.log(p + EPS) - np.log(q + EPS))).sum(-1)
    raise ConfigError(distance)


def dtw(d: np.ndarray) -> float:
    """DTW cost of the matrix d, divided by the length of the backtracked path.

    Backtracking prefers the diagonal, then the left move, then the up move on ties.
    """
    n, m = d.shape
    cost = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            if i == 0 and j == 0:
                cost[i, j] = d[i, j]
            elif i == 0:
                cost[i, j] = d[i, j] + cost[i, j - 1]
            elif j == 0:
                cost[i, j] = d[i, j] + cost[i - 1, j]
            else:
                cost[i, j] = d[i, j] + min(cost[i - 1, j], cost[i - 1, j - 1], cost[i, j - 1])
    i, j, path = n - 1, m - 1, 1
    while i > 0 and j > 0:
        up, left, diag = cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1]
        if diag <= left and diag <= up:
            i, j = i - 1, j - 1
        elif left <= up:
            j -= 1
        else:
            i -= 1
        path += 1
    path += i + j  # the rest runs along the first row or column
    return float(cost[n - 1, m - 1] / path)


def _load(features: Any, utt: str) -> np.ndarray:
    load = getattr(features, "load", None)
    array = load(utt) if callable(load) else features[utt]
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def reference_abx(
    items: ItemSet, features: Any, frame_shift: float, *, speaker: str = "within", context: str = "within",
    distance: str = "angular", max_size_group: int = -1, max_x_across: int = -1, seed: int = 0,
    libri_light_slicing: bool = False, cell_subset: float = 1.0,
) -> ReferenceResult:
    """ABX by brute force. cell_subset < 1 scores only that (seeded) fraction of the cells,
    to time this on problems too big for it; the averages are then over those cells."""
    arrays = {utt: _load(features, utt) for utt in sorted(set(items.file))}
    if any(a.dtype.kind in "iu" for a in arrays.values()):  # unit ids -> one-hot
        size = 1 + max(int(a.max()) for a in arrays.values())
        arrays = {u: np.eye(size)[a.reshape(-1)] for u, a in arrays.items()}
    arrays = {u: a.astype(np.float64) for u, a in arrays.items()}

    # tokens, in canonical order
    tokens = []
    for i in range(len(items)):
        row = items[i]
        start, end = select_frames(row.onset, row.offset, frame_shift, len(arrays[row.file]), libri_light_slicing)
        assert end > start, f"item {i} selects no frame"
        tokens.append((tuple(row), arrays[row.file][start:end]))
    tokens.sort(key=lambda t: t[0])
    labels = [t[0] for t in tokens]
    frames = [t[1] for t in tokens]

    # groups (phone, prev, next, speaker), subsampled
    groups: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    for k, (file, onset, offset, phone, prev, nxt, spk) in enumerate(labels):
        ctx = (prev, nxt) if context == "within" else ("*", "*")
        groups[(phone, *ctx, spk)].append(k)
    for key, members in groups.items():
        ids = [token_id(labels[k][0], labels[k][1], labels[k][2]) for k in members]
        groups[key] = [members[p] for p in select_subset(ids, max_size_group, seed, group_label(*key))]

    memo: dict[tuple[int, int], float] = {}

    def d(p: int, q: int) -> float:
        p, q = min(p, q), max(p, q)  # rows: the token first in canonical order
        if (p, q) not in memo:
            memo[(p, q)] = dtw(frame_distance_matrix(frames[p], frames[q], distance))
        return memo[(p, q)]

    def cell_error(A: list[int], B: list[int], X: list[int]) -> tuple[float, int]:
        good, n = 0.0, 0
        for x in X:
            for a in A:
                if a == x:
                    continue
                for b in B:
                    dax, dbx = d(a, x), d(b, x)
                    good += 1.0 if dax < dbx else (0.5 if dax == dbx else 0.0)
                    n += 1
        return 1.0 - good / n, n

    cells: dict[tuple[str, str, str, str, str], tuple[float, int]] = {}
    n_all = 0

    def add(key, A, B, X):
        nonlocal n_all
        n_all += len(B) * sum(1 for x in X for a in A if a != x)
        if cell_subset >= 1 or stable_hash("\x1f".join(key)) / 2**64 < cell_subset:
            cells[key] = cell_error(A, B, X)

    phones_in: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (prev, next, speaker) -> phones
    speakers_of: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (phone, prev, next) -> speakers
    for (phone, prev, nxt, s) in sorted(groups):
        phones_in[(prev, nxt, s)].append(phone)
        speakers_of[(phone, prev, nxt)].append(s)
    for (prev, nxt, s), phones in phones_in.items():
        ctx_label = "*" if prev == "*" else f"{prev}+{nxt}"
        for a in phones:
            A = groups[(a, prev, nxt, s)]
            for b in phones:
                if b == a:
                    continue
                B = groups[(b, prev, nxt, s)]
                if speaker == "within":
                    if len(A) >= 2:
                        add((a, b, ctx_label, s, s), A, B, A)
                    continue
                x_speakers = [sx for sx in speakers_of[(a, prev, nxt)] if sx != s]
                label = x_speakers_label(a, b, prev, nxt, s)
                for p in select_subset(x_speakers, max_x_across, seed, label):
                    sx = x_speakers[p]
                    add((a, b, ctx_label, s, sx), A, B, groups[(a, prev, nxt, sx)])

    # average: over contexts (and X speakers) per (speaker, pair), then speakers, then pairs
    per_spk_pair: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for (a, b, _, s, _), (err, _) in cells.items():
        per_spk_pair[(s, a, b)].append(err)
    per_pair: dict[tuple[str, str], list[float]] = defaultdict(list)
    per_spk: dict[str, list[float]] = defaultdict(list)
    for (s, a, b), errs in per_spk_pair.items():
        per_pair[(a, b)].append(sum(errs) / len(errs))
        per_spk[s].append(sum(errs) / len(errs))
    by_pair = {k: sum(v) / len(v) for k, v in per_pair.items()}
    return ReferenceResult(
        score=sum(by_pair.values()) / len(by_pair) if by_pair else float("nan"),
        by_phone_pair=by_pair,
        by_speaker={s: sum(v) / len(v) for s, v in per_spk.items()},
        cells=cells,
        n_triplets=sum(n for _, n in cells.values()),
        n_triplets_all=n_all,
    )
