"""ABX error of features on an item file: the fast path.

    result = compute_abx(read_items("test.item"), FeatureDir("feats"), 0.01, AbxConfig(speaker="across"))

Steps: load and slice the features (frames.py), group the tokens and list the cells
(cells.py), compute the DTW distance of every pair of tokens that some cell compares,
once, block by block of groups (kernels.block_dtw), score every cell from those
distances (kernels.score_cells), then average (averaging below).

Memory: the frames of the tokens used (float64, D x frames), plus 8 bytes per
distinct pair of tokens compared (no subsampling, across speaker, any context on
5,000 phones: 11.5 M pairs, 92 MB); frame distances live in a per-thread buffer of
COLUMN_CHUNK frames per row frame, whatever the size of the cells.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import numpy as np

from speechunits.data.items import ItemSet
from speechunits.errors import SpeechUnitsError
from speechunits.eval.abx.cells import ANY, CellPlan, canonical_rank, plan_cells
from speechunits.eval.abx.frames import Tokens, load_tokens
from speechunits.eval.abx.options import KL_EPSILON, AbxConfig, AbxResult, CellTable

log = logging.getLogger(__name__)

COLUMN_CHUNK = 512  # column frames per chunk: a chunk of features stays in L2 across the rows


def _kernels(frame_pairs: int | None = None):
    """The ABX kernels in use (C or numba: kernel_loader.select_kernels)."""
    from speechunits.eval.abx.kernel_loader import select_kernels

    return select_kernels(frame_pairs=frame_pairs)


def _discrete_cost(distance: str) -> float:
    """d(one-hot u, one-hot v) for u != v: the discrete units' only non-zero distance."""
    if distance == "angular":
        return 0.5  # arccos(0) / pi
    if distance == "euclidean":
        return float(np.sqrt(2.0))
    # 1/2 sum_d (u_d - v_d)(log(u_d + eps) - log(v_d + eps)), written as the kernel evaluates it
    return float(np.log(1.0 + KL_EPSILON) - np.log(KL_EPSILON))


def _distance_inputs(FT: np.ndarray, discrete: bool, distance: str):
    """Kernel code and what it needs besides the frames: logs (KL), inverse norms and
    zero flags (angular), the one-hot distance (units)."""
    kernels = _kernels()
    LT = np.empty((0, 0))
    inv = np.empty(0)
    zero = np.empty(0, dtype=np.bool_)
    const = 0.0
    if discrete:
        return kernels.DISCRETE, LT, inv, zero, _discrete_cost(distance)
    if distance == "angular":
        norm = np.sqrt(np.einsum("df,df->f", FT, FT))
        zero = norm == 0
        inv = np.divide(1.0, norm, out=np.zeros_like(norm), where=~zero)
        return kernels.ANGULAR, LT, inv, zero, const
    if distance == "euclidean":
        return kernels.EUCLIDEAN, LT, inv, zero, const
    if FT.size and FT.min() < 0:
        raise SpeechUnitsError("kl_symmetric needs probability-like features (no negative values)")
    return kernels.KL_SYMMETRIC, np.log(FT + KL_EPSILON), inv, zero, const


def pair_distance(x: np.ndarray, y: np.ndarray, distance: str = "angular") -> float:
    """DTW distance between two frame sequences as ABX computes it, x giving the rows.

    x: (N, D), y: (M, D) float, or (N,), (M,) integer unit ids.
    """
    discrete = np.asarray(x).dtype.kind in "iu"
    x2 = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    FT = np.ascontiguousarray(np.concatenate([x2, y2]).T)
    kind, LT, inv, zero, const = _distance_inputs(FT, discrete, distance)
    out = np.empty(1)
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    _kernels().block_dtw(
        kind, FT, np.ascontiguousarray(LT), inv, zero, bool(zero.any()), const,
        i64(0, len(x2)), i64(len(x2), len(y2)), i64(0, 1), i64(0, 1, 2), i64(0), i64(1), i64(0), i64(0),
        max(len(x2), len(y2), 1), out,
    )
    return float(out[0])


