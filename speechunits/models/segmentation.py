"""Piecewise-constant segmentation of frame sequences against a codebook.

The problem (Chorowski et al., the DistSup piecewise-constant quantizer): given
the frames x (T, D) of one utterance and a codebook (K, D), with
d(t, k) = ||x_t - c_k||^2, cut the utterance into segments and give each segment
one code, minimising the summed distance of frames to their segment's code,

    cost = sum_t d(t, code(t))  [+ lam * number of segments]

This module holds the two solvers, as pure functions on tensors:

- `dp_segment`: the exact optimum for a per-segment penalty `lam` (inference).
  best[t, k] = d(t, k) + min(best[t-1, k], min_j best[t-1, j] + lam), with
  best[0, k] = d(0, k) + lam; O(T K) per utterance. Two back ends that give the
  same answer: a pure-torch one (loop over time, all utterances and codes at
  once; any device) and a numba kernel for CPU tensors (5-15x faster on CPU,
  see benchmarks/piecewise.py; used automatically when numba is installed).
  numba is optional: without it the CPU runs the torch path and the greedy
  kernel below runs as plain Python (about 10x slower).
- `greedy_segment`: bottom-up merging under a budget on the number of segments
  (training). Every valid frame starts as its own segment; the adjacent pair
  whose merge raises the total cost least is merged, until the budget is met.
  Segment costs come from prefix sums over time of d(t, .): the cost of segment
  [a, b) with code k is P[b, k] - P[a, k], its cost is the min over k; one
  merge evaluation is O(K); pairs live in a heap with lazy invalidation, so a
  batch of N frames costs O(N K + N log N). Merges never cross utterances and
  never touch padding (the DistSup code did both).

Budget semantics (`greedy_segment`): an int is a batch-global budget; the
globally cheapest merge in the whole batch is taken next, so utterances that
are easy to merge (silence, slow speech) end with fewer segments per frame than
hard ones; every non-empty utterance keeps at least one segment. A (B,) tensor
is a per-utterance budget instead.

The price of one more segment, `lam`, for the DP at inference is estimated from
the greedy merges with `estimate_lambda` (the highest cost among the last
merges: the distortion one more segment would have saved); the bottleneck
smooths it over batches.

All distances are summed squared euclidean distances; lam is in the same units.
"""

from __future__ import annotations

import functools
import heapq
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from speechunits.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "Segmentation",
    "DPSegmentation",
    "GreedySegmentation",
    "dp_segment",
    "greedy_segment",
    "segment_budget",
    "estimate_lambda",
    "segments_from_starts",
    "numba_available",
]


# --------------------------------------------------------------------------- outputs


@dataclass
class Segmentation:
    """A segmentation of a padded batch; padding frames belong to no segment.

    codes:        (B, T) long, the code of each frame's segment; -1 on padding.
    is_start:     (B, T) bool, True on the first frame of every segment.
    segments:     B tensors (S_b, 3) long, rows (start, end, code), end exclusive,
                  in frames of the input; empty (0, 3) for an empty utterance.
    num_segments: (B,) long.
    distortion:   (B,) summed d(t, code(t)) over the valid frames.
    """

    codes: Tensor
    is_start: Tensor
    segments: list[Tensor]
    num_segments: Tensor
    distortion: Tensor


@dataclass
class DPSegmentation(Segmentation):
    """Exact DP output. cost: (B,) distortion + lam * num_segments (the optimum)."""

    cost: Tensor
    lam: float


@dataclass
class GreedySegmentation(Segmentation):
    """Greedy merging output.

    merge_costs:     (M,) float64, the cost increase of each merge, in merge order.
    merges:          (M, 3) long, rows (utterance, left start, right start) of each
                     merge in merge order (starts in frames of the input).
    next_merge_cost: the cost of the merge that the budget stopped (nan if none):
                     with the last merge costs it brackets the price of a segment.
    """

    merge_costs: Tensor
    merges: Tensor
    next_merge_cost: float


# --------------------------------------------------------------------------- helpers


def _check_inputs(dist: Tensor, lengths: Tensor | None) -> Tensor:
    if dist.dim() != 3:
        raise ConfigError(f"dist must be (B, T, K), got shape {tuple(dist.shape)}")
    B, T, _ = dist.shape
    if lengths is None:
        return torch.full((B,), T, dtype=torch.long, device=dist.device)
    lengths = torch.as_tensor(lengths, device=dist.device).long()
    if lengths.shape != (B,):
        raise ConfigError(f"lengths must be ({B},), got {tuple(lengths.shape)}")
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > T):
        raise ConfigError(f"lengths must lie in [0, {T}], got {lengths.tolist()}")
    return lengths


