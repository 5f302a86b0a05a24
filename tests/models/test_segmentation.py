"""Piecewise-constant segmentation: DP and greedy merging against brute force."""

import itertools

import numpy as np
import pytest
import torch

from speechunits.models.codebook import sq_distances
from speechunits.models.segmentation import (
    dp_segment,
    estimate_lambda,
    greedy_segment,
    numba_available,
    segment_budget,
)

DP_BACKENDS = ["torch"] + (["numba"] if numba_available() else [])
GREEDY_KERNELS = [False] + ([True] if numba_available() else [])


# ----------------------------------------------------------------- references


def all_segmentations(T):
    """Every segmentation of range(T), as lists of (start, end)."""
    for mask in itertools.product([False, True], repeat=T - 1):
        cuts = [0] + [i + 1 for i, m in enumerate(mask) if m] + [T]
        yield list(zip(cuts[:-1], cuts[1:]))


def seg_cost(d, a, b):
    """Best code and summed distance of frames [a, b), summed directly."""
    sums = d[a:b].sum(0)
    return float(sums.min()), int(sums.argmin())


def brute_dp(d, lam):
    """min over segmentations of sum(best segment costs) + lam * #segments."""
    return min(sum(seg_cost(d, a, b)[0] for a, b in s) + lam * len(s) for s in all_segmentations(len(d)))


def brute_best_with(d, n_seg):
    """Optimal distortion with exactly n_seg segments."""
    return min(
        sum(seg_cost(d, a, b)[0] for a, b in s) for s in all_segmentations(len(d)) if len(s) == n_seg
    )


def naive_greedy(d, lengths, floor, target):
    """O(N^2) greedy: each step re-prices every adjacent pair and takes the cheapest.

    Prices come from float64 prefix sums over the concatenated valid frames, as
    in the module, so that near-ties (frames with the same best code merge at
    cost ~0, up to rounding) resolve identically: the cheapest pair, then the
    leftmost. Returns the merges as (utt, left, right) and their costs.
    """
    flat = np.concatenate([d[b, :L] for b, L in enumerate(lengths)]).astype(np.float64)
    P = np.zeros((len(flat) + 1, d.shape[2]))
    P[1:] = torch.cumsum(torch.from_numpy(flat), 0).numpy()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    segs = [[[t, t + 1] for t in range(L)] for L in lengths]  # per utterance: [start, end)

    def cost(b, s, e):
        return np.min(P[offsets[b] + e] - P[offsets[b] + s])

    merges, costs = [], []
    while sum(len(s) for s in segs) > target:
        best = None
        for b, ss in enumerate(segs):
            if len(ss) <= floor[b]:
                continue
            for i in range(len(ss) - 1):
                (a, m), (_, e) = ss[i], ss[i + 1]
                c = cost(b, a, e) - cost(b, a, m) - cost(b, m, e)
                if best is None or c < best[0]:
                    best = (c, b, i)
        if best is None:
            break
        c, b, i = best
        merges.append((b, segs[b][i][0], segs[b][i + 1][0]))
        costs.append(c)
        segs[b][i] = [segs[b][i][0], segs[b][i + 1][1]]
        del segs[b][i + 1]
    return merges, costs


def check_tiling(seg, lengths):
    """Segments tile [0, length) of each utterance exactly; padding is untouched."""
    T = seg.codes.shape[1]
    for b, L in enumerate(lengths):
        rows = seg.segments[b]
        if L == 0:
            assert rows.shape == (0, 3)
        else:
            assert rows[0, 0] == 0 and rows[-1, 1] == L
            assert torch.equal(rows[1:, 0], rows[:-1, 1])
            assert (rows[:, 1] > rows[:, 0]).all()
        for s, e, k in rows.tolist():
            assert (seg.codes[b, s:e] == k).all()
            assert seg.is_start[b, s] and not seg.is_start[b, s + 1 : e].any()
        assert (seg.codes[b, L:T] == -1).all() and not seg.is_start[b, L:T].any()
        assert seg.num_segments[b] == len(rows)


def distortion_of(d, rows):
    return sum(float(d[s:e, k].sum()) for s, e, k in rows.tolist())


# ----------------------------------------------------------------- tests


@pytest.mark.parametrize("backend", DP_BACKENDS)
def test_dp_equals_brute_force(rng, backend):
    for trial in range(40):
        T = int(rng.integers(1, 11))
        K = int(rng.integers(1, 5))
        lam = float(rng.choice([0.0, 0.3, 1.0, 4.0]))
        d = rng.random((T, K)) * 3
        out = dp_segment(torch.from_numpy(d)[None], lam=lam, backend=backend)
        ref = brute_dp(d, lam)
        assert float(out.cost[0]) == pytest.approx(ref, abs=1e-9)
        # The returned segmentation achieves the returned cost.
        rows = out.segments[0]
        achieved = distortion_of(d, rows) + lam * len(rows)
        assert achieved == pytest.approx(ref, abs=1e-9)
        assert float(out.distortion[0]) + lam * int(out.num_segments[0]) == pytest.approx(ref, abs=1e-9)
        check_tiling(out, [T])