def compute_abx(items: ItemSet, features: Any, frame_shift: float | None = None, config: AbxConfig | None = None) -> AbxResult:
    """ABX error of `features` on `items`.

    features: .load(utt) source (speechunits.data.featdir) or a mapping utt -> array;
    float (T, D) features, or integer unit ids (T,) / (T, 1) scored as one-hot vectors.
    frame_shift: seconds between frames; None takes the source's `frame_shift`. See
    AbxConfig for the options and the package doc for the exact semantics.
    """
    config = (config or AbxConfig()).validate()
    if frame_shift is None:
        frame_shift = getattr(features, "frame_shift", None)
        if frame_shift is None:
            raise SpeechUnitsError("no frame shift: pass frame_shift or record it beside the features")
    if len(items) == 0:
        raise SpeechUnitsError(f"{items.path or 'item set'}: no items")
    tokens = load_tokens(items, features, frame_shift, config)
    if len(tokens.item) == 0:
        raise SpeechUnitsError("no item can be scored (all were skipped)")
    rank = canonical_rank(items, tokens.item)
    plan = plan_cells(
        items, tokens.item, rank, speaker=config.speaker, context=config.context,
        max_size_group=config.max_size_group, max_x_across=config.max_x_across, seed=config.seed,
    )
    if len(plan.ga) == 0:
        need = "a phone with 2 tokens and another phone" if config.speaker == "within" else "two phones and a second speaker"
        raise SpeechUnitsError(
            f"no ABX cell: {config.speaker} speaker, {config.context} context needs {need} in the same "
            f"{'context and ' if config.context == 'within' else ''}speaker"
        )
    correct, total = _score(items, tokens, rank, plan, config)
    return summarise(tokens, plan, correct, total, config)