def segments_from_starts(is_start: Tensor, codes: Tensor, lengths: Tensor) -> list[Tensor]:
    """Per-utterance (S_b, 3) tensors (start, end, code) from start flags.

    is_start, codes: (B, T); lengths: (B,). Ends are the next start in the same
    utterance, or the utterance's length.
    """
    B = is_start.shape[0]
    b, t = is_start.nonzero(as_tuple=True)  # sorted by b, then t
    end = torch.empty_like(t)
    if t.numel():
        end[:-1] = t[1:]
        last = torch.ones_like(b, dtype=torch.bool)
        last[:-1] = b[1:] != b[:-1]
        end = torch.where(last, lengths[b], end)
    rows = torch.stack([t, end, codes[b, t]], dim=1)
    counts = torch.bincount(b, minlength=B).tolist()
    return list(rows.split(counts))


def _finish(dist: Tensor, codes: Tensor, is_start: Tensor, lengths: Tensor) -> dict:
    """Fields shared by both solvers, computed from frame codes and start flags."""
    B, T, _ = dist.shape
    valid = torch.arange(T, device=dist.device)[None, :] < lengths[:, None]
    codes = codes.masked_fill(~valid, -1)
    is_start = is_start & valid
    per_frame = dist.gather(2, codes.clamp_min(0).unsqueeze(2)).squeeze(2)
    distortion = (per_frame * valid).sum(1)
    return dict(
        codes=codes,
        is_start=is_start,
        segments=segments_from_starts(is_start, codes, lengths),
        num_segments=is_start.sum(1),
        distortion=distortion,
    )


# --------------------------------------------------------------------------- numba


def numba_available() -> bool:
    """True when the compiled CPU kernels can be used."""
    return _kernels() is not None


def _dp_kernel(dist, lengths, lam, codes, is_start, cost):  # pragma: no cover - compiled
    """CPU DP over a batch; fills codes (B, T), is_start (B, T), cost (B,).

    The min over codes for step t+1 is found in the same pass that updates
    best[t], so each frame costs one sweep over K.
    """
    B, T, K = dist.shape
    best = np.empty(K, np.float64)
    switch = np.zeros((T, K), np.bool_)
    argprev = np.zeros(T, np.int64)
    for b in range(B):
        L = lengths[b]
        if L == 0:
            continue
        m = np.inf
        j = 0
        for k in range(K):
            v = dist[b, 0, k] + lam
            best[k] = v
            if v < m:
                m = v
                j = k
        for t in range(1, L):
            cand = m + lam
            argprev[t] = j
            m = np.inf
            for k in range(K):
                v = best[k]
                s = cand < v
                switch[t, k] = s
                if s:
                    v = cand
                v += dist[b, t, k]
                best[k] = v
                if v < m:
                    m = v
                    j = k
        cost[b] = m
        k = j
        for t in range(L - 1, -1, -1):
            codes[b, t] = k
            if t == 0 or switch[t, k]:
                is_start[b, t] = True
                k = argprev[t]


