"""The fast ABX (speechunits.eval.abx) against the brute-force reference and hand-computed cases."""

import itertools

import numpy as np
import pytest

from speechunits.data.items import ItemSet, make_items
from speechunits.eval.abx import AbxConfig, compute_abx, frame_ranges
from speechunits.eval.abx.compute import pair_distance
from speechunits.eval.abx import native
from speechunits.eval.abx.kernels import acos_over_pi_array
from speechunits.eval.abx.reference import dtw, frame_distance_matrix, reference_abx

SHIFT = 0.01


@pytest.fixture(autouse=True, params=["c", "numba"])
def abx_kernels(request, monkeypatch):
    """Every test here runs on both implementations of the kernels (native/ and kernels.py)."""
    monkeypatch.setenv("SPEECHUNITS_ABX_KERNELS", request.param)
    return request.param


def make_problem(seed, kind="normal", n_utts=10, n_spk=3, phones=("a", "b", "c"), T=48, D=5):
    """Random alignments (boundaries off the frame grid) -> items; random features."""
    rng = np.random.default_rng(seed)
    align, utt2spk, feats = {}, {}, {}
    for u in range(n_utts):
        utt = f"u{u:02d}"
        utt2spk[utt] = f"s{u % n_spk}"
        t, segs = rng.uniform(0, 0.02), []
        while True:
            d = rng.uniform(0.02, 0.07)
            if t + d > (T - 2) * SHIFT:
                break
            segs.append((t, t + d, str(rng.choice(phones))))
            t += d
        align[utt] = segs
        if kind == "units":
            feats[utt] = rng.integers(0, 4, size=(T, 1))
        elif kind == "prob":
            x = np.exp(rng.normal(size=(T, D)))
            feats[utt] = (x / x.sum(1, keepdims=True)).astype(np.float32)
        else:
            feats[utt] = rng.normal(size=(T, D)).astype(np.float32)
    return align, utt2spk, feats


PROBLEMS = {
    "angular": make_problem(1),
    "euclidean": make_problem(2),
    "kl_symmetric": make_problem(3, kind="prob"),
}


def _compare(items, feats, distance, speaker, context, libri, subsample):
    mg, mx = (3, 2) if subsample else (-1, -1)
    fast = compute_abx(
        items, feats, SHIFT,
        AbxConfig(speaker=speaker, context=context, distance=distance, max_size_group=mg, max_x_across=mx,
                  libri_light_slicing=libri),
    )
    ref = reference_abx(
        items, feats, SHIFT, speaker=speaker, context=context, distance=distance, max_size_group=mg,
        max_x_across=mx, libri_light_slicing=libri,
    )
    cells = fast.cells.as_dict()
    assert set(cells) == set(ref.cells)
    for key, (err, n) in ref.cells.items():
        assert cells[key] == pytest.approx(err, abs=1e-9)
    assert fast.n_triplets == sum(n for _, n in ref.cells.values())
    assert fast.score == pytest.approx(ref.score, abs=1e-6)
    assert fast.by_phone_pair.keys() == ref.by_phone_pair.keys()
    for k, v in ref.by_phone_pair.items():
        assert fast.by_phone_pair[k] == pytest.approx(v, abs=1e-9)
    for k, v in ref.by_speaker.items():
        assert fast.by_speaker[k] == pytest.approx(v, abs=1e-9)
    return fast


@pytest.mark.parametrize(
    "distance,speaker,context,libri,subsample",
    list(itertools.product(["angular", "euclidean", "kl_symmetric"], ["within", "across"], ["within", "any"], [False, True], [False, True])),
)
def test_matches_brute_force(distance, speaker, context, libri, subsample):
    align, utt2spk, feats = PROBLEMS[distance]
    level = "triphone" if context == "within" else "phone"
    items = ItemSet.from_rows(make_items(align, utt2spk, level=level))
    result = _compare(items, feats, distance, speaker, context, libri, subsample)
    assert result.n_cells >= 10 and 0 < result.score < 1


@pytest.mark.parametrize("distance", ["angular", "euclidean", "kl_symmetric"])
@pytest.mark.parametrize("speaker,context", [("within", "any"), ("across", "within")])
def test_discrete_units_match_one_hot_reference(distance, speaker, context):
    """Units are one-hot vectors for the reference: ties everywhere, so this checks the tie rules."""
    align, utt2spk, feats = make_problem(4, kind="units")
    items = ItemSet.from_rows(make_items(align, utt2spk, level="phone"))
    result = _compare(items, feats, distance, speaker, context, False, False)
    assert result.n_cells > 10


