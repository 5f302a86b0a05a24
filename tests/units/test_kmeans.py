"""k-means baseline units: the algorithm against scikit-learn and brute force, determinism,
re-seeding, the frame sample, and the fit / apply commands (outputs, ABX, resume, bad input)."""

import json

import numpy as np
import pytest
import torch

from speechunits.cli import main
from speechunits.errors import SpeechUnitsError
from speechunits.data.featdir import FeatureDir, open_feature_source
from speechunits.data.items import ITEM_HEADER, read_items
from speechunits.eval.abx import AbxConfig, compute_abx
from speechunits.units.formats import read_units
from speechunits.units.kmeans import (
    ApplyOptions, FrameSample, KMeans, KMeansConfig, apply_kmeans, fit_frames, fit_kmeans,
)
from speechunits.units.kmeans.lloyd import PassStats, cluster_sums, kmeans_plus_plus

sklearn_cluster = pytest.importorskip("sklearn.cluster")


def mixture(n=4000, dim=6, components=20, seed=0):
    """Overlapping Gaussian blobs: k-means has many local optima, as on speech frames."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (components, dim))
    return (centres[rng.integers(components, size=n)] + rng.normal(size=(n, dim))).astype(np.float32)


def write_feats(path, arrays, frame_shift=0.01):
    store = FeatureDir(path)
    store.write_meta(frame_shift=frame_shift, feature_dim=next(iter(arrays.values())).shape[-1])
    for utt, x in arrays.items():
        store.save(utt, x)
    return store


def split_utts(x, sizes):
    out, s = {}, 0
    for i, n in enumerate(sizes):
        out[f"spk{i % 3}-u{i:02d}"] = x[s:s + n]
        s += n
    return out


def sklearn_inertia(x, k, seeds=(0, 1, 2)):
    return np.mean([sklearn_cluster.KMeans(k, n_init=1, random_state=s).fit(x.astype(np.float64)).inertia_
                    for s in seeds])


def test_inertia_matches_sklearn(tmp_path):
    """More clusters than blobs (as on speech frames): the local optima differ little, and
    the mean inertia over seeds is sklearn's to 1 %. Few clusters: the best of 5 seeds
    finds sklearn's best of 5 initialisations."""
    x = mixture()
    store = write_feats(tmp_path / "feats", split_utts(x, [500] * 8))
    ours = [fit_kmeans(store.path, KMeansConfig(k=32, seed=s)).model for s in (0, 1, 2)]
    for m in ours:  # the reported inertia is that of the final centroids on all frames
        assert m.info["frames"] == m.info["sample_frames"] == x.shape[0]
        assert m.info["inertia"] == pytest.approx(m.inertia(x), rel=1e-5)
    assert np.mean([m.info["inertia"] for m in ours]) == pytest.approx(sklearn_inertia(x, 32), rel=0.01)
    best = min(KMeans.fit(x, KMeansConfig(k=8, seed=s)).info["inertia"] for s in range(5))
    ref = sklearn_cluster.KMeans(8, n_init=5, random_state=0).fit(x.astype(np.float64)).inertia_
    assert best == pytest.approx(ref, rel=0.01)


def test_sampled_fit_with_full_passes(tmp_path):
    x = mixture(n=6000)
    store = write_feats(tmp_path / "feats", split_utts(x, [750] * 8))
    cfg = KMeansConfig(k=32, max_frames=1500, init_frames=1000, full_passes=3, batch_frames=700)
    m = fit_kmeans(store.path, cfg).model
    assert m.info["sample_frames"] == 1500 and m.info["frames"] == 6000
    assert [h["stage"] for h in m.info["history"]][-3:] == ["full"] * 3
    assert m.info["inertia"] == pytest.approx(m.inertia(x), rel=1e-5)
    assert sum(m.info["counts"]) == 6000
    assert m.info["inertia"] == pytest.approx(sklearn_inertia(x, 32), rel=0.02)