def _greedy_kernel(P, segcost, paircost, offsets, min_segs, target_total):
    """Batch greedy merging on prefix sums P (N+1, K) of concatenated utterances.

    segcost: (N,) cost of each frame alone (updated in place); paircost: (N-1,)
    cost increase of merging frames i and i+1 (ignored across utterances).
    offsets: (B+1,) flat start of each utterance; min_segs: (B,) segments an
    utterance keeps at least; target_total: stop when the batch has this many.
    Pairs are priced as min_k(P[end] - P[start]) - the two parts' costs, and
    heap entries carry both sides' versions, so entries made stale by a later
    merge are skipped when popped (lazy invalidation). Ties in cost go to the
    leftmost pair. Segments are named by their first flat frame. Returns (alive start flags,
    merge costs, merge left/right starts, next merge cost).
    Plain Python + numpy so it runs with or without numba.
    """
    N = P.shape[0] - 1
    B = offsets.shape[0] - 1
    end = np.arange(1, N + 1)
    nxt = np.arange(1, N + 1)
    prv = np.arange(-1, N - 1)
    utt = np.empty(N, np.int64)
    count = np.empty(B, np.int64)
    for u in range(B):
        lo, hi = offsets[u], offsets[u + 1]
        count[u] = hi - lo
        for i in range(lo, hi):
            utt[i] = u
        if hi > lo:
            prv[lo] = -1
            nxt[hi - 1] = -1
    version = np.zeros(N, np.int64)

    heap = [(0.0, 0, 0, 0, 0)]
    heap.pop()
    for i in range(N):
        n = nxt[i]
        if n >= 0:
            heap.append((paircost[i], i, n, 0, 0))
    heapq.heapify(heap)

    n_max = max(N - target_total, 0)
    merge_costs = np.empty(n_max)
    merge_left = np.empty(n_max, np.int64)
    merge_right = np.empty(n_max, np.int64)
    nm = 0
    total = N
    while total > target_total and len(heap) > 0:
        c, a, b, va, vb = heapq.heappop(heap)
        if version[a] != va or version[b] != vb:
            continue  # stale: one side has changed since this pair was priced
        u = utt[a]
        if count[u] <= min_segs[u]:
            continue  # this utterance is at its floor; its pairs are dropped
        e = end[b]
        end[a] = e
        segcost[a] = np.min(P[e] - P[a])
        version[a] += 1
        version[b] = -1
        n = nxt[b]
        nxt[a] = n
        if n >= 0:
            prv[n] = a
        count[u] -= 1
        total -= 1
        merge_costs[nm] = c
        merge_left[nm] = a
        merge_right[nm] = b
        nm += 1
        p = prv[a]
        if p >= 0:  # re-price the pairs on both sides of the merged segment
            c = np.min(P[e] - P[p]) - segcost[p] - segcost[a]
            heapq.heappush(heap, (c, p, a, version[p], version[a]))
        if n >= 0:
            c = np.min(P[end[n]] - P[a]) - segcost[a] - segcost[n]
            heapq.heappush(heap, (c, a, n, version[a], version[n]))

    next_cost = np.nan
    while len(heap) > 0:
        c, a, b, va, vb = heapq.heappop(heap)
        if version[a] == va and version[b] == vb and count[utt[a]] > min_segs[utt[a]]:
            next_cost = c
            break
    alive = version >= 0
    return alive, merge_costs[:nm], merge_left[:nm], merge_right[:nm], next_cost


def _prefix_kernel(dist, lengths, P, segcost, paircost):  # pragma: no cover - compiled
    """Prefix sums P (N+1, K) over the valid frames of dist (B, T, K), utterance
    after utterance, in float64; each frame's cost segcost (N,) and the cost
    increase of merging frames i, i+1, paircost (N-1,) (meaningless across
    utterances; the greedy kernel never reads those)."""
    B, T, K = dist.shape
    for k in range(K):
        P[0, k] = 0.0
    i = 0
    for b in range(B):
        for t in range(lengths[b]):
            for k in range(K):
                P[i + 1, k] = P[i, k] + dist[b, t, k]
            i += 1
    for i in range(P.shape[0] - 1):
        m = np.inf
        for k in range(K):
            v = P[i + 1, k] - P[i, k]
            if v < m:
                m = v
        segcost[i] = m
    for i in range(P.shape[0] - 2):
        m = np.inf
        for k in range(K):
            v = P[i + 2, k] - P[i, k]
            if v < m:
                m = v
        paircost[i] = m - segcost[i] - segcost[i + 1]


@functools.lru_cache(maxsize=1)
def _kernels():
    """The compiled kernels, or None without numba. Compiled on first use, cached on disk."""
    try:
        import numba
    except ImportError:
        log.info("numba not installed: CPU DP uses the torch path, greedy merging runs in Python")
        return None
    jit = numba.njit(cache=True, nogil=True)
    return {"dp": jit(_dp_kernel), "greedy": jit(_greedy_kernel), "prefix": jit(_prefix_kernel)}


# --------------------------------------------------------------------------- DP