def test_hand_computed_score():
    """1-frame tokens, 1-d euclidean features; error worked out by hand.

    a: A1 = 0, A2 = 4; b: B1 = 2, B2 = 8 (one speaker, one context).
    cell (a, b): X=A1, A=A2: d(A,X)=4 vs B1 2 (wrong), B2 8 (right);
                 X=A2, A=A1: 4 vs B1 2 (wrong), B2 4 (tie)      -> 1.5/4 right, error 0.625
    cell (b, a): X=B1, A=B2: 6 vs A1 2, A2 2 (both wrong);
                 X=B2, A=B1: 6 vs A1 8 (right), A2 4 (wrong)   -> 1/4 right, error 0.75
    """
    feats = {"u": np.array([[0.0], [4.0], [2.0], [8.0]])}
    rows = [("u", i + 0.0, i + 1.0, ph, "x", "y", "s") for i, ph in enumerate(["a", "a", "b", "b"])]
    result = compute_abx(ItemSet.from_rows(rows), feats, 1.0, AbxConfig(distance="euclidean"))
    assert result.by_phone_pair == {("a", "b"): pytest.approx(0.625), ("b", "a"): pytest.approx(0.75)}
    assert result.score == pytest.approx(0.6875)
    assert result.n_triplets == 8 and result.n_cells == 2


def test_hand_computed_dtw():
    # x = [0, 2], y = [1, 1, 3]: |x - y| = [[1, 1, 3], [1, 1, 1]]; cost 3 along (0,0) (0,1) (1,2): path 3
    x, y = np.array([[0.0], [2.0]]), np.array([[1.0], [1.0], [3.0]])
    assert pair_distance(x, y, "euclidean") == pytest.approx(1.0)
    assert pair_distance(y, x, "euclidean") == pytest.approx(1.0)
    # one frame against three: cost 3 over a path of 3; two against one: 6 over 2
    assert pair_distance(np.array([[0.0]]), np.array([[1.0], [1.0], [1.0]]), "euclidean") == pytest.approx(1.0)
    assert pair_distance(np.array([[0.0], [0.0]]), np.array([[3.0]]), "euclidean") == pytest.approx(3.0)
    # angular in 2-d: orthogonal -> 1/2, opposite -> 1, zero vector -> 1 from others, 0 from zero
    e1, e2 = np.array([[1.0, 0.0]]), np.array([[0.0, 3.0]])
    assert pair_distance(e1, e2) == pytest.approx(0.5)
    assert pair_distance(e1, -2 * e1) == pytest.approx(1.0)
    assert pair_distance(e1, np.zeros((1, 2))) == 1.0
    assert pair_distance(np.zeros((1, 2)), np.zeros((1, 2))) == 0.0
    # units: one-hot angular distance 1/2 per differing frame
    assert pair_distance(np.array([1, 2]), np.array([1, 1, 2])) == pytest.approx(0.0)
    assert pair_distance(np.array([1, 2]), np.array([3, 3])) == pytest.approx(0.5)


@pytest.mark.parametrize("distance", ["angular", "euclidean", "kl_symmetric"])
def test_pair_distance_matches_reference_dtw(rng, distance):
    for _ in range(20):
        n, m = rng.integers(1, 9, size=2)
        x, y = rng.random((n, 6)), rng.random((m, 6))
        if rng.random() < 0.3:
            x[0] = 0.0  # zero vectors
        expected = dtw(frame_distance_matrix(x, y, distance))
        assert pair_distance(x, y, distance) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_dtw_tie_rule_on_units(rng):
    """Discrete units make ties on every path; the path length (and so the value) follows the
    backtracking priority diagonal > left > up, in both orientations."""
    for _ in range(100):
        x, y = rng.integers(0, 3, size=rng.integers(1, 7)), rng.integers(0, 3, size=rng.integers(1, 7))
        ox, oy = np.eye(3)[x], np.eye(3)[y]
        assert pair_distance(x, y) == dtw(frame_distance_matrix(ox, oy, "angular"))
        assert pair_distance(y, x) == dtw(frame_distance_matrix(oy, ox, "angular"))


def test_acos_approximation(abx_kernels):
    x = np.concatenate([np.linspace(-1, 1, 200_001), [-1.0, 1.0, 0.0, 0.5, -0.5, np.nextafter(0.5, 1), 1 - 1e-15]])
    out = np.empty_like(x)
    (native.load(required=True).acos_over_pi_array if abx_kernels == "c" else acos_over_pi_array)(x, out)
    assert np.abs(out - np.arccos(x) / np.pi).max() < 1e-15
    assert out[-6] == 0.0 and out[-7] == 1.0


