"""Centroid regression (`speechunits kmeans regress`, `extract --readout`) against a
brute-force least-squares solution, its monotone objective, its file and its CLI path."""

import json

import numpy as np
import pytest
from units_fixtures import readout_setup

from speechunits.cli import main
from speechunits.data.featdir import open_feature_source
from speechunits.errors import SpeechUnitsError
from speechunits.units.formats import read_units
from speechunits.units.kmeans import KMeans, KMeansConfig
from speechunits.units.kmeans.regression import CentroidRegression, RegressionConfig


def _data(seed=0, n=600, d=5, k=4):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (k, d))
    x = centres[rng.integers(0, k, n)] + rng.normal(0, 1, (n, d)) * rng.uniform(0.3, 2, d)
    return x.astype(np.float32)


def _brute_force(x, centroids, ridge, iterations):
    """The same alternation, each fit as one stacked least-squares problem
    [X 1; sqrt(lam) [I 0]] Wb = [C; sqrt(lam) I] solved by numpy's lstsq."""
    x = x.astype(np.float64)
    c = centroids.astype(np.float64)
    n, d = x.shape
    lam = ridge * float((x * x).sum()) / d
    xa = np.hstack([x, np.ones((n, 1))])
    wb = np.vstack([np.eye(d), np.zeros((1, d))])
    for _ in range(iterations):
        y = xa @ wb
        labels = ((y[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        a = np.vstack([xa, np.sqrt(lam) * np.hstack([np.eye(d), np.zeros((d, 1))])])
        b = np.vstack([c[labels], np.sqrt(lam) * np.eye(d)])
        wb = np.linalg.lstsq(a, b, rcond=None)[0]
    return wb[:d].T, wb[d]


@pytest.mark.parametrize("ridge,iterations", [(0.3, 1), (0.3, 4), (2.0, 3), (0.01, 2)])
def test_fit_equals_brute_force_least_squares(ridge, iterations):
    x = _data()
    km = KMeans.fit(x, KMeansConfig(k=4, seed=0))
    reg = CentroidRegression.fit(x, km, RegressionConfig(ridge=ridge, iterations=iterations, batch_frames=97))
    w, b = _brute_force(x, km.centroids.numpy(), ridge, iterations)
    assert np.allclose(reg.weight.numpy(), w, atol=1e-4) and np.allclose(reg.bias.numpy(), b, atol=1e-4)
    assert np.allclose(reg(x), x @ w.T + b, atol=1e-3)


def test_objective_falls_and_the_map_pulls_toward_the_centroids():
    x = _data(seed=1, d=6)
    km = KMeans.fit(x, KMeansConfig(k=4, seed=0))
    reg = CentroidRegression.fit(x, km, RegressionConfig(ridge=0.3, iterations=6))
    objective = [h["objective_per_frame"] for h in reg.info["history"]]
    assert all(b <= a + 1e-9 for a, b in zip(objective, objective[1:]))
    assert reg.info["history"][0]["reassigned"] is None and 0 < reg.info["history"][1]["reassigned"] < 1
    assert objective[-1] < objective[0]  # it moves, not only stays
    c = km.centroids.numpy()
    y = reg(x)
    before = ((x - c[km.predict(x)]) ** 2).sum(1).mean()
    after = ((y - c[km.predict(y)]) ** 2).sum(1).mean()
    assert after < before
    # a huge ridge keeps the identity
    ident = CentroidRegression.fit(x, km, RegressionConfig(ridge=1e9, iterations=2))
    assert np.allclose(ident.weight.numpy(), np.eye(6), atol=1e-5) and np.allclose(ident.bias.numpy(), 0, atol=1e-4)


def test_file_round_trip_and_bad_input(tmp_path):
    x = _data()
    km = KMeans.fit(x, KMeansConfig(k=4, seed=0))
    reg = CentroidRegression.fit(x, km)
    reg.save(tmp_path / "r.pt")
    back = CentroidRegression.load(tmp_path / "r.pt")
    assert np.array_equal(back.weight.numpy(), reg.weight.numpy()) and back.kmeans_id == km.model_id()
    assert back.model_id() == reg.model_id() and back.info["frames"] == len(x)
    km.save(tmp_path / "km.pt")
    with pytest.raises(SpeechUnitsError, match="not a centroid regression"):
        CentroidRegression.load(tmp_path / "km.pt")
    with pytest.raises(SpeechUnitsError, match="no such"):
        CentroidRegression.load(tmp_path / "missing.pt")
    with pytest.raises(SpeechUnitsError, match=r"\(T, 5\)"):
        reg(np.zeros((3, 4), np.float32))
    with pytest.raises(SpeechUnitsError, match="frames for a 5 x 5"):
        CentroidRegression.fit(x[:5], km)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(SpeechUnitsError, match="NaN"):
        CentroidRegression.fit(bad, km)
    with pytest.raises(SpeechUnitsError, match="ridge"):
        RegressionConfig(ridge=0)
    import torch

    torch.save({"kind": "centroid-regression", "version": 1, "bias": torch.zeros(5)}, tmp_path / "half.pt")
    with pytest.raises(SpeechUnitsError, match="malformed"):
        CentroidRegression.load(tmp_path / "half.pt")
    # the torch path gives what the numpy path gives
    assert np.allclose(reg(torch.from_numpy(x[:7])).numpy(), reg(x[:7]), atol=1e-5)


UTTS = {"spk_a-1": ("spk_a", 0.8, 1), "spk_a-2": ("spk_a", 1.3, 2), "spk_b-1": ("spk_b", 0.6, 3),
        "spk_b-2": ("spk_b", 1.1, 4)}


def test_regress_then_extract_readout_through_the_cli(tmp_path, capsys):
    """kmeans regress on a model's dense/ -> extract --readout: dense/ is the map of the plain
    tap, and --kmeans units are the nearest centroids of the mapped frames."""
    setup = readout_setup(tmp_path, UTTS, k=5, iterations=3)
    ckpt, data, plain, km_path, reg_path = setup.ckpt, setup.data, setup.plain, setup.kmeans, setup.readout
    assert "fit 3: objective" in capsys.readouterr().out
    reg, km = CentroidRegression.load(reg_path), KMeans.load(km_path)
    out = tmp_path / "mapped"
    assert main(["extract", str(ckpt), str(data), str(out), "--tap", "projection", "--readout", str(reg_path),
                 "--kmeans", str(km_path)]) == 0
    src, mapped = open_feature_source(plain / "dense"), open_feature_source(out / "dense")
    units = read_units(out / "units.jsonl")
    for utt in UTTS:
        want = reg(np.asarray(src.load(utt)))
        assert np.allclose(np.asarray(mapped.load(utt)), want, atol=1e-5)
        codes = km.predict(want)
        assert np.array_equal(np.repeat(units[utt].units, units[utt].durations), codes)
    assert json.loads((out / "extract.json").read_text())["readout"]["id"] == reg.model_id()
    assert json.loads((out / "dense" / "meta.json").read_text())["readout"]["id"] == reg.model_id()
    # the plain folder resumes without --readout and refuses one; the mapped folder refuses none
    assert main(["extract", str(ckpt), str(data), str(plain), "--tap", "projection"]) == 0
    capsys.readouterr()
    assert main(["extract", str(ckpt), str(data), str(plain), "--tap", "projection", "--readout", str(reg_path)]) != 0
    assert main(["extract", str(ckpt), str(data), str(out), "--tap", "projection", "--kmeans", str(km_path)]) != 0
    # a rerun with another read-out into the same folder is refused, not mixed
    other = tmp_path / "r2.pt"
    assert main(["kmeans", "regress", str(plain / "dense"), str(km_path), str(other), "--ridge", "5"]) == 0
    capsys.readouterr()
    assert main(["extract", str(ckpt), str(data), str(out), "--tap", "projection", "--readout", str(other),
                 "--kmeans", str(km_path)]) != 0
    assert "readout" in capsys.readouterr().err
    # k-means refitted on the mapped training frames (kmeans fit --readout): extract --readout gives
    # its units of the mapped frames, and refuses it without the read-out
    km2_path = tmp_path / "km2.pt"
    assert main(["kmeans", "fit", str(plain / "dense"), str(km2_path), "--k", "5", "--seed", "1", "--readout",
                 str(reg_path)]) == 0
    km2, refit = KMeans.load(km2_path), tmp_path / "refit"
    assert main(["extract", str(ckpt), str(data), str(refit), "--tap", "projection", "--readout", str(reg_path),
                 "--kmeans", str(km2_path)]) == 0
    units = read_units(refit / "units.jsonl")
    for utt in UTTS:
        want = km2.predict(reg(np.asarray(src.load(utt))))
        assert np.array_equal(np.repeat(units[utt].units, units[utt].durations), want)
    capsys.readouterr()
    assert main(["extract", str(ckpt), str(data), str(tmp_path / "y"), "--tap", "projection", "--kmeans",
                 str(km2_path)]) != 0
    assert "give that read-out too" in capsys.readouterr().err
    km_other = tmp_path / "km_other.pt"
    assert main(["kmeans", "fit", str(plain / "dense"), str(km_other), "--k", "3"]) == 0
    capsys.readouterr()
    assert main(["extract", str(ckpt), str(data), str(tmp_path / "z"), "--tap", "projection", "--readout",
                 str(reg_path), "--kmeans", str(km_other)]) != 0
    assert "was fitted for the k-means model" in capsys.readouterr().err
    # a read-out of another width is refused before any audio is read
    wrong = CentroidRegression(np.eye(3), np.zeros(3))
    wrong.save(tmp_path / "w.pt")
    assert main(["extract", str(ckpt), str(data), str(tmp_path / "x"), "--tap", "projection", "--readout",
                 str(tmp_path / "w.pt")]) != 0
    assert "read-out maps 3-dim frames" in capsys.readouterr().err


def test_regress_names_bad_utterances_and_writes_only_when_allowed(tmp_path, capsys):
    x = _data(n=400)
    feats = tmp_path / "feats"
    feats.mkdir()
    for i in range(4):
        np.save(feats / f"u{i}.npy", x[i * 100 : (i + 1) * 100])
    (feats / "frame_shift").write_text("0.01\n")
    km = KMeans.fit(x, KMeansConfig(k=4, seed=0))
    km.save(tmp_path / "km.pt")
    np.save(feats / "u2.npy", np.full((50, 5), np.nan, np.float32))
    np.save(feats / "u3.npy", np.zeros((50, 3), np.float32))
    out = tmp_path / "r.pt"
    assert main(["kmeans", "regress", str(feats), str(tmp_path / "km.pt"), str(out)]) == 1
    err = capsys.readouterr().err
    assert "FAILED u2" in err and "FAILED u3" in err and "not written" in err and not out.exists()
    assert main(["kmeans", "regress", str(feats), str(tmp_path / "km.pt"), str(out), "--allow-failures"]) == 0
    assert CentroidRegression.load(out).info["utterances"] == 2
    # nothing usable: the error names the reasons
    for i in (0, 1):
        np.save(feats / f"u{i}.npy", np.zeros((50, 3), np.float32))
    assert main(["kmeans", "regress", str(feats), str(tmp_path / "km.pt"), str(tmp_path / "r3.pt")]) != 0
    assert "e.g. u0:" in capsys.readouterr().err


def _feature_dir(path, arrays):
    path.mkdir()
    for utt, a in arrays.items():
        np.save(path / f"{utt}.npy", a)
    (path / "frame_shift").write_text("0.01\n")
    return path


def test_kmeans_fit_and_apply_through_a_readout(tmp_path, capsys):
    """kmeans fit / apply --readout equal the same commands on the mapped frames written out,
    record the map, and refuse a k-means model and frames that do not belong together."""
    x = _data(n=800)
    arrays = {f"u{i}": x[i * 200 : (i + 1) * 200] for i in range(4)}
    feats = _feature_dir(tmp_path / "feats", arrays)
    km_plain, reg_path = tmp_path / "km.pt", tmp_path / "r.pt"
    assert main(["kmeans", "fit", str(feats), str(km_plain), "--k", "4"]) == 0
    assert main(["kmeans", "regress", str(feats), str(km_plain), str(reg_path)]) == 0
    reg = CentroidRegression.load(reg_path)
    # reference: the mapped frames written out, fitted and applied without a read-out
    mapped = _feature_dir(tmp_path / "mapped", {u: reg(a) for u, a in arrays.items()})
    assert main(["kmeans", "fit", str(mapped), str(tmp_path / "ref.pt"), "--k", "4"]) == 0
    assert main(["kmeans", "fit", str(feats), str(tmp_path / "km2.pt"), "--k", "4", "--readout", str(reg_path)]) == 0
    ref, km2 = KMeans.load(tmp_path / "ref.pt"), KMeans.load(tmp_path / "km2.pt")
    assert np.allclose(km2.centroids.numpy(), ref.centroids.numpy(), atol=1e-4)
    assert km2.feature_meta["readout"]["id"] == reg.model_id()
    out = tmp_path / "units"
    assert main(["kmeans", "apply", str(tmp_path / "km2.pt"), str(feats), str(out), "--readout", str(reg_path)]) == 0
    codes = open_feature_source(out / "codes")
    for utt, a in arrays.items():
        assert np.array_equal(np.asarray(codes.load(utt)), ref.predict(reg(a)))
    assert json.loads((out / "kmeans.json").read_text())["readout"]["id"] == reg.model_id()
    assert json.loads((out / "codes" / "meta.json").read_text())["readout"]["id"] == reg.model_id()
    # the plain model with its own read-out is a valid pair
    assert main(["kmeans", "apply", str(km_plain), str(feats), str(tmp_path / "u2"), "--readout", str(reg_path)]) == 0
    capsys.readouterr()
    refusals = [
        # a model fitted on mapped frames, given unmapped ones
        (["kmeans", "apply", str(tmp_path / "km2.pt"), str(feats), str(tmp_path / "u3")], "give that read-out too"),
        # a read-out with a k-means model it was not fitted for
        (["kmeans", "apply", str(tmp_path / "ref.pt"), str(feats), str(tmp_path / "u4"), "--readout", str(reg_path)],
         "was fitted for the k-means model"),
    ]
    for argv, message in refusals:
        assert main(argv) != 0
        assert message in capsys.readouterr().err
    assert not (tmp_path / "u3" / "units.txt").exists() and not (tmp_path / "u4" / "units.txt").exists()
    # frames already mapped (their meta.json says so) are not mapped twice
    (mapped / "meta.json").write_text(json.dumps({"frame_shift": 0.01, "readout": reg.describe()}))
    assert main(["kmeans", "apply", str(tmp_path / "km2.pt"), str(mapped), str(tmp_path / "u5")]) == 0
    assert main(["kmeans", "apply", str(tmp_path / "km2.pt"), str(mapped), str(tmp_path / "u6"), "--readout",
                 str(reg_path)]) != 0
    assert "already mapped" in capsys.readouterr().err
    # a read-out of another width is refused, naming the utterances (not fitted on raw frames)
    CentroidRegression(np.eye(3), np.zeros(3)).save(tmp_path / "r3.pt")
    assert main(["kmeans", "fit", str(feats), str(tmp_path / "km4.pt"), "--k", "4", "--readout",
                 str(tmp_path / "r3.pt")]) != 0
    assert "5-dim frames, but the read-out maps 3-dim" in capsys.readouterr().err
    assert not (tmp_path / "km4.pt").exists()
    # a bad utterance read through the map is named, as without one
    np.save(feats / "u1.npy", np.full((50, 5), np.nan, np.float32))
    assert main(["kmeans", "fit", str(feats), str(tmp_path / "km3.pt"), "--k", "4", "--readout", str(reg_path)]) == 1
    assert "FAILED u1" in capsys.readouterr().err