def test_predict_and_distances_brute_force(rng):
    x = rng.normal(size=(500, 5)).astype(np.float32) + 10.0  # far from the origin: cancellation
    c = rng.normal(size=(7, 5)).astype(np.float32) + 10.0
    model = KMeans(c)
    d = ((x[:, None, :].astype(np.float64) - c[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_allclose(model.distances(x), d, rtol=1e-4, atol=1e-3)
    assert np.array_equal(model.predict(x, batch_frames=64), d.argmin(1))
    assert model.inertia(x) == pytest.approx(d.min(1).sum(), rel=1e-5)


def test_pass_stats_brute_force(rng):
    x = rng.normal(size=(300, 3)).astype(np.float32)
    c = torch.as_tensor(x[:4].copy())
    stats = PassStats(c, batch_frames=50)
    stats.add(torch.as_tensor(x[:120]))
    stats.add(torch.as_tensor(x[120:]))
    d = ((x[:, None] - x[None, :4]) ** 2).sum(-1)
    labels = d.argmin(1)
    assert stats.counts.tolist() == np.bincount(labels, minlength=4).tolist()
    sums = np.stack([x[labels == j].astype(np.float64).sum(0) for j in range(4)])
    np.testing.assert_allclose(stats.sums.numpy(), sums, rtol=1e-6, atol=1e-5)
    assert stats.inertia == pytest.approx(d.min(1).sum(), rel=1e-5)
    new, reseeded = stats.update()
    assert reseeded == 0
    np.testing.assert_allclose(new.numpy(), sums / np.bincount(labels)[:, None], rtol=1e-5, atol=1e-6)


def test_cluster_sums_both_paths(rng):
    x = torch.as_tensor(rng.normal(size=(1000, 3)).astype(np.float32))
    labels = torch.as_tensor(rng.integers(0, 6, size=1000))
    labels[labels == 4] = 5  # an empty cluster
    counts = torch.bincount(labels, minlength=6)
    ref = np.stack([x.numpy()[labels.numpy() == j].astype(np.float64).sum(0) for j in range(6)])
    for segments in (False, True):  # index_add_ (CPU), sorted segment sums (GPU)
        np.testing.assert_allclose(cluster_sums(x, labels, counts, segments).numpy(), ref, rtol=1e-9, atol=1e-9)


def test_kmeans_plus_plus_covers_separated_blobs(rng):
    centres = np.eye(6, dtype=np.float32) * 100
    x = torch.as_tensor(np.repeat(centres, 50, axis=0) + rng.normal(size=(300, 6)).astype(np.float32))
    c = kmeans_plus_plus(x, 6, np.random.default_rng(0), batch_frames=64)
    rows = {tuple(r) for r in x.numpy()}
    assert all(tuple(r) in rows for r in c.numpy())  # chosen among the frames
    assert sorted(np.argmin(((c.numpy()[:, None] - centres[None]) ** 2).sum(-1), 1)) == list(range(6))


def test_same_seed_same_centroids(tmp_path):
    x = mixture(n=3000)
    store = write_feats(tmp_path / "feats", split_utts(x, [300] * 10))
    cfg = KMeansConfig(k=10, max_frames=1000, init_frames=500, full_passes=1, seed=3)
    a, b = fit_kmeans(store.path, cfg).model, fit_kmeans(store.path, cfg).model
    assert torch.equal(a.centroids, b.centroids) and a.info["history"] == b.info["history"]
    c = fit_kmeans(store.path, KMeansConfig(k=10, max_frames=1000, init_frames=500, full_passes=1, seed=4)).model
    assert not torch.equal(a.centroids, c.centroids)
    assert torch.equal(fit_frames(x, KMeansConfig(k=5, seed=1)).centroids,
                       KMeans.fit(x, KMeansConfig(k=5, seed=1)).centroids)


def test_frame_sample_bounded_uniform_order_free(rng):
    arrays = {f"u{i}": rng.normal(size=(int(rng.integers(20, 200)), 3)).astype(np.float32) for i in range(40)}
    total = sum(len(a) for a in arrays.values())
    s1, s2 = FrameSample(500, seed=1), FrameSample(500, seed=1)
    for utt in arrays:
        s1.add(utt, arrays[utt])
        assert s1._held < 1000
    for utt in reversed(list(arrays)):
        s2.add(utt, arrays[utt])
    f1, f2 = s1.frames(), s2.frames()
    assert f1.shape == (500, 3) and np.array_equal(f1, f2)  # independent of the utterance order
    rows = {tuple(r) for a in arrays.values() for r in a}
    assert all(tuple(r) in rows for r in f1) and len({tuple(r) for r in f1}) == 500
    small = FrameSample(10 * total, seed=0)
    for utt, a in arrays.items():
        small.add(utt, a)
    assert small.frames().shape == (total, 3)  # fewer frames than max_frames: all of them


def test_empty_cluster_reseeded(rng):
    x = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(20, 1, (200, 2))]).astype(np.float32)
    init = np.array([[0, 0], [20, 20], [1000, 1000]], dtype=np.float32)  # the third gets no frame
    m = KMeans.fit(x, KMeansConfig(k=3, seed=0), init=init)
    assert m.info["history"][0]["reseeded"] == 1 and m.info["reseeded"] >= 1
    assert m.info["empty_clusters"] == 0 and min(m.info["counts"]) > 0
    assert float(m.centroids.abs().max()) < 100  # moved onto the data
    tiny = KMeans.fit(x, KMeansConfig(k=3, min_cluster_size=150, iterations=3), init=init)
    assert tiny.info["history"][0]["reseeded"] >= 1


def test_model_file_weights_only(tmp_path, rng):
    x = rng.normal(size=(200, 4)).astype(np.float32)
    store = write_feats(tmp_path / "feats", {"a-1": x[:100], "a-2": x[100:]}, frame_shift=0.02)
    m = fit_kmeans(store.path, KMeansConfig(k=4)).model
    m.save(tmp_path / "km.pt")
    obj = torch.load(tmp_path / "km.pt", weights_only=True)
    assert obj["kind"] == "speechunits-kmeans" and obj["k"] == 4 and obj["dim"] == 4
    assert obj["frame_shift"] == 0.02 and obj["feature_meta"]["feature_dim"] == 4
    assert len(obj["info"]["inertia_history"]) == len(obj["info"]["history"]) >= 1
    back = KMeans.load(tmp_path / "km.pt")
    assert torch.equal(back.centroids, m.centroids) and back.info == m.info
    torch.save({"not": "a model"}, tmp_path / "other.pt")
    with pytest.raises(Exception, match="not a k-means model"):
        KMeans.load(tmp_path / "other.pt")


# ---- the commands -------------------------------------------------------------------------

PHONES = "abc"


@pytest.fixture
def phone_problem(tmp_path, rng):
    """4 utterances of 40 frames (2 speakers); item k covers frames 3k+1..3k+3, phone 'abc'[k % 3];
    frames of a phone sit around one centre, so k-means with K=3 finds the phones."""
    centres = rng.normal(0, 5, (3, 4))
    rows, arrays = [], {}
    for u, spk in (("s0-u0", "s0"), ("s0-u1", "s0"), ("s1-u2", "s1"), ("s1-u3", "s1")):
        for k in range(12):
            rows.append(f"{u} {0.0125 + 0.03 * k:.4f} {0.0425 + 0.03 * k:.4f} {PHONES[k % 3]} x y {spk}")
        phone = [max(i - 1, 0) // 3 % 3 for i in range(40)]
        arrays[u] = (centres[phone] + 0.3 * rng.normal(size=(40, 4))).astype(np.float32)
    item = tmp_path / "test.item"
    item.write_text("\n".join([ITEM_HEADER, *rows]) + "\n")
    store = write_feats(tmp_path / "feats", arrays)
    return item, store, arrays


def test_fit_apply_outputs_read_back_and_score(phone_problem, tmp_path, capsys):
    item, store, arrays = phone_problem
    model, out = tmp_path / "km.pt", tmp_path / "units"
    assert main(["kmeans", "fit", str(store.path), str(model), "--k", "3", "--seed", "0"]) == 0
    assert "inertia" in capsys.readouterr().out
    assert main(["kmeans", "apply", str(model), str(store.path), str(out), "--dense"]) == 0
    km = KMeans.load(model)
    from_txt, from_jsonl = read_units(out / "units.txt"), read_units(out)
    codes = open_feature_source(out / "codes")
    assert codes.frame_shift == pytest.approx(0.01) and sorted(codes.utts()) == sorted(arrays)
    for utt, x in arrays.items():
        frame_codes = codes.load(utt)
        assert frame_codes.dtype == np.int64 and frame_codes.shape == (40,)
        assert np.array_equal(frame_codes, km.predict(x))
        for seqs in (from_txt, from_jsonl):
            assert np.array_equal(seqs[utt].frame_codes(), frame_codes) and seqs[utt].shift == pytest.approx(0.01)
        assert open_feature_source(out / "dense").load(utt).shape == (40, 3)
    result = compute_abx(read_items(item), codes, None, AbxConfig(speaker="across", context="any"))
    assert result.percent == pytest.approx(0.0)  # the clusters are the phones
    assert main(["abx", str(item), str(out / "codes"), "--speaker", "across", "--context", "any"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "ABX error (across, any): 0.000 %"
    assert main(["unit-metrics", str(out), "--alignments", str(_ctm(tmp_path, arrays)), "--codebook-size", "3"]) == 0
    assert "PNMI" in capsys.readouterr().out


def _ctm(tmp_path, arrays):
    lines = []
    for utt in arrays:
        lines.append(f"{utt} 1 0.000 0.010 a")
        for k in range(13):
            start, dur = 0.01 + 0.03 * k, 0.03 if k < 12 else 0.0
            if dur:
                lines.append(f"{utt} 1 {start:.3f} {dur:.3f} {PHONES[k % 3]}")
        lines.append(f"{utt} 1 0.370 0.030 a")
    path = tmp_path / "ali.ctm"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_apply_resumes_and_refuses_other_settings(phone_problem, tmp_path, capsys):
    _, store, arrays = phone_problem
    km = fit_kmeans(store.path, KMeansConfig(k=3)).model
    out = tmp_path / "units"
    first = apply_kmeans(km, store.path, out)
    assert first.done == 4 and first.skipped == 0
    text = (out / "units.jsonl").read_text()
    (out / ".parts" / "s0-u1.json").unlink()  # as if interrupted before this utterance finished
    (out / "units.jsonl").unlink()
    again = apply_kmeans(km, store.path, out)
    assert again.done == 1 and again.skipped == 3 and (out / "units.jsonl").read_text() == text
    other = KMeans(km.centroids + 1.0)
    with pytest.raises(Exception, match="other settings"):
        apply_kmeans(other, store.path, out)
    part = apply_kmeans(km, store.path, tmp_path / "some", ApplyOptions(utts=["s1-u3", "nope"]))
    assert sorted(read_units(tmp_path / "some")) == ["s1-u3"] and "nope" in part.failures


def test_bad_utterances_named(phone_problem, tmp_path, capsys):
    _, store, arrays = phone_problem
    good = tmp_path / "km.pt"
    assert main(["kmeans", "fit", str(store.path), str(good), "--k", "3"]) == 0
    bad = dict(arrays)
    bad["s2-nan"] = arrays["s0-u0"].copy()
    bad["s2-nan"][5, 1] = np.nan
    bad["s2-dim"] = arrays["s0-u0"][:, :3].copy()
    bad["s2-int"] = np.arange(40, dtype=np.int64)
    bad["s2-empty"] = np.zeros((0, 4), dtype=np.float32)
    store2 = write_feats(tmp_path / "bad", bad)
    (store2.path / "s2-corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    capsys.readouterr()
    model = tmp_path / "bad.pt"
    assert main(["kmeans", "fit", str(store2.path), str(model), "--k", "3"]) == 1
    err = capsys.readouterr().err
    for utt in ("s2-nan", "s2-dim", "s2-int", "s2-empty", "s2-corrupt"):
        assert f"FAILED {utt}:" in err
    assert "non-finite" in err and "3-dimensional" in err and "integer unit ids" in err
    assert not model.exists()
    assert main(["kmeans", "fit", str(store2.path), str(model), "--k", "3", "--allow-failures"]) == 0
    assert KMeans.load(model).info["utterances"] == 4

    out = tmp_path / "units"
    assert main(["kmeans", "apply", str(good), str(store2.path), str(out)]) == 1
    err = capsys.readouterr().err
    assert all(f"FAILED {u}:" in err for u in ("s2-nan", "s2-dim", "s2-int", "s2-empty", "s2-corrupt"))
    assert sorted(read_units(out)) == sorted(arrays)  # the good ones are written
    assert main(["kmeans", "apply", str(good), str(store2.path), str(out), "--allow-failures"]) == 0
    assert main(["kmeans", "apply", str(tmp_path / "missing.pt"), str(store.path), str(tmp_path / "x")]) == 1
    assert "k-means model not found" in capsys.readouterr().err


def test_fit_utts_restriction_and_too_few_frames(phone_problem, tmp_path, capsys):
    _, store, arrays = phone_problem
    listing = tmp_path / "utt2spk"
    listing.write_text("s0-u0 s0\ns1-u2 s1\n")
    m = fit_kmeans(store.path, KMeansConfig(k=3), utts=["s0-u0", "s1-u2"]).model
    assert m.info["utterances"] == 2 and m.info["frames"] == 80
    assert main(["kmeans", "fit", str(store.path), str(tmp_path / "k.pt"), "--k", "3", "--utts", str(listing)]) == 0
    assert KMeans.load(tmp_path / "k.pt").info["frames"] == 80
    assert main(["kmeans", "fit", str(store.path), str(tmp_path / "k2.pt"), "--k", "500"]) == 1
    assert "160 frames for k=500" in capsys.readouterr().err
    json.dumps(m.info)  # the report is plain data


def _brute_force_segments(dist: np.ndarray, lam: float) -> float:
    """The least sum of distances + lam per run over every code sequence of (T, K) distances."""
    import itertools

    best = np.inf
    for seq in itertools.product(range(dist.shape[1]), repeat=dist.shape[0]):
        runs = 1 + sum(a != b for a, b in zip(seq[:-1], seq[1:]))
        best = min(best, dist[np.arange(len(seq)), seq].sum() + lam * runs)
    return best


@pytest.mark.parametrize("penalty", [0.0, 0.3, 1.0, 3.0, 100.0])
def test_duration_penalised_units_against_brute_force(rng, penalty):
    """predict(x, penalty) is piecewise constant and reaches the least cost found by trying
    every code sequence: distances + penalty * inertia-per-frame per unit; penalty 0 is the
    nearest centroid, a huge one a single unit with the best centroid for the whole utterance."""
    centres = rng.normal(0, 1, (3, 2))
    km = KMeans(centres, info={"inertia_per_frame": 0.7})
    for trial in range(3):
        x = centres[rng.integers(0, 3, 7)] + 0.8 * rng.normal(size=(7, 2))
        dist = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
        codes = km.predict(x, penalty=penalty)
        lam = penalty * 0.7
        runs = 1 + int((codes[1:] != codes[:-1]).sum())
        cost = dist[np.arange(7), codes].sum() + lam * runs
        assert cost == pytest.approx(_brute_force_segments(dist, lam), abs=1e-4)
        if penalty == 0.0:
            assert np.array_equal(codes, dist.argmin(1))
        if penalty == 100.0:
            assert np.all(codes == dist.sum(0).argmin())
    assert km.predict(np.zeros((0, 2)), penalty=1.0).shape == (0,)
    with pytest.raises(SpeechUnitsError, match="inertia per frame"):
        KMeans(centres).predict(x, penalty=1.0)
    with pytest.raises(SpeechUnitsError, match=">= 0"):
        km.predict(x, penalty=-1.0)


def test_apply_with_a_duration_penalty(phone_problem, tmp_path):
    """kmeans apply --dp-penalty: the codes are the model's penalised predictions, with fewer
    units than frame-wise k-means; the folder records the penalty and refuses another."""
    _, store, arrays = phone_problem
    for utt in arrays:  # one-frame flickers: the middle frame of every third phone moved near another centre
        arrays[utt][5::9] = arrays[utt][2::9][: len(arrays[utt][5::9])]
    store = write_feats(tmp_path / "flicker", arrays)
    model = tmp_path / "km.pt"
    assert main(["kmeans", "fit", str(store.path), str(model), "--k", "3", "--seed", "0"]) == 0
    km = KMeans.load(model)
    plain, penalised = tmp_path / "plain", tmp_path / "dp"
    assert main(["kmeans", "apply", str(model), str(store.path), str(plain)]) == 0
    assert main(["kmeans", "apply", str(model), str(store.path), str(penalised), "--dp-penalty", "100"]) == 0
    codes = open_feature_source(penalised / "codes")
    for utt, x in arrays.items():
        assert np.array_equal(codes.load(utt), km.predict(x, penalty=100.0))
    n_plain = sum(len(s.units) for s in read_units(plain).values())
    n_dp = sum(len(s.units) for s in read_units(penalised).values())
    assert n_dp < n_plain
    assert json.loads((penalised / "kmeans.json").read_text())["penalty"] == 100.0
    assert main(["kmeans", "apply", str(model), str(store.path), str(penalised), "--dp-penalty", "1"]) == 1


# ---- context: each frame stacked with its neighbours -------------------------------------

def _stack_brute(x, c):
    """Row t = x[t - c] .. x[t + c], indices clipped to the utterance: the definition, by loops."""
    t = len(x)
    return np.stack([np.concatenate([x[min(max(i + j, 0), t - 1)] for j in range(-c, c + 1)]) for i in range(t)])


@pytest.mark.parametrize("c", [0, 1, 3])
def test_stack_context_against_loops(rng, c):
    from speechunits.units.kmeans.frames import stack_context

    for t in (1, 2, 9):
        x = rng.normal(size=(t, 3)).astype(np.float32)
        assert np.array_equal(stack_context(x, c), _stack_brute(x, c))
    with pytest.raises(SpeechUnitsError, match="context"):
        stack_context(x, -1)


def test_fit_with_context_is_a_fit_on_stacked_frames(tmp_path, rng):
    """kmeans fit --context C equals a plain fit on features stacked per utterance beforehand (a
    second implementation), and the model stacks the frames it labels itself: apply, predict,
    distances and the CLI give the plain model's answers on the stacked frames."""
    x = mixture(1200, dim=4, components=8)
    arrays = split_utts(x, [300, 250, 350, 300])
    stacked = {u: _stack_brute(a, 2) for u, a in arrays.items()}
    store, ref_store = write_feats(tmp_path / "f", arrays), write_feats(tmp_path / "fs", stacked)
    cfg = dict(k=6, seed=1, max_frames=800, init_frames=400)  # a sample, then a streamed last pass
    ours = fit_kmeans(store.path, KMeansConfig(**cfg, context=2)).model
    ref = fit_kmeans(ref_store.path, KMeansConfig(**cfg)).model
    assert ours.context == 2 and ours.dim == 20 and ours.frame_dim == 4 and ref.context == 0
    assert torch.equal(ours.centroids, ref.centroids)
    assert ours.info["inertia"] == pytest.approx(ref.info["inertia"], rel=1e-6)
    for utt, a in arrays.items():
        assert np.array_equal(ours.predict(a), ref.predict(stacked[utt]))
        np.testing.assert_allclose(ours.distances(a), ref.distances(stacked[utt]), rtol=1e-6)
        assert ours.inertia(a) == pytest.approx(ref.inertia(stacked[utt]), rel=1e-6)
    empty = np.zeros((0, 4), np.float32)
    assert ours.predict(empty).shape == (0,) and ours.distances(empty).shape == (0, 6)
    grad = torch.from_numpy(arrays["spk0-u00"]).requires_grad_()
    assert np.array_equal(ours.predict(grad.to(torch.bfloat16).float()), ours.predict(grad.detach().to(torch.bfloat16).float()))
    with pytest.raises(SpeechUnitsError, match=r"\(T, 4\)"):
        ours.predict(stacked["spk0-u00"])  # already stacked frames are refused, not stacked twice
    # saved and loaded, through the CLI
    model, out = tmp_path / "km.pt", tmp_path / "units"
    assert main(["kmeans", "fit", str(store.path), str(model), "--k", "6", "--seed", "1", "--max-frames", "800",
                 "--init-frames", "400", "--context", "2"]) == 0
    loaded = KMeans.load(model)
    assert loaded.context == 2 and torch.equal(loaded.centroids, ref.centroids)
    assert main(["kmeans", "apply", str(model), str(store.path), str(out)]) == 0
    codes = open_feature_source(out / "codes")
    for utt in arrays:
        assert np.array_equal(codes.load(utt), ref.predict(stacked[utt]))
    assert json.loads((out / "kmeans.json").read_text())["context"] == 2
    # in memory: the frames are one sequence
    mem = fit_frames(arrays["spk0-u00"], KMeansConfig(k=4, seed=0, context=1))
    mem_ref = fit_frames(_stack_brute(arrays["spk0-u00"], 1), KMeansConfig(k=4, seed=0))
    assert mem.context == 1 and torch.equal(mem.centroids, mem_ref.centroids)


def test_context_models_are_refused_where_single_frames_are_needed(tmp_path, rng):
    from speechunits.units.kmeans.regression import CentroidRegression, fit_regression

    x = mixture(600, dim=4, components=6)
    store = write_feats(tmp_path / "f", split_utts(x, [300, 300]))
    km = fit_kmeans(store.path, KMeansConfig(k=5, context=1)).model
    with pytest.raises(SpeechUnitsError, match="centroid regression maps single frames"):
        fit_regression(store.path, km)
    with pytest.raises(SpeechUnitsError, match="centroid regression maps single frames"):
        CentroidRegression.fit(x, km)
    with pytest.raises(SpeechUnitsError, match="context"):
        KMeansConfig(context=-1)
    with pytest.raises(SpeechUnitsError, match="context"):
        KMeans(np.zeros((3, 10), np.float32), context=1)  # 10 dims are not 3 frames' worth