def test_frame_ranges_centres_and_libri_light():
    # frames centred at 5, 15, 25, ... ms: [0.0125, 0.0425] holds 15, 25, 35 -> frames 1..3
    start, end = frame_ranges(np.array([0.0125]), np.array([0.0425]), 0.01)
    assert (start[0], end[0]) == (1, 4)
    start, end = frame_ranges(np.array([0.0125]), np.array([0.0425]), 0.01, libri_light=True)
    assert (start[0], end[0]) == (1, 3)
    # times exactly on a centre are included (0.035 / 0.01 is 3.5000000000000004 in floats)
    start, end = frame_ranges(np.array([0.035]), np.array([0.055]), 0.01)
    assert (start[0], end[0]) == (3, 6)


def _shuffled(items, feats, seed):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(items))
    return items.take(perm), {u: feats[u] for u in rng.permutation(sorted(feats))}


@pytest.mark.parametrize("speaker,context", [("within", "within"), ("across", "any")])
def test_reordering_items_and_utterances_changes_nothing(speaker, context):
    align, utt2spk, feats = PROBLEMS["angular"]
    items = ItemSet.from_rows(make_items(align, utt2spk, level="phone"))
    config = AbxConfig(speaker=speaker, context=context, max_size_group=3, max_x_across=1)
    base = compute_abx(items, feats, SHIFT, config)
    for seed in range(3):
        items2, feats2 = _shuffled(items, feats, seed)
        other = compute_abx(items2, feats2, SHIFT, config)
        assert other.score == base.score
        assert other.cells.as_dict() == base.cells.as_dict()


def test_subsampling_bounds_and_seed():
    align, utt2spk, feats = PROBLEMS["angular"]
    items = ItemSet.from_rows(make_items(align, utt2spk, level="phone"))
    full = compute_abx(items, feats, SHIFT, AbxConfig(speaker="across", context="any", max_size_group=-1, max_x_across=-1))
    sub = compute_abx(items, feats, SHIFT, AbxConfig(speaker="across", context="any", max_size_group=2, max_x_across=1))
    other_seed = compute_abx(items, feats, SHIFT, AbxConfig(speaker="across", context="any", max_size_group=2, max_x_across=1, seed=1))
    assert sub.n_triplets < full.n_triplets
    assert max(sub.cells.n_triplets) <= 2 * 2 * 2  # A, B, X at most 2 tokens each
    # one X speaker per (A, B) group
    ab_groups = {(a, b, c, s) for a, b, c, s, _ in full.cells.as_dict()}
    assert sub.n_cells == len(ab_groups) < full.n_cells
    assert sub.cells.as_dict() != other_seed.cells.as_dict()


def test_threads_give_identical_results():
    align, utt2spk, feats = PROBLEMS["euclidean"]
    items = ItemSet.from_rows(make_items(align, utt2spk, level="phone"))
    one = compute_abx(items, feats, SHIFT, AbxConfig(context="any", num_threads=1))
    two = compute_abx(items, feats, SHIFT, AbxConfig(context="any", num_threads=2))
    assert one.score == two.score


def test_boundaries_on_frame_centres_match_exact_arithmetic():
    """Item times that fall exactly on frame centres (x.xx5 s at 10 ms): both ends are included,
    as exact decimal arithmetic says, although the float quotients land on either side."""
    align, utt2spk, feats = PROBLEMS["angular"]
    rows = []
    for utt, segs in align.items():
        for k, (start, end, phone) in enumerate(segs[1:-1], 1):
            on, off = round(round(start, 2) + 0.005, 3), round(round(end, 2) + 0.005, 3)  # on a centre, as read from text
            if off > on:
                rows.append((utt, on, off, phone, segs[k - 1][2], segs[k + 1][2], utt2spk[utt]))
    items = ItemSet.from_rows(rows)
    start, end = frame_ranges(items.onset, items.offset, SHIFT)
    np.testing.assert_array_equal(start, np.round(items.onset / SHIFT - 0.5))
    np.testing.assert_array_equal(end, np.round(items.offset / SHIFT - 0.5) + 1)
    _compare(items, feats, "angular", "across", "any", False, False)
    _compare(items, feats, "angular", "within", "any", True, False)