@pytest.mark.parametrize("backend", DP_BACKENDS)
def test_dp_lambda_limits(rng, backend):
    d = torch.from_numpy(rng.random((3, 20, 6)))
    lengths = torch.tensor([20, 13, 1])
    # lam = 0: every frame takes its own nearest code (frame-wise VQ).
    out = dp_segment(d, lengths, lam=0.0, backend=backend)
    for b, L in enumerate(lengths.tolist()):
        assert torch.equal(out.codes[b, :L], d[b, :L].argmin(1))
        # Segments are the runs of equal codes.
        runs = 1 + int((d[b, 1:L].argmin(1) != d[b, : L - 1].argmin(1)).sum())
        assert int(out.num_segments[b]) == runs
    # lam -> infinity: one segment per utterance, with the best single code.
    out = dp_segment(d, lengths, lam=1e9, backend=backend)
    assert out.num_segments.tolist() == [1, 1, 1]
    for b, L in enumerate(lengths.tolist()):
        assert (out.codes[b, :L] == d[b, :L].sum(0).argmin()).all()


@pytest.mark.parametrize("backend", DP_BACKENDS)
def test_dp_batch_equals_single_and_ignores_padding(rng, backend):
    lengths = [10, 3, 0, 7, 1]
    d = rng.random((5, 10, 4)) * 2
    for b, L in enumerate(lengths):
        d[b, L:] = rng.choice([0.0, 1e6], size=(10 - L, 4))  # padding must not matter
    out = dp_segment(torch.from_numpy(d), torch.tensor(lengths), lam=0.7, backend=backend)
    check_tiling(out, lengths)
    for b, L in enumerate(lengths):
        if L == 0:
            assert out.cost[b] == 0 and out.num_segments[b] == 0
            continue
        one = dp_segment(torch.from_numpy(d[b : b + 1, :L]), lam=0.7, backend=backend)
        assert torch.equal(one.codes[0], out.codes[b, :L])
        assert torch.equal(one.segments[0], out.segments[b])
        assert float(one.cost[0]) == pytest.approx(float(out.cost[b]))


@pytest.mark.skipif(not numba_available(), reason="numba not installed")
def test_dp_backends_agree_float32(rng):
    d = torch.from_numpy(rng.random((4, 60, 16)).astype(np.float32))
    lengths = torch.tensor([60, 41, 5, 59])
    a = dp_segment(d, lengths, lam=1.5, backend="torch")
    b = dp_segment(d, lengths, lam=1.5, backend="numba")
    torch.testing.assert_close(a.cost, b.cost, rtol=1e-5, atol=1e-4)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.is_start, b.is_start)


def test_dp_rejects_bad_input():
    d = torch.rand(2, 5, 3)
    with pytest.raises(ValueError):
        dp_segment(d, lam=-1.0)
    with pytest.raises(ValueError):
        dp_segment(d, torch.tensor([5, 6]))
    with pytest.raises(ValueError):
        dp_segment(d[0])


@pytest.mark.parametrize("use_numba", GREEDY_KERNELS)
def test_greedy_never_beats_optimum(rng, use_numba):
    for trial in range(25):
        T = int(rng.integers(2, 10))
        K = int(rng.integers(1, 5))
        n_seg = int(rng.integers(1, T + 1))
        d = rng.random((T, K)) * 3
        out = greedy_segment(torch.from_numpy(d)[None], None, n_seg, use_numba=use_numba)
        assert int(out.num_segments[0]) == n_seg
        check_tiling(out, [T])
        rows = out.segments[0]
        # Each segment carries its best code, and the distortion is consistent.
        for s, e, k in rows.tolist():
            assert k == seg_cost(d, s, e)[1]
        assert float(out.distortion[0]) == pytest.approx(distortion_of(d, rows))
        assert float(out.distortion[0]) >= brute_best_with(d, n_seg) - 1e-9
        # Merge costs add up: start from frame-wise VQ, each merge adds its cost.
        assert float(d.min(1).sum() + out.merge_costs.sum()) == pytest.approx(float(out.distortion[0]))


