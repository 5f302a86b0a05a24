"""Compiled (numba) kernels (native/abx_kernels.c is the same in C): frame distances + DTW for blocks of token pairs, and cell scores.

DTW (as libri-light, zrc_abx2 and fastabx): cost[i, j] = d(i, j) + min(cost[i-1, j],
cost[i-1, j-1], cost[i, j-1]); the distance is cost[N-1, M-1] divided by the length of
the path found by backtracking, which prefers the diagonal, then the left move
(j - 1), then the up move (i - 1) on ties. The predecessor chosen while backtracking
from a cell is the argmin (with that priority) taken when the cell was filled, so the
path length is carried along the forward pass instead of backtracking.

The tie priority is not symmetric (transposing swaps left and up), so a pair of
tokens is always aligned with the token that comes first in the canonical item order
as rows; d(p, q) = d(q, p) and each pair is computed once.

Frame distances are computed in the "outer product" form (for a row frame, one
feature dimension at a time over a run of column frames) so that the loops
vectorise, and the arc cosine is a branch-free rational approximation (the fdlibm
asin coefficients; < 1e-15 absolute error) that vectorises too. All in float64.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

ANGULAR, EUCLIDEAN, KL_SYMMETRIC, DISCRETE = 0, 1, 2, 3
backend = "numba"  # native/ is the C implementation of the same interface


def max_threads() -> int:
    return int(numba.config.NUMBA_NUM_THREADS)


def get_num_threads() -> int:
    return int(numba.get_num_threads())


def set_num_threads(n: int) -> None:
    numba.set_num_threads(max(1, min(int(n), max_threads())))

# rational approximation of asin(s) = s + s * z * P(z) / Q(z), z = s^2, on [0, 1/2]
_P0, _P1, _P2 = 1.66666666666666657415e-01, -3.25565818622400915405e-01, 2.01212532134862925881e-01
_P3, _P4, _P5 = -4.00555345006794114027e-02, 7.91534994289814532176e-04, 3.47933107596021167570e-05
_Q1, _Q2 = -2.40339491173441421878e00, 2.02094576023350569471e00
_Q3, _Q4 = -6.88283971605453293030e-01, 7.70381505559019352791e-02
_PI = math.pi
_HALF_PI = math.pi / 2
_INV_PI = 1.0 / math.pi

# no reassociation: keeps every sum in a fixed order (the same for d(p, q) and d(q, p))
_FM = {"contract", "nsz", "arcp"}
_OPTS = dict(fastmath=_FM, error_model="numpy", nogil=True, cache=True)


@njit(**_OPTS)
def acos_over_pi(x):
    """arccos(x) / pi for x in [-1, 1]; branch-free so that loops over it vectorise.

    |x| <= 1/2: pi/2 - asin(x); otherwise acos(|x|) = 2 asin(sqrt((1 - |x|) / 2)),
    and acos(x) = pi - acos(|x|) for x < 0.
    """
    t = abs(x)
    small = t <= 0.5
    z_large = (1.0 - t) * 0.5
    z = x * x if small else z_large
    s = t if small else math.sqrt(z_large)
    p = z * (_P0 + z * (_P1 + z * (_P2 + z * (_P3 + z * (_P4 + z * _P5)))))
    q = 1.0 + z * (_Q1 + z * (_Q2 + z * (_Q3 + z * _Q4)))
    r = s + s * (p / q)
    a = _HALF_PI - (r if x >= 0 else -r)
    b = 2.0 * r if x > 0 else _PI - 2.0 * r
    return (a if small else b) * _INV_PI


@njit(**_OPTS)
def acos_over_pi_array(x, out):
    """Elementwise acos_over_pi (tests check it against numpy)."""
    for i in range(x.size):
        out[i] = acos_over_pi(x[i])


@njit(**_OPTS)
def _dot_rows(X, i, FT, c0, C, ra, rb, two, squared):
    """ra[:C] (and rb[:C] when `two`, for row i + 1) += sum_d over frames c0 .. c0 + C of
    x_d * f_d, or (x_d - f_d)^2 when `squared`. Two rows share each load of FT."""
    D = FT.shape[0]
    D4 = D - D % 4
    for d in range(0, D4, 4):
        f0, f1, f2, f3 = FT[d, c0:c0 + C], FT[d + 1, c0:c0 + C], FT[d + 2, c0:c0 + C], FT[d + 3, c0:c0 + C]
        x0, x1, x2, x3 = X[i, d], X[i, d + 1], X[i, d + 2], X[i, d + 3]
        if two:
            y0, y1, y2, y3 = X[i + 1, d], X[i + 1, d + 1], X[i + 1, d + 2], X[i + 1, d + 3]
            if squared:
                for j in range(C):
                    a0, a1, a2, a3 = f0[j], f1[j], f2[j], f3[j]
                    e0, e1, e2, e3 = x0 - a0, x1 - a1, x2 - a2, x3 - a3
                    ra[j] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
                    e0, e1, e2, e3 = y0 - a0, y1 - a1, y2 - a2, y3 - a3
                    rb[j] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
            else:
                for j in range(C):
                    a0, a1, a2, a3 = f0[j], f1[j], f2[j], f3[j]
                    ra[j] += (x0 * a0 + x1 * a1) + (x2 * a2 + x3 * a3)
                    rb[j] += (y0 * a0 + y1 * a1) + (y2 * a2 + y3 * a3)
        elif squared:
            for j in range(C):
                e0, e1, e2, e3 = x0 - f0[j], x1 - f1[j], x2 - f2[j], x3 - f3[j]
                ra[j] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
        else:
            for j in range(C):
                ra[j] += (x0 * f0[j] + x1 * f1[j]) + (x2 * f2[j] + x3 * f3[j])
    for d in range(D4, D):
        f0 = FT[d, c0:c0 + C]
        x0 = X[i, d]
        y0 = X[i + 1, d] if two else 0.0
        for j in range(C):
            if squared:
                e0 = x0 - f0[j]
                ra[j] += e0 * e0
                if two:
                    e0 = y0 - f0[j]
                    rb[j] += e0 * e0
            else:
                ra[j] += x0 * f0[j]
                if two:
                    rb[j] += y0 * f0[j]


@njit(**_OPTS)
def _finish_angular(row, C, ia, inv_b, za, zb, has_zero):
    """Dot products -> arccos(cos) / pi."""
    for j in range(C):
        v = row[j] * ia * inv_b[j]
        v = min(1.0, max(-1.0, v))
        row[j] = acos_over_pi(v)
    if has_zero:
        for j in range(C):
            if za or zb[j]:  # a zero vector: 0 from another zero vector, 1 (the maximum) from the rest
                row[j] = 0.0 if (za and zb[j]) else 1.0


@njit(**_OPTS)
def _chunk_distances(kind, X, LX, na, FT, LT, c0, C, dist, inv_a, inv, zero_a, zero, has_zero, const):
    """dist[i, :C] = d(frame i of X, frames c0 .. c0 + C of FT) for i < na.

    Loops run over 1-d slices (contiguous, non-negative indices) so that they vectorise.
    """
    for i in range(na):
        row = dist[i]
        for j in range(C):
            row[j] = 0.0
    if kind == ANGULAR or kind == EUCLIDEAN:
        squared = kind == EUCLIDEAN
        for i in range(0, na - 1, 2):
            _dot_rows(X, i, FT, c0, C, dist[i], dist[i + 1], True, squared)
        if na % 2:
            _dot_rows(X, na - 1, FT, c0, C, dist[na - 1], dist[na - 1], False, squared)
        if kind == ANGULAR:
            for i in range(na):
                _finish_angular(dist[i], C, inv_a[i], inv[c0:c0 + C], zero_a[i], zero[c0:c0 + C], has_zero)
        else:
            for i in range(na):
                row = dist[i]
                for j in range(C):
                    row[j] = math.sqrt(row[j])
    elif kind == DISCRETE:
        f0 = FT[0, c0:c0 + C]
        for i in range(na):
            row = dist[i]
            u = X[i, 0]
            for j in range(C):
                row[j] = const if f0[j] != u else 0.0
    else:  # KL_SYMMETRIC: 1/2 sum_d (p_d - q_d) (log(p_d + eps) - log(q_d + eps))
        D = FT.shape[0]
        for i in range(na):
            row = dist[i]
            for d in range(D):
                x0, l0 = X[i, d], LX[i, d]
                f0, g0 = FT[d, c0:c0 + C], LT[d, c0:c0 + C]
                for j in range(C):
                    row[j] += (x0 - f0[j]) * (l0 - g0[j])
            for j in range(C):
                row[j] = 0.5 * row[j]


@njit(**_OPTS)
def _dtw(flat, base, si, sj, R, S, cost, length):
    """Normalised DTW of the R x S matrix flat[base + i * si + j * sj].

    Written with selects rather than branches: the choice is data-dependent and
    unpredictable, and this runs twice as fast. Same choice as the if/elif chain
    diag <= left and diag <= up -> diag; left <= up -> left; else up.
    """
    acc = 0.0
    for j in range(S):
        acc += flat[base + j * sj]
        cost[j] = acc
        length[j] = j + 1
    for i in range(1, R):
        b = base + i * si
        diag, diag_len = cost[0], length[0]
        left = diag + flat[b]
        left_len = i + 1
        cost[0], length[0] = left, left_len
        for j in range(1, S):
            up, up_len = cost[j], length[j]
            use_left = left <= up
            side = left if use_left else up
            side_len = left_len if use_left else up_len
            use_diag = diag <= side
            best = diag if use_diag else side
            best_len = diag_len if use_diag else side_len
            left = best + flat[b + j * sj]
            left_len = best_len + 1
            cost[j], length[j] = left, left_len
            diag, diag_len = up, up_len
    return cost[S - 1] / length[S - 1]


@njit(parallel=True, **_OPTS)
def block_dtw(
    kind, FT, LT, inv, zero, has_zero, const,
    tok_start, tok_len, tok_rank, grp_lo,
    blk_g1, blk_g2, blk_off, order, cmax, out,
):
    """DTW distances for blocks of token pairs.

    FT: (D, F) frames of all tokens, transposed (LT: log(FT + eps) for KL, else unused);
    inv/zero: (F,) inverse norms / zero-vector flags (angular). Token t owns frames
    tok_start[t] .. + tok_len[t]; group g owns tokens grp_lo[g] .. grp_lo[g + 1].
    Block k holds d(p, q) for p in group blk_g1[k], q in group blk_g2[k] (g1 <= g2) at
    out[blk_off[k] + ip * n2 + iq]; a block with g1 == g2 is filled on both sides of
    its diagonal, the diagonal is +inf. Blocks are processed in the order `order`
    (shuffled, to balance the threads). Columns are taken in chunks of at most cmax
    frames, each used for every row token of the block while it is in cache.
    """
    D = FT.shape[0]
    maxlen = 0
    for t in range(tok_len.size):
        maxlen = max(maxlen, tok_len[t])
    for n in prange(order.size):
        k = order[n]
        g1, g2 = blk_g1[k], blk_g2[k]
        lo1, hi1 = grp_lo[g1], grp_lo[g1 + 1]
        lo2, hi2 = grp_lo[g2], grp_lo[g2 + 1]
        n2 = hi2 - lo2
        same = g1 == g2
        X = np.empty((maxlen, D))
        LX = np.empty((maxlen, D if kind == KL_SYMMETRIC else 0))
        inv_a = np.empty(maxlen)
        zero_a = np.empty(maxlen, dtype=np.bool_)
        dist = np.empty((maxlen, cmax))
        flat = dist.ravel()
        cost = np.empty(maxlen)
        length = np.empty(maxlen, dtype=np.int64)
        if same:
            for a in range(lo1, hi1):
                out[blk_off[k] + (a - lo1) * (n2 + 1)] = np.inf
        b = lo2
        while b < hi2:
            stop = b + 1
            while stop < hi2 and tok_start[stop] + tok_len[stop] - tok_start[b] <= cmax:
                stop += 1
            for a in range(lo1, hi1):
                first = max(b, a + 1) if same else b
                if first >= stop:
                    continue
                sa, na = tok_start[a], tok_len[a]
                for i in range(na):
                    for d in range(D):
                        X[i, d] = FT[d, sa + i]
                        if kind == KL_SYMMETRIC:
                            LX[i, d] = LT[d, sa + i]
                    if kind == ANGULAR:
                        inv_a[i] = inv[sa + i]
                        zero_a[i] = zero[sa + i]
                c0 = tok_start[first]
                C = tok_start[stop - 1] + tok_len[stop - 1] - c0
                _chunk_distances(kind, X, LX, na, FT, LT, c0, C, dist, inv_a, inv, zero_a, zero, has_zero, const)
                row_base = blk_off[k] + (a - lo1) * n2
                for q in range(first, stop):
                    off, nb = tok_start[q] - c0, tok_len[q]
                    if tok_rank[a] < tok_rank[q]:  # rows: token a
                        value = _dtw(flat, off, cmax, 1, na, nb, cost, length)
                    else:  # rows: token q
                        value = _dtw(flat, off, 1, cmax, nb, na, cost, length)
                    out[row_base + q - lo2] = value
                    if same:
                        out[blk_off[k] + (q - lo2) * n2 + a - lo1] = value
            b = stop


@njit(parallel=True, **_OPTS)
def score_cells(dist, grp_size, ga, gb, gx, xa_off, xa_rs, xa_cs, xb_off, xb_rs, xb_cs, within, order, correct, total):
    """Per cell: correct[c] = #(d(A, X) < d(B, X)) + #ties / 2 over the cell's triplets,
    total[c] = number of triplets. d(X = x-th of gx, A = a-th of ga) is
    dist[xa_off[c] + x * xa_rs[c] + a * xa_cs[c]]; likewise for B. Within speaker
    X = A's group and X == A is left out. Cells are visited in the order `order`.
    """
    for n in prange(order.size):
        c = order[n]
        na, nb, nx = grp_size[ga[c]], grp_size[gb[c]], grp_size[gx[c]]
        db = np.empty(nb)
        good = 0.0
        for x in range(nx):
            base = xb_off[c] + x * xb_rs[c]
            for b in range(nb):
                db[b] = dist[base + b * xb_cs[c]]
            base = xa_off[c] + x * xa_rs[c]
            for a in range(na):
                if within and a == x:
                    continue
                da = dist[base + a * xa_cs[c]]
                right = 0  # d(A, X) < d(B, X)
                tie = 0
                for b in range(nb):  # a plain count vectorises; cells are small (<= 10 tokens by default)
                    right += db[b] > da
                    tie += db[b] == da
                good += right + 0.5 * tie
        correct[c] = good
        total[c] = (na * (na - 1) if within else na * nx) * nb