def _score(items: ItemSet, tokens: Tokens, rank: np.ndarray, plan: CellPlan, config: AbxConfig):
    G = len(plan.members)
    sizes = np.array([len(m) for m in plan.members], dtype=np.int64)
    grp_lo = np.zeros(G + 1, dtype=np.int64)
    np.cumsum(sizes, out=grp_lo[1:])
    order = np.concatenate(plan.members)  # token ids in group order
    lengths = (tokens.end - tokens.start)[order]
    starts = np.zeros(len(order), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    # frames, transposed, in group order
    dim = 1 if tokens.discrete else tokens.dim
    FT = np.empty((dim, int(lengths.sum())))
    for pos, t in enumerate(order):
        i = tokens.item[t]
        array = tokens.features[items.file[i]][tokens.start[t]:tokens.end[t]]
        FT[:, starts[pos]:starts[pos] + lengths[pos]] = array.T if array.ndim == 2 else array[None, :]
    kind, LT, inv, zero, const = _distance_inputs(FT, tokens.discrete, config.distance)

    # blocks: the unordered pairs of groups that some cell compares
    lo_a, hi_a = np.minimum(plan.gx, plan.ga), np.maximum(plan.gx, plan.ga)
    lo_b, hi_b = np.minimum(plan.gx, plan.gb), np.maximum(plan.gx, plan.gb)
    keys = np.unique(np.concatenate([lo_a * G + hi_a, lo_b * G + hi_b]))
    blk_g1, blk_g2 = keys // G, keys % G
    group_frames = np.add.reduceat(lengths, grp_lo[:-1]) if len(lengths) else np.zeros(G, dtype=np.int64)
    kernels = _kernels(frame_pairs=int((group_frames[blk_g1] * group_frames[blk_g2]).sum()))
    blk_size = sizes[blk_g1] * sizes[blk_g2]
    blk_off = np.zeros(len(keys), dtype=np.int64)
    np.cumsum(blk_size[:-1], out=blk_off[1:])
    dist = np.empty(int(blk_size.sum()))
    log.info("ABX: %d cells, %d groups, %d blocks, %d token pairs", len(plan.ga), G, len(keys), dist.size)

    order_blocks = np.random.default_rng(0).permutation(len(keys))  # balance the threads' work
    tok_rank = rank[order]
    cmax = max(COLUMN_CHUNK, int(lengths.max()))

    previous = kernels.get_num_threads()
    if config.num_threads:
        kernels.set_num_threads(min(config.num_threads, kernels.max_threads()))
    try:
        kernels.block_dtw(
            kind, FT, np.ascontiguousarray(LT), inv, zero, bool(zero.any()), const,
            starts, lengths, tok_rank, grp_lo, blk_g1, blk_g2, blk_off, order_blocks, cmax, dist,
        )
        # where each cell finds d(X, A) and d(X, B)
        def locate(other):
            k = np.searchsorted(keys, np.minimum(plan.gx, other) * G + np.maximum(plan.gx, other))
            x_rows = plan.gx <= other  # the block's rows are X's group
            offs = blk_off[k]
            rs = np.where(x_rows, sizes[other], 1)
            cs = np.where(x_rows, 1, sizes[plan.gx])
            return offs, rs, cs

        xa_off, xa_rs, xa_cs = locate(plan.ga)
        xb_off, xb_rs, xb_cs = locate(plan.gb)
        correct = np.empty(len(plan.ga))
        total = np.empty(len(plan.ga), dtype=np.int64)
        kernels.score_cells(
            dist, sizes, plan.ga, plan.gb, plan.gx, xa_off, xa_rs, xa_cs, xb_off, xb_rs, xb_cs,
            config.speaker == "within", np.random.default_rng(1).permutation(len(plan.ga)), correct, total,
        )
    finally:
        kernels.set_num_threads(previous)
    return correct, total


def summarise(tokens: Tokens, plan: CellPlan, correct: np.ndarray, total: np.ndarray, config: AbxConfig) -> AbxResult:
    """Average cell errors over the cells that exist (libri-light / fastabx order).

    Within speaker: mean over contexts for each (speaker, phone pair), then over
    speakers, then over phone pairs. Across speaker: mean over all (context, X speaker)
    cells for each (A/B speaker, phone pair), then over speakers, then phone pairs.
    """
    error = 1.0 - correct / total
    keys = plan.keys
    level1: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for c in range(len(error)):
        ka, kb = keys[plan.ga[c]], keys[plan.gb[c]]
        level1[(ka[3], ka[0], kb[0])].append(error[c])
    per_spk_pair = {k: float(np.mean(v)) for k, v in level1.items()}
    level2: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_spk: dict[str, list[float]] = defaultdict(list)
    for (spk, a, b), v in per_spk_pair.items():
        level2[(a, b)].append(v)
        by_spk[spk].append(v)
    by_pair = {k: float(np.mean(v)) for k, v in sorted(level2.items())}
    score = float(np.mean(list(by_pair.values())))
    cells = CellTable(
        phone_a=[keys[g][0] for g in plan.ga],
        phone_b=[keys[g][0] for g in plan.gb],
        context=[f"{keys[g][1]}+{keys[g][2]}" if keys[g][1] != ANY else ANY for g in plan.ga],
        speaker=[keys[g][3] for g in plan.ga],
        speaker_x=[keys[g][3] for g in plan.gx],
        n_triplets=total,
        error=error,
    )
    return AbxResult(
        score=score,
        by_phone_pair=by_pair,
        by_speaker={s: float(np.mean(v)) for s, v in sorted(by_spk.items())},
        n_cells=len(error),
        n_triplets=int(total.sum()),
        n_items=len(tokens.item),
        n_items_skipped=len(tokens.skipped),
        skipped=list(tokens.skipped),
        config=config,
        cells=cells,
    )
