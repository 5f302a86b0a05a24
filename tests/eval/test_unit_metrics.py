"""Unit metrics against hand-computed values, scikit-learn, and a brute-force matching."""

import itertools
import json
import math

import numpy as np
import pytest

from speechunits.eval.unit_metrics import (
    UnitMetricsConfig,
    adjusted_rand_index,
    boundary_scores,
    cluster_purity,
    compute_unit_metrics,
    contingency,
    homogeneity_completeness_v,
    match_boundaries,
    normalized_mutual_info,
    phone_purity,
    pnmi,
    r_value,
    reference_boundaries,
    unit_boundaries,
)
from speechunits.units.formats import UnitSequence, write_units

H23 = -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)  # 0.9183 bits

# phones a a a a b b / codes 1 1 2 2 2 3
LABELS = np.array(["a", "a", "a", "a", "b", "b"])
CODES = np.array([1, 1, 2, 2, 2, 3])


def test_clustering_scores_by_hand():
    t = contingency(LABELS, CODES)
    np.testing.assert_array_equal(t.counts, [[2, 2, 0], [0, 1, 1]])
    assert t.labels == ["a", "b"] and t.codes == [1, 2, 3]
    assert phone_purity(t) == pytest.approx(5 / 6)  # codes 1, 2, 3 -> a, a, b: 2 + 2 + 1 right
    assert cluster_purity(t) == pytest.approx(3 / 6)  # phones a, b -> best codes hold 2 and 1 frames
    # H(phone) = H(2/3, 1/3); H(phone | code) = 1/2 * H(2/3, 1/3) (only code 2 is mixed)
    assert pnmi(t) == pytest.approx(0.5)
    h, c, v = homogeneity_completeness_v(t)
    h_code = -(2 / 6) * math.log2(2 / 6) - (3 / 6) * math.log2(3 / 6) - (1 / 6) * math.log2(1 / 6)
    assert h == pytest.approx(0.5)
    assert c == pytest.approx(0.5 * H23 / h_code)
    assert v == pytest.approx(2 * h * c / (h + c))
    # ARI: pairs within cells 1 + 1 = 2; rows C(4,2) + C(2,2) = 7; columns 1 + 3 + 0 = 4; C(6,2) = 15
    expected = 7 * 4 / 15
    assert adjusted_rand_index(t) == pytest.approx((2 - expected) / ((7 + 4) / 2 - expected))


