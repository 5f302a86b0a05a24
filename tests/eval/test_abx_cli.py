"""`speechunits abx`: output line, JSON, frame shift resolution, bad input."""

import json

import numpy as np
import pytest
import torch

from speechunits.cli import main
from speechunits.data.featdir import FeatureDir
from speechunits.data.items import ITEM_HEADER, read_items
from speechunits.eval.abx import AbxConfig, compute_abx


@pytest.fixture
def problem(tmp_path, rng):
    rows = []
    for u, spk in (("u0", "s0"), ("u1", "s0"), ("u2", "s1"), ("u3", "s1")):
        for k in range(12):
            rows.append(f"{u} {0.0125 + 0.03 * k:.4f} {0.0425 + 0.03 * k:.4f} {'abc'[k % 3]} x y {spk}")
    item = tmp_path / "test.item"
    item.write_text("\n".join([ITEM_HEADER, *rows]) + "\n")
    store = FeatureDir(tmp_path / "feats")
    feats = {u: rng.normal(size=(40, 4)).astype(np.float32) for u in ("u0", "u1", "u2", "u3")}
    store.path.mkdir(parents=True)
    for u, x in feats.items():
        if u == "u1":  # .npy and .pt side by side
            torch.save(torch.from_numpy(x), store.path / "u1.pt")
        else:
            store.save(u, x)
    return item, store, feats


def test_cli_prints_score_and_writes_json(problem, tmp_path, capsys):
    item, store, feats = problem
    store.write_meta(frame_shift=0.01)
    out = tmp_path / "abx.json"
    assert main(["abx", str(item), str(store.path), "--speaker", "across", "--context", "any", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expected = compute_abx(read_items(item), feats, 0.01, AbxConfig(speaker="across", context="any"))
    assert lines[-1] == f"ABX error (across, any): {expected.percent:.3f} %"
    summary = json.loads(out.read_text())
    assert summary["score"] == pytest.approx(expected.percent)
    assert summary["options"]["speaker"] == "across" and summary["options"]["max_size_group"] == 10
    assert summary["frame_shift"] == 0.01
    assert set(summary["by_phone_pair"]) == {"a b", "a c", "b a", "b c", "c a", "c b"}
    assert set(summary["by_speaker"]) == {"s0", "s1"}
    assert summary["n_items_skipped"] == 0


def test_cli_frame_shift_flag_and_missing(problem, capsys):
    item, store, feats = problem
    assert main(["abx", str(item), str(store.path)]) == 1
    assert "pass --frame-shift" in capsys.readouterr().err
    assert main(["abx", str(item), str(store.path), "--frame-shift", "0.01", "--libri-light-slicing"]) == 0
    expected = compute_abx(read_items(item), feats, 0.01, AbxConfig(libri_light_slicing=True))
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"ABX error (within, within): {expected.percent:.3f} %"


def test_cli_bad_items(problem, capsys):
    item, store, feats = problem
    store.write_meta(frame_shift=0.01)
    with open(item, "a") as f:
        f.write("u9 0.0125 0.0425 a x y s0\n")  # no features for u9
    assert main(["abx", str(item), str(store.path)]) == 1
    err = capsys.readouterr().err
    assert "test.item:50" in err and "u9" in err
    assert main(["abx", str(item), str(store.path), "--skip-bad-items"]) == 0
    assert "48 scored, 1 skipped" in capsys.readouterr().out


def test_cli_reads_a_kaldi_scp(problem, tmp_path, capsys):
    pytest.importorskip("kaldiio")
    from speechunits.data.featdir import write_kaldi_ark
    from speechunits.fileio import write_text

    item, store, feats = problem
    ark = tmp_path / "kaldi" / "feats.ark"
    ark.parent.mkdir()
    write_kaldi_ark(ark, ark.with_suffix(".scp"), sorted(feats.items()))
    write_text(ark.parent / "frame_shift", "0.01\n")
    assert main(["abx", str(item), str(ark.with_suffix(".scp")), "--context", "any"]) == 0
    expected = compute_abx(read_items(item), feats, 0.01, AbxConfig(context="any"))
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"ABX error (within, any): {expected.percent:.3f} %"
