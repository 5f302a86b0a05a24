"""benchmarks/quality.py end to end on a toy corpus: the k-means-on-MFCC baseline is
fitted and applied through `speechunits kmeans`, every row is scored, the ratios are
taken against the right baseline, and a rerun reuses the cache."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speechunits.data.featdir import FeatureDir
from speechunits.data.items import ITEM_HEADER
from speechunits.units.kmeans import KMeansConfig, apply_kmeans, fit_kmeans

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "quality.py"
pytestmark = pytest.mark.slow  # runs the script and `speechunits kmeans` as processes

UTTS = (("s0-u0", "s0"), ("s0-u1", "s0"), ("s1-u2", "s1"), ("s1-u3", "s1"), ("s2-u4", "s2"))


def make_corpus(root: Path, rng) -> tuple[Path, Path]:
    """A data dir (utt2spk, phone/triphone items, alignments) and an MFCC-like feature dir:
    item k of an utterance covers frames 3k+1..3k+3, phone 'abc'[k % 3]."""
    data, feats = root / "data", FeatureDir(root / "mfcc")
    data.mkdir()
    centres = rng.normal(0, 3, (3, 6))
    rows, ctm = [], []
    for utt, spk in UTTS:
        phone = [max(i - 1, 0) // 3 % 3 for i in range(40)]
        feats.save(utt, (centres[phone] + rng.normal(size=(40, 6))).astype(np.float32))
        ctm.append(f"{utt} 1 0.000 0.010 a")
        for k in range(12):
            rows.append(f"{utt} {0.0125 + 0.03 * k:.4f} {0.0425 + 0.03 * k:.4f} {'abc'[k % 3]} x y {spk}")
            ctm.append(f"{utt} 1 {0.01 + 0.03 * k:.3f} 0.030 {'abc'[k % 3]}")
        ctm.append(f"{utt} 1 0.370 0.030 a")
    feats.write_meta(frame_shift=0.01, feature_dim=6)
    for name in ("phone.item", "triphone.item"):
        (data / name).write_text("\n".join([ITEM_HEADER, *rows]) + "\n")
    (data / "alignments.ctm").write_text("\n".join(ctm) + "\n")
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in UTTS))
    return data, feats.path


def run(*args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env)


def test_quality_table_end_to_end(tmp_path, rng):
    data, mfcc = make_corpus(tmp_path, rng)
    # a "system": noisier features, and k-means units on them (kmeans.json gives K)
    noisy = FeatureDir(tmp_path / "sys_dense")
    for utt, _ in UTTS:
        noisy.save(utt, FeatureDir(mfcc).load(utt) + rng.normal(size=(40, 6)).astype(np.float32))
    noisy.write_meta(frame_shift=0.01)
    apply_kmeans(fit_kmeans(noisy.path, KMeansConfig(k=4)).model, noisy.path, tmp_path / "sys_units")
    work = tmp_path / "work"
    args = ["--data", data, "--mfcc-dev", mfcc, "--train-data", data, "--workdir", work,
            f"toy:{noisy.path}:{tmp_path / 'sys_units'}"]
    first = run(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads((work / "quality.json").read_text())
    rows = {r["key"]: r for r in report["rows"]}
    assert list(rows) == ["mfcc", "kmeans_mfcc_k4", "toy.dense", "toy.units"]
    assert rows["toy.units"]["baseline"] == "kmeans_mfcc_k4" and rows["toy.dense"]["baseline"] == "mfcc"
    for r in rows.values():
        assert set(r["abx"]) == {"phone.within", "phone.across", "triphone.within", "triphone.across"}
        assert all(0 <= v <= 100 for v in r["abx"].values())
    for key in ("kmeans_mfcc_k4", "toy.units"):
        assert 0 < rows[key]["metrics"]["pnmi"] <= 1 and rows[key]["metrics"]["bitrate"] > 0
    assert (work / "kmeans" / "mfcc_k4_dev" / "codes").is_dir()  # made by `speechunits kmeans apply`
    md = (work / "quality.md").read_text()
    assert md.startswith("| system | representation |") and "k-means on MFCC, K=4" in md and "x) |" in md
    abx_files = sorted((work / "abx").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in abx_files]
    second = run(*args)  # everything cached
    assert second.returncode == 0, second.stderr[-3000:]
    assert [p.stat().st_mtime_ns for p in abx_files] == stamps
    assert (work / "quality.md").read_text() == md