def test_against_sklearn(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    for n_phones, n_codes, n in [(5, 8, 300), (12, 40, 2000), (3, 2, 50), (1, 4, 30), (4, 1, 30)]:
        phones = rng.integers(0, n_phones, n)
        codes = (phones * 3 + rng.integers(0, 3, n)) % n_codes if n_codes > 1 else np.zeros(n, int)
        codes = np.where(rng.random(n) < 0.3, rng.integers(0, n_codes, n), codes)
        t = contingency(phones, codes)
        h, c, v = homogeneity_completeness_v(t)
        sh, sc, sv = metrics.homogeneity_completeness_v_measure(phones, codes)
        assert (h, c, v) == pytest.approx((sh, sc, sv), abs=1e-10)
        assert pnmi(t) == pytest.approx(sh, abs=1e-10)
        assert normalized_mutual_info(t) == pytest.approx(metrics.normalized_mutual_info_score(phones, codes), abs=1e-10)
        assert adjusted_rand_index(t) == pytest.approx(metrics.adjusted_rand_score(phones, codes), abs=1e-10)


def test_purity_against_brute_force(rng):
    phones, codes = rng.integers(0, 6, 500), rng.integers(0, 9, 500)
    t = contingency(phones, codes)
    best_phone = {k: np.bincount(phones[codes == k]).argmax() for k in np.unique(codes)}
    assert phone_purity(t) == pytest.approx(np.mean([best_phone[k] == p for p, k in zip(phones, codes)]))
    best_code = {p: np.bincount(codes[phones == p]).argmax() for p in np.unique(phones)}
    assert cluster_purity(t) == pytest.approx(np.mean([best_code[p] == k for p, k in zip(phones, codes)]))


def test_r_value_by_hand():
    # 8 of 10 reference boundaries found with 10 hypotheses: HR 0.8, OS 0
    assert r_value(0.8, 0.0) == pytest.approx(1 - (0.2 + 0.2 / math.sqrt(2)) / 2)
    # every boundary found but twice as many hypotheses: HR 1, OS 1
    assert r_value(1.0, 1.0) == pytest.approx(1 - (1 + 1 / math.sqrt(2)) / 2)
    assert r_value(1.0, 0.0) == pytest.approx(1.0)
    # nothing hypothesised: HR 0, OS -1 -> r1 = sqrt(2), r2 = 0
    assert r_value(0.0, -1.0) == pytest.approx(1 - math.sqrt(2) / 2)
    s = boundary_scores([([0.1, 0.2, 0.3, 0.4], [0.11, 0.25, 0.31])], tolerance=0.02)
    assert (s.hits, s.n_hyp, s.n_ref) == (2, 4, 3)
    assert s.precision == 0.5 and s.recall == pytest.approx(2 / 3)
    assert s.over_segmentation == pytest.approx(s.recall / s.precision - 1)
    assert s.r_value == pytest.approx(r_value(2 / 3, 1 / 3))


def brute_matching(hyp, ref, tol):
    """Maximum one-to-one matching by exhaustive search (tiny inputs)."""
    best = 0
    for k in range(min(len(hyp), len(ref)), 0, -1):
        for hs in itertools.combinations(range(len(hyp)), k):
            for rs in itertools.permutations(range(len(ref)), k):
                if all(abs(hyp[h] - ref[r]) <= tol + 1e-9 for h, r in zip(hs, rs)):
                    return k
    return best


def test_matching_is_a_maximum_one_to_one_matching(rng):
    for _ in range(200):
        hyp = np.sort(rng.integers(0, 30, rng.integers(0, 6))) * 0.01
        ref = np.sort(rng.integers(0, 30, rng.integers(0, 6))) * 0.01
        assert match_boundaries(hyp, ref, 0.02) == brute_matching(hyp, ref, 0.02)


def test_matching_is_one_to_one():
    # two hypotheses near one reference boundary: one hit
    assert match_boundaries([0.10, 0.11], [0.105], 0.02) == 1
    # a greedy nearest-neighbour rule would take 0.12 for 0.11 and leave 0.09 unmatched
    assert match_boundaries([0.09, 0.12], [0.11, 0.14], 0.02) == 2
    assert match_boundaries([0.1], [0.12], 0.02) == 1  # exactly at the tolerance counts
    assert match_boundaries([0.1], [0.1201], 0.02) == 0


def test_boundaries_exclude_the_utterance_ends():
    segs = [(0.0, 0.2, "sil"), (0.2, 0.35, "a"), (0.35, 0.5, "b"), (0.6, 0.9, "sil")]
    np.testing.assert_allclose(reference_boundaries(segs), [0.2, 0.35, 0.5, 0.6])
    np.testing.assert_allclose(unit_boundaries([2, 3, 1], 0.02), [0.04, 0.10])
    assert unit_boundaries([5], 0.02).size == 0


def test_compute_unit_metrics_by_hand():
    ali = {"u": [(0.0, 0.08, "a"), (0.08, 0.12, "b")], "no_units": [(0.0, 1.0, "a")]}
    units = {"u": UnitSequence("u", np.array([1, 2, 3]), np.array([2, 3, 1]), 0.02),
             "no_ali": UnitSequence("no_ali", np.array([1]), np.array([3]), 0.02)}
    m = compute_unit_metrics(units, ali, config=UnitMetricsConfig(codebook_size=4))
    assert m.n_utterances == 1 and m.missing_alignments == ["no_ali"]
    assert m.n_frames == 6 and m.duration == pytest.approx(0.12)
    assert m.phone_purity == pytest.approx(5 / 6) and m.cluster_purity == pytest.approx(0.5)
    assert m.pnmi == pytest.approx(0.5)
    assert m.unit_rate == pytest.approx(3 / 0.12) and m.phone_rate == pytest.approx(2 / 0.12)
    assert m.units_per_phone == pytest.approx(1.5)
    assert m.bitrate == pytest.approx(3 * math.log2(3) / 0.12)  # 3 units, all different
    h_frames = -(1 / 3) * math.log2(1 / 3) - 0.5 * math.log2(0.5) - (1 / 6) * math.log2(1 / 6)
    assert m.bitrate_frames == pytest.approx(6 * h_frames / 0.12)
    assert m.perplexity == pytest.approx(2**h_frames) and m.unit_perplexity == pytest.approx(3)
    assert m.used_codes == 3 and m.codebook_usage == pytest.approx(0.75)
    # hypotheses at 0.04 and 0.10, reference at 0.08: 0.10 hits (|0.02| <= tolerance)
    b = m.boundaries
    assert (b.hits, b.n_hyp, b.n_ref) == (1, 2, 1)
    assert b.precision == 0.5 and b.recall == 1.0 and b.f1 == pytest.approx(2 / 3)
    assert b.r_value == pytest.approx(1 - (1 + 1 / math.sqrt(2)) / 2)
    d = m.to_dict()
    assert d["kind"] == "unit-metrics" and d["contingency"]["phones"] == ["a", "b"]
    assert d["contingency"]["counts"] == [[2, 2, 0], [0, 1, 1]]
    json.dumps(d)  # JSON-ready


def test_repeated_units_are_deduplicated_first():
    ali = {"u": [(0.0, 0.08, "a"), (0.08, 0.12, "b")]}
    dedup = compute_unit_metrics({"u": UnitSequence("u", np.array([1, 2, 3]), np.array([2, 3, 1]), 0.02)}, ali)
    frames = compute_unit_metrics({"u": UnitSequence("u", np.array([1, 1, 2, 2, 2, 3]), np.ones(6, int), 0.02)}, ali)
    assert frames.to_dict() == dedup.to_dict()


def test_silence_and_ignored_phones():
    ali = {"u": [(0.0, 0.04, "sil"), (0.04, 0.08, "a"), (0.08, 0.12, "sil")]}
    units = {"u": UnitSequence("u", np.array([0, 1, 0]), np.array([2, 2, 2]), 0.02)}
    m = compute_unit_metrics(units, ali)
    assert m.phone_rate == pytest.approx(1 / 0.12)  # sil is not counted
    assert m.pnmi == pytest.approx(1.0) and m.n_frames == 6
    m2 = compute_unit_metrics(units, ali, config=UnitMetricsConfig(ignore_phones=("sil",)))
    assert m2.n_frames == 2


def test_unit_metrics_command(tmp_path):
    from speechunits.cli import main
    from speechunits.data.ctm import write_ctm

    write_units(tmp_path / "units", [UnitSequence("u", np.array([1, 2, 3]), np.array([2, 3, 1]), 0.02)])
    write_ctm(tmp_path / "ali.ctm", {"u": [(0.0, 0.08, "a"), (0.08, 0.12, "b")]})
    out = tmp_path / "m.json"
    assert main(["unit-metrics", str(tmp_path / "units"), "--alignments", str(tmp_path / "ali.ctm"),
                 "--output", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["kind"] == "unit-metrics" and d["pnmi"] == pytest.approx(0.5)
    assert d["units"] == str(tmp_path / "units") and d["boundaries"]["hits"] == 1
    # units.txt has no shift: --frame-shift supplies it; without it the error says so
    assert main(["unit-metrics", str(tmp_path / "units" / "units.txt"), "--alignments", str(tmp_path / "ali.ctm"),
                 "--frame-shift", "0.02"]) == 0
    assert main(["unit-metrics", str(tmp_path / "units" / "units.txt"), "--alignments", str(tmp_path / "ali.ctm")]) == 1


def test_cli_knows_the_k_of_kmeans_units(tmp_path):
    """unit-metrics reads the number of clusters of `kmeans apply` (kmeans.json) and
    `extract --kmeans` (extract.json) folders, so codebook usage is reported for them."""
    import json

    from speechunits.cli.unit_metrics import _codebook_size

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "kmeans.json").write_text(json.dumps({"k": 50, "dim": 39}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "extract.json").write_text(json.dumps({"model": "/nowhere.pt", "kmeans": {"k": 100, "id": "x"}}))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "extract.json").write_text(json.dumps({"model": "/nowhere.pt", "kmeans": None}))
    assert _codebook_size(tmp_path / "a") == 50
    assert _codebook_size(tmp_path / "b" / "units.jsonl") == 100
    assert _codebook_size(tmp_path / "c") is None  # the model cannot be read: unknown, not an error