def dp_segment(
    dist: Tensor,
    lengths: Tensor | None = None,
    lam: float = 0.0,
    backend: str = "auto",
) -> DPSegmentation:
    """Optimal segmentation with a penalty `lam` per segment (exact DP).

    dist: (B, T, K) distances d(t, k) >= 0 (`speechunits.models.codebook.sq_distances`);
    lengths: (B,) valid frames per utterance (default: all T). lam >= 0. backend: "torch"
    (any device), "numba" (CPU tensors), or "auto" (numba for CPU tensors when
    installed, else torch). Returns a `DPSegmentation` on dist's device.
    Ties go to the lower code index and to continuing the current segment, so
    adjacent segments always have different codes. The numba kernel sums in
    float64; the torch path in dist's dtype (float16/bfloat16 are promoted to
    float32), so on float32 input the two may resolve near-ties differently.
    """
    lengths = _check_inputs(dist, lengths)
    lam = float(lam)
    if not lam >= 0.0:
        raise ConfigError(f"lam must be >= 0, got {lam}")
    d = dist.detach()
    if d.dtype not in (torch.float32, torch.float64):
        d = d.float()  # half precision would lose the running sums
    if backend == "auto":
        backend = "numba" if d.device.type == "cpu" and numba_available() else "torch"
    if backend == "numba":
        if d.device.type != "cpu":
            raise ConfigError("the numba DP needs CPU tensors; use backend='torch' on other devices")
        kern = _kernels()
        if kern is None:
            raise RuntimeError("backend='numba' needs numba installed")
        B, T, _ = d.shape
        codes = np.zeros((B, T), np.int64)
        is_start = np.zeros((B, T), np.bool_)
        cost = np.zeros(B, np.float64)
        kern["dp"](d.contiguous().numpy(), lengths.numpy(), lam, codes, is_start, cost)
        fields = _finish(d, torch.from_numpy(codes), torch.from_numpy(is_start), lengths)
        cost_t = torch.from_numpy(cost).to(d.dtype)
    elif backend == "torch":
        codes_t, is_start_t, cost_t = _dp_torch(d, lengths, lam)
        fields = _finish(d, codes_t, is_start_t, lengths)
    else:
        raise ConfigError(f"unknown backend {backend!r}; known: auto, torch, numba")
    return DPSegmentation(**fields, cost=cost_t, lam=lam)


def _dp_torch(dist: Tensor, lengths: Tensor, lam: float) -> tuple[Tensor, Tensor, Tensor]:
    """Vectorised DP: a Python loop over time; each step handles (B, K) at once."""
    B, T, K = dist.shape
    dev = dist.device
    codes = torch.zeros(B, T, dtype=torch.long, device=dev)
    is_start = torch.zeros(B, T, dtype=torch.bool, device=dev)
    if B == 0 or T == 0:
        return codes, is_start, torch.zeros(B, dtype=dist.dtype, device=dev)
    switch = torch.zeros(T, B, K, dtype=torch.bool, device=dev)
    argprev = torch.zeros(T, B, dtype=torch.long, device=dev)
    final = torch.zeros(B, K, dtype=dist.dtype, device=dev)
    ends = (lengths - 1).tolist()
    end_steps = {}
    for b, e in enumerate(ends):
        if e >= 0:
            end_steps.setdefault(e, []).append(b)
    end_steps = {t: torch.tensor(bs, device=dev) for t, bs in end_steps.items()}
    d_t = dist.transpose(0, 1)  # (T, B, K) views, one per step
    best = d_t[0] + lam
    if 0 in end_steps:
        final[end_steps[0]] = best[end_steps[0]]
    for t in range(1, T):
        m, j = best.min(1, keepdim=True)
        cand = m + lam
        sw = torch.lt(cand, best, out=switch[t])
        argprev[t] = j.squeeze(1)
        best = torch.where(sw, cand, best).add_(d_t[t])
        if t in end_steps:
            final[end_steps[t]] = best[end_steps[t]]
    cost, cur = final.min(1)
    # Backtrack all utterances together; an utterance joins at its last frame.
    rows = torch.arange(B, device=dev)
    for t in range(T - 1, -1, -1):
        if t in end_steps:
            cur[end_steps[t]] = final[end_steps[t]].argmin(1)
        codes[:, t] = cur
        if t == 0:
            is_start[:, 0] = True
            break
        sw = switch[t, rows, cur]
        is_start[:, t] = sw
        cur = torch.where(sw, argprev[t], cur)
    return codes, is_start, cost


# --------------------------------------------------------------------------- greedy


def segment_budget(lengths: Tensor, rate: float, per_utterance: bool = False) -> int | Tensor:
    """Segments to keep for `rate` segments per frame (e.g. 0.25 at 50 Hz ~ 12.5/s).

    Batch-global (default): one int, round(rate * total frames), at least one
    per non-empty utterance. Per utterance: a (B,) tensor, round(rate * length)
    clipped to [1, length] (0 for an empty utterance).
    """
    lengths = torch.as_tensor(lengths).long().cpu()
    if per_utterance:
        return torch.minimum((lengths.double() * rate).round().long().clamp_min(1), lengths)
    return max(int(round(rate * int(lengths.sum()))), int((lengths > 0).sum()))