@pytest.mark.parametrize("use_numba", GREEDY_KERNELS)
def test_greedy_heap_equals_naive(rng, use_numba):
    for trial in range(10):
        lengths = [int(v) for v in rng.integers(0, 9, size=4)]
        B, T, K = 4, max(lengths + [1]), 3
        d = rng.random((B, T, K)) * 2
        d[:, ::3] = d[:, ::3].round(1)  # some exact ties between frames
        n_valid = sum(lengths)
        # batch-global budget (floor of one segment per non-empty utterance)
        target = int(rng.integers(0, n_valid + 1))
        floor = [1 if L else 0 for L in lengths]
        ref_merges, ref_costs = naive_greedy(d, lengths, floor, max(target, sum(floor)))
        out = greedy_segment(torch.from_numpy(d), torch.tensor(lengths), target, use_numba=use_numba)
        assert [tuple(m) for m in out.merges.tolist()] == ref_merges
        np.testing.assert_allclose(out.merge_costs.numpy(), ref_costs, atol=1e-12)
        check_tiling(out, lengths)
        # per-utterance budgets
        per = torch.from_numpy(rng.integers(1, 9, size=4))
        floor = [min(int(p), L) for p, L in zip(per, lengths)]
        ref_merges, _ = naive_greedy(d, lengths, floor, sum(floor))
        out = greedy_segment(torch.from_numpy(d), torch.tensor(lengths), per, use_numba=use_numba)
        assert [tuple(m) for m in out.merges.tolist()] == ref_merges
        assert out.num_segments.tolist() == floor


def test_greedy_respects_utterances_and_padding(rng):
    lengths = [12, 1, 0, 5, 9]
    d = rng.random((5, 12, 4))
    for b, L in enumerate(lengths):
        d[b, L:] = 0.0  # free padding: a leaky merge would love it
    # A budget far below the number of utterances: each keeps exactly one segment.
    out = greedy_segment(torch.from_numpy(d), torch.tensor(lengths), 1)
    assert out.num_segments.tolist() == [1, 1, 0, 1, 1]
    check_tiling(out, lengths)
    # Any budget: segments tile each utterance and never reach into padding.
    for target in (4, 10, 20, 27):
        out = greedy_segment(torch.from_numpy(d), torch.tensor(lengths), target)
        assert int(out.num_segments.sum()) == max(target, 4)
        check_tiling(out, lengths)
        for b, s, e in out.merges.tolist():
            assert e < lengths[b]


def test_segment_budget():
    lengths = torch.tensor([10, 3, 0, 7])
    assert segment_budget(lengths, 0.25) == 5  # round(0.25 * 20)
    assert segment_budget(lengths, 0.01) == 3  # at least one per non-empty utterance
    assert segment_budget(lengths, 0.25, per_utterance=True).tolist() == [2, 1, 0, 2]
    assert segment_budget(lengths, 2.0, per_utterance=True).tolist() == [10, 3, 0, 7]


def piecewise_problem(rng, codebook, n_utts=16, noise=0.3):
    """Frames around piecewise-constant means (not codes) plus noise, a dense codebook.

    Frames of one true segment scatter over several codes, so merges cost > 0
    and a segment has a price. Returns dist, lengths, true number of segments.
    """
    D = codebook.shape[1]
    lengths, frames, n_true = [], [], 0
    for _ in range(n_utts):
        seg_lens = rng.integers(4, 10, size=int(rng.integers(4, 8)))
        means = rng.normal(size=(len(seg_lens), D)) * 2
        x = np.concatenate([np.repeat(m[None], n, 0) for m, n in zip(means, seg_lens)])
        frames.append(x + noise * rng.normal(size=x.shape))
        lengths.append(len(x))
        n_true += len(seg_lens)
    xs = np.zeros((n_utts, max(lengths), D))
    for b, x in enumerate(frames):
        xs[b, : len(x)] = x
    return sq_distances(torch.from_numpy(xs), torch.from_numpy(codebook)), torch.tensor(lengths), n_true


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lambda_estimate_transfers_to_dp(seed):
    rng = np.random.default_rng(seed)
    codebook = rng.normal(size=(32, 2)) * 2
    dist, lengths, n_true = piecewise_problem(rng, codebook)
    g = greedy_segment(dist, lengths, n_true)
    lam = estimate_lambda(g)
    assert lam is not None and lam > 0
    assert lam == pytest.approx(float(g.merge_costs[-16:].max()))
    assert estimate_lambda(g, how="mean") <= lam
    # On fresh data of the same kind, the DP with that price keeps about as many
    # segments as the training budget asked for (frame-wise VQ keeps ~3x more).
    dist2, lengths2, n_true2 = piecewise_problem(rng, codebook)
    n_dp = int(dp_segment(dist2, lengths2, lam=lam).num_segments.sum())
    n_fw = int(dp_segment(dist2, lengths2, lam=0.0).num_segments.sum())
    assert 0.8 * n_true2 <= n_dp <= 1.2 * n_true2
    assert n_fw > 2 * n_true2


def test_lambda_estimate_none_without_merges(rng):
    d = torch.from_numpy(rng.random((2, 5, 3)))
    g = greedy_segment(d, None, 10)
    assert g.merges.shape == (0, 3) and estimate_lambda(g) is None
    assert g.num_segments.tolist() == [5, 5]