def greedy_segment(
    dist: Tensor,
    lengths: Tensor | None,
    num_segments: int | Tensor,
    use_numba: bool | None = None,
) -> GreedySegmentation:
    """Greedy bottom-up merging until the batch has `num_segments` segments.

    dist: (B, T, K) distances (any device; copied to CPU float64 for merging);
    lengths: (B,) valid frames (None: all T); num_segments: int for a
    batch-global budget (each non-empty utterance keeps >= 1 segment), or a (B,)
    tensor for per-utterance budgets (clipped to [1, length]). use_numba: None
    picks the compiled kernel when numba is installed. Returns a
    `GreedySegmentation` on dist's device.
    """
    lengths = _check_inputs(dist, lengths)
    B, T, K = dist.shape
    lens = lengths.cpu()
    valid = torch.arange(T)[None, :] < lens[:, None]
    offsets = np.zeros(B + 1, np.int64)
    np.cumsum(lens.numpy(), out=offsets[1:])
    N = int(offsets[-1])
    nonempty = (lens > 0).long()
    if isinstance(num_segments, Tensor) and num_segments.dim() == 1:
        if num_segments.shape != (B,):
            raise ConfigError(f"per-utterance num_segments must be ({B},), got {tuple(num_segments.shape)}")
        floor = torch.minimum(num_segments.cpu().long().clamp_min(1), lens) * nonempty
        target = int(floor.sum())
    else:
        floor = nonempty
        target = max(int(num_segments), int(nonempty.sum()))
    kern = _kernels() if use_numba in (None, True) else None
    if use_numba and kern is None:
        raise RuntimeError("use_numba=True needs numba installed")
    d = dist.detach().cpu()
    if d.dtype not in (torch.float32, torch.float64):
        d = d.float()
    # Every cost is min_k(P[end] - P[start]) of the same float64 P, so equal
    # segments always get bit-equal costs (ties resolve the same way in any order).
    if kern is not None:
        P = np.empty((N + 1, K), np.float64)
        segcost = np.empty(N, np.float64)
        paircost = np.empty(max(N - 1, 0), np.float64)
        kern["prefix"](d.contiguous().numpy(), lens.numpy(), P, segcost, paircost)
        fn = kern["greedy"]
    else:
        P = np.zeros((N + 1, K), np.float64)
        np.cumsum(d[valid].double().numpy(), axis=0, out=P[1:])
        segcost = (P[1:] - P[:-1]).min(1)
        paircost = (P[2:] - P[:-2]).min(1) - segcost[:-1] - segcost[1:]
        fn = _greedy_kernel
    alive, mcost, mleft, mright, next_cost = fn(P, segcost, paircost, offsets, floor.numpy().astype(np.int64), target)

    # Back to (B, T): start flags, and each segment's best code from the prefix sums.
    starts = np.flatnonzero(alive)
    ends = np.append(starts[1:], N)
    seg_utt = np.searchsorted(offsets, starts, side="right") - 1
    ends = np.minimum(ends, offsets[seg_utt + 1])
    seg_code = np.argmin(P[ends] - P[starts], axis=1)
    frame_codes = np.repeat(seg_code, ends - starts)
    codes = torch.zeros(B, T, dtype=torch.long)
    is_start = torch.zeros(B, T, dtype=torch.bool)
    codes[valid] = torch.from_numpy(frame_codes)
    flat_start = torch.zeros(N, dtype=torch.bool)
    flat_start[torch.from_numpy(starts)] = True
    is_start[valid] = flat_start
    dev = dist.device
    fields = _finish(d.to(dev), codes.to(dev), is_start.to(dev), lengths)
    mu = np.searchsorted(offsets, mleft, side="right") - 1
    merges = torch.from_numpy(np.stack([mu, mleft - offsets[mu], mright - offsets[mu]], axis=1).astype(np.int64))
    return GreedySegmentation(
        **fields,
        merge_costs=torch.from_numpy(np.ascontiguousarray(mcost)),
        merges=merges.reshape(-1, 3),
        next_merge_cost=float(next_cost),
    )


def estimate_lambda(seg: GreedySegmentation, window: int = 16, how: str = "max") -> float | None:
    """Price of one segment from a greedy run, from its last `window` merges.

    Why: a merge cost is the distortion that keeping one more segment would
    have saved; near the budget that is what a segment is worth, which is what
    the DP penalty means. how="max" (default) takes the highest of the last
    merge costs, the level the greedy had to reach to meet the budget; "mean"
    takes their mean. On synthetic piecewise-constant data (tests and
    benchmarks/piecewise.py) the DP with the "max" price returns 0.99 +- 0.04
    times the greedy budget's segment count on fresh data; the mean over-segments
    by 5-15% because cheap merges (pairs that newly share a code) keep
    appearing among the last ones. None when no merge was made.
    """
    costs = seg.merge_costs
    if costs.numel() == 0:
        return None
    last = costs[-window:].clamp_min(0)
    if how == "max":
        return float(last.max())
    if how == "mean":
        return float(last.mean())
    raise ConfigError(f"unknown how {how!r}; known: max, mean")
