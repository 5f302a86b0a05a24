"""egs/speechocean762: every stage on a tiny subset of the shared speechocean762 corpus.

The subset (8 speakers, two of each gender x age group, 3 utterances each) is
written in the corpus's flat layout in tmp_path, with the audio linked, so the
recipe's forced alignment runs on real speech; training is a few steps of a tiny
piecewise-constant VQ model. The corpus comes through the `shared` fixture (skipped when
it is not there, failed under CI=true).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from recipe_fixtures import TINY_TRAIN, check_ok, run_recipe

from speechunits.data.datadir import DataDir
from speechunits.data.featdir import open_feature_source
from speechunits.frontends.deltas import balanced_deltas
from speechunits.units.formats import read_units
from speechunits.units.kmeans import KMeans
from speechunits.units.kmeans.regression import CentroidRegression

pytest.importorskip("pocketsphinx")
pytestmark = pytest.mark.slow


def table(path: Path) -> dict[str, str]:
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())


def make_subset(corpus: Path, out: Path, per_group: int = 2, utts_per_speaker: int = 3) -> dict[str, list[str]]:
    """A flat-layout subset of the speechocean762 corpus `corpus`; returns speaker -> utterances."""
    gender, age = table(corpus / "spk2gender"), table(corpus / "spk2age")
    spk2utt = {s: u.split() for s, u in table(corpus / "spk2utt").items()}
    chosen: dict[str, list[str]] = {}
    for g in ("f", "m"):
        for child in (True, False):
            group = [s for s in sorted(spk2utt) if gender[s] == g and (int(age[s]) < 15) == child]
            for s in group[:per_group]:
                chosen[s] = sorted(spk2utt[s])[:utts_per_speaker]
    utts = {u for us in chosen.values() for u in us}
    out.mkdir(parents=True)
    os.symlink(corpus / "audio", out / "audio")
    for name in ("wav.scp", "text", "utt2spk"):
        rows = table(corpus / name)
        (out / name).write_text("".join(f"{u} {rows[u]}\n" for u in sorted(utts)))
    for name in ("spk2gender", "spk2age"):
        rows = table(corpus / name)
        (out / name).write_text("".join(f"{s} {rows[s]}\n" for s in sorted(chosen)))
    (out / "spk2utt").write_text("".join(f"{s} {' '.join(chosen[s])}\n" for s in sorted(chosen)))
    lines = (corpus / "text-phone").read_text().splitlines()
    (out / "text-phone").write_text("".join(f"{line}\n" for line in lines if line.split(".", 1)[0] in utts))
    (out / "lexicon.txt").write_text((corpus / "lexicon.txt").read_text())
    return chosen


@pytest.fixture(scope="module")
def so_run(shared, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("so762")
    chosen = make_subset(shared.speechocean762(), tmp / "corpus")
    args = ["--corpus", str(tmp / "corpus"), "--data", str(tmp / "data"), "--feats", str(tmp / "feats"),
            "--exp", str(tmp / "exp"), "--nj", "1", "--dev-speakers", "4", "--models", "pcvq",
            "--train-overrides", TINY_TRAIN, "--probe-opts", "--epochs 1 --heads linear --max-frames 2000"]  # fmt: skip
    log = check_ok(run_recipe("speechocean762", "--stage", "0", "--stop-stage", "6", *args))
    return tmp, chosen, args, log


def test_every_stage_wrote_its_outputs(so_run):
    tmp, chosen, _, _ = so_run
    dev = DataDir.read(tmp / "data" / "data" / "dev")
    train = DataDir.read(tmp / "data" / "data" / "train")
    assert len(dev.speakers) == 4 and len(train.speakers) == 4 and not set(dev.speakers) & set(train.speakers)
    assert len(dev.utt2spk) + len(train.utt2spk) == sum(len(u) for u in chosen.values())
    for split in ("train", "dev"):
        for kind in ("fbank", "mfcc_dd"):
            assert len(list((tmp / "feats" / split / kind).glob("*.npy"))) == len(DataDir.read(tmp / "data" / "data" / split).utt2spk)
    exp = tmp / "exp"
    config = (exp / "pcvq" / "config.yaml").read_text()
    assert "bottleneck: pcvq" in config and "segment_rate: 0.25" in config and "max_steps: 3" in config
    assert sorted(p.stem for p in (exp / "pcvq" / "units" / "dev" / "codes").glob("*.npy")) == dev.utts
    assert json.loads((exp / "pcvq" / "units" / "dev" / "extract.json").read_text())["tap"] == "projection"
    for system, rep in (("mfcc", "mfcc"), ("pcvq", "dense"), ("pcvq", "codes"), ("mfcc-nolifter", "dense"),
                        ("kmeans-mfcc-nolifter", "codes")):
        for level in ("triphone", "phone"):
            for speaker in ("within", "across"):
                result = json.loads((exp / system / "abx" / f"{rep}.{level}.{speaker}.json").read_text())
                assert result["speaker"] == speaker and result["item_file"].endswith(f"dev/{level}.item")
    assert {r["target"] for r in json.loads((exp / "pcvq" / "probes" / "probes.json").read_text())["results"]} == {
        "phone", "speaker", "gender", "fbank"}
    assert json.loads((exp / "pcvq" / "unit_metrics.json").read_text())["n_utterances"] == len(dev.utts)
    results = (exp / "RESULTS.md").read_text()
    assert "| pcvq codes |" in results and "### Probes: pcvq" in results and "## Unit metrics" in results
    assert (exp / "pcvq" / "report").is_dir()
    # --nolifter-baseline true (the default): the lifter-free MFCC and k-means on it beside the baselines
    assert "| mfcc-nolifter dense |" in results and "| kmeans-mfcc-nolifter codes |" in results
    assert "| mfcc-nolifter dense / MFCC |" in results
    assert json.loads((exp / "kmeans-mfcc-nolifter" / "unit_metrics.json").read_text())["n_utterances"] == len(dev.utts)


def test_the_lifter_free_baseline_is_kaldis_mfcc_without_the_lifter(so_run):
    """mfcc_nolifter_dd = mfcc_dd with each cepstrum (and its deltas) divided by Kaldi's lifter
    weight 1 + (L / 2) sin(pi i / L), L = 22; C0 (the log energy) unchanged: speaker CMVN
    subtracts means only, so the scaling passes through it."""
    tmp = so_run[0]
    dev = DataDir.read(tmp / "data" / "data" / "dev")
    liftered = open_feature_source(tmp / "feats" / "dev" / "mfcc_dd")
    flat = open_feature_source(tmp / "feats" / "dev" / "mfcc_nolifter_dd")
    weights = 1.0 + 11.0 * np.sin(np.pi * np.arange(13) / 22.0)
    weights[0] = 1.0
    for utt in dev.utts[:3]:
        a, b = np.asarray(liftered.load(utt)), np.asarray(flat.load(utt))
        assert a.shape == b.shape and a.shape[1] == 39
        np.testing.assert_allclose(a, b * np.tile(weights, 3), rtol=1e-3, atol=1e-3)


TINY_MASKED = " ".join([
    "train.max_steps=3", "train.log_every=1", "train.eval_every=0", "train.checkpoint_every=0",
    "optim.warmup_steps=1", "data.batch_size=4", "data.crop_seconds=1.0", "data.dev_fraction=0.2",
    "model.encoder.channels=16", "model.bottleneck_cfg.dim=8", "model.conditioning.channels=8",
    "model.decoder_cfg.channels=8",
])  # fmt: skip


def test_masked_model_targets_units_and_quality_table(so_run):
    """The masked-prediction models: k-means targets on the training MFCCs, training on them,
    a second iteration on k-means labels of the first model's projection, units from
    k-means on their projection tap (extract --kmeans), the k-means-on-MFCC baseline at
    the same K, and the quality table in the summary."""
    tmp, _, args, _ = so_run
    args = [a for a in args] + ["--target-k", "8", "--unit-k", "6", "--nolifter-baseline", "false"]
    args[args.index("--models") + 1] = "masked masked-it2"
    args[args.index("--train-overrides") + 1] = TINY_MASKED
    args[args.index("--exp") + 1] = str(tmp / "exp_masked")
    check_ok(run_recipe("speechocean762", "--stage", "2", "--stop-stage", "6", *args))
    exp = tmp / "exp_masked"
    dev = DataDir.read(tmp / "data" / "data" / "dev")
    config = (exp / "masked" / "config.yaml").read_text()
    assert "decoder: cluster" in config and "num_classes: 8" in config  # as many classes as target clusters
    assert (exp / "targets" / "train" / "codes").is_dir() and "targets/train/codes" in config
    # the second iteration predicts k-means (--target-k) labels of masked's projection
    it2 = (exp / "masked-it2" / "config.yaml").read_text()
    assert "masked/targets/train/codes" in it2 and "num_classes: 8" in it2
    targets = json.loads((exp / "masked" / "targets" / "train" / "kmeans.json").read_text())
    assert targets["k"] == 8 and targets["features"].endswith("masked/units/train/dense")
    train = DataDir.read(tmp / "data" / "data" / "train")
    assert sorted(p.stem for p in (exp / "masked" / "targets" / "train" / "codes").glob("*.npy")) == train.utts
    extract = json.loads((exp / "masked" / "units" / "dev" / "extract.json").read_text())
    assert extract["tap"] == "projection" and extract["kmeans"]["k"] == 6
    assert sorted(p.stem for p in (exp / "masked" / "units" / "dev" / "codes").glob("*.npy")) == dev.utts
    assert sorted(p.stem for p in (exp / "kmeans-mfcc" / "units" / "dev" / "codes").glob("*.npy")) == dev.utts
    # --readout true (the default): the centroid regression of the projection and k-means refitted on
    # the mapped training frames, each frame stacked with 4 on either side (--unit-context 4, the
    # default); dev dense/ holds mapped frames, whose nearest refitted centroids (stacked) are the units,
    # followed by their deltas balanced to the frames' RMS (--dense-deltas 1, the default)
    reg = CentroidRegression.load(exp / "masked" / "readout.pt")
    km = KMeans.load(exp / "masked" / "kmeans-readout-c4.pt")
    assert extract["readout"]["id"] == reg.model_id() and extract["kmeans"]["id"] == km.model_id()
    assert extract["dense_deltas"] == {"balance": 1.0, "window": 2}
    assert km.feature_meta["readout"]["id"] == reg.model_id() and km.k == 6 and km.context == 4
    check_mapped_units(exp / "masked" / "units" / "dev", km, dev.utts)
    for system, rep in (("kmeans-mfcc", "codes"), ("masked", "dense"), ("masked", "codes")):
        assert (exp / system / "abx" / f"{rep}.phone.across.json").is_file()
    results = (exp / "RESULTS.md").read_text()
    assert "| kmeans-mfcc codes |" in results and "| masked codes |" in results and "| masked-it2 codes |" in results
    assert "## Quality: learned against the baselines" in results
    assert "| masked units / k-means on MFCC (K=6) |" in results and "| masked dense / MFCC |" in results
    assert "| mfcc-nolifter" not in results and not (exp / "kmeans-mfcc-nolifter").exists()  # --nolifter-baseline false
    # stage 7: the unit LM over masked-it2's k-means units (6 units, no audio decoder: no resynthesis)
    check_ok(run_recipe("speechocean762", "--stage", "7", "--stop-stage", "7", *args, "--lm-model", "masked-it2",
                        "--lm-overrides", TINY_LM))
    lm = exp / "masked-it2" / "lm"
    check_unit_lm(lm, vocab=6, train_utts=train.utts, dev_utts=dev.utts)
    assert not (lm / "samples" / "wav").exists()
    # a rerun resumes: the LM's training units (no dense deltas) are kept as complete
    rerun = check_ok(run_recipe("speechocean762", "--stage", "7", "--stop-stage", "7", *args, "--lm-model",
                                "masked-it2", "--lm-overrides", TINY_LM))
    assert "finished training, skipping" in rerun
    it2_readout = CentroidRegression.load(exp / "masked-it2" / "readout.pt").model_id()
    assert json.loads((lm / "units_train" / "extract.json").read_text())["readout"]["id"] == it2_readout
    # folders made with the read-out are not kept as complete under --readout false: the run stops and
    # says what to remove
    bad = run_recipe("speechocean762", "--stage", "3", "--stop-stage", "3", *args, "--readout", "false")
    assert bad.returncode != 0
    assert "extracted with the read-out" in bad.stderr + bad.stdout and "remove" in bad.stderr + bad.stdout
    # a folder made with other dense deltas is refused too
    bad = run_recipe("speechocean762", "--stage", "3", "--stop-stage", "3", *args, "--models", "masked",
                     "--dense-deltas", "0")
    assert bad.returncode != 0 and "with dense deltas of balance 1, but this run's setting is 0" in bad.stderr + bad.stdout
    # --unit-context 1: units from k-means on each mapped frame stacked with a neighbour on either
    # side (kmeans-readout-c1.pt); the folder made with another context is refused until removed
    ctx = [*args, "--models", "masked", "--unit-context", "1", "--dense-deltas", "0"]
    bad = run_recipe("speechocean762", "--stage", "3", "--stop-stage", "3", *ctx)
    assert bad.returncode != 0 and "--unit-context" in bad.stderr + bad.stdout
    shutil.rmtree(exp / "masked" / "units" / "dev")
    check_ok(run_recipe("speechocean762", "--stage", "3", "--stop-stage", "3", *ctx))
    km1 = KMeans.load(exp / "masked" / "kmeans-readout-c1.pt")
    assert km1.context == 1 and km1.dim == 3 * km.dim // 9 and km1.feature_meta["readout"]["id"] == reg.model_id()
    extract = json.loads((exp / "masked" / "units" / "dev" / "extract.json").read_text())
    assert extract["kmeans"]["id"] == km1.model_id() and "dense_deltas" not in extract  # --dense-deltas 0
    check_mapped_units(exp / "masked" / "units" / "dev", km1, dev.utts)


def check_mapped_units(out: Path, km: KMeans, utts: list[str]) -> None:
    """OUT's units are the nearest centroids of km over the mapped frames in dense/, which may be
    followed by their balanced deltas (extract --deltas)."""
    extract = json.loads((out / "extract.json").read_text())
    balance = (extract.get("dense_deltas") or {}).get("balance", 0.0)
    units = read_units(out)
    dense = open_feature_source(out / "dense")
    for utt in utts:
        frames = np.asarray(dense.load(utt))
        mapped = frames[:, : km.frame_dim]
        assert frames.shape[1] == (2 if balance else 1) * km.frame_dim
        if balance:
            np.testing.assert_allclose(frames, balanced_deltas(mapped, balance), rtol=1e-5, atol=1e-6)
        assert np.array_equal(np.repeat(units[utt].units, units[utt].durations), km.predict(mapped))


TINY_LM = ("model.dim=16 model.heads=2 model.ff_dim=32 model.max_len=16 data.crop_tokens=16 data.batch_size=4 "
           "data.dev_fraction=0.2 train.max_steps=3 train.log_every=1 train.eval_every=0 train.checkpoint_every=0 "
           "optim.warmup_steps=1")


def check_unit_lm(lm: Path, vocab: int, train_utts: list[str], dev_utts: list[str]) -> None:
    """What stage 7 leaves in EXP/MODEL/lm: the model's training units, a transformer of its
    vocabulary, the n-grams, a perplexity line per LM on the dev units, samples, snippets."""
    units_train = [line.split()[0] for line in (lm / "units_train" / "units.txt").read_text().splitlines()]
    assert units_train == train_utts
    assert yaml.safe_load((lm / "transformer" / "config.yaml").read_text())["model"]["vocab_size"] == vocab
    lines = (lm / "perplexity.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["transformer", "3-gram", "4-gram"]
    assert all(f"{len(dev_utts)} utterances" in line and "perplexity" in line for line in lines)
    for name in ("transformer", "ngram3", "ngram4"):
        assert json.loads((lm / "scores" / f"{name}_dev.json").read_text())["kind"] == "lm-score"
    assert len((lm / "samples" / "units.txt").read_text().splitlines()) == 3
    continued = [line.split()[0] for line in (lm / "continued" / "units.txt").read_text().splitlines()]
    assert len(continued) == 3 and set(continued) <= set(dev_utts)
    assert json.loads((lm / "snippets" / "snippets.json").read_text())


def test_unit_lm_stage_on_a_coded_model(so_run):
    """Stage 7 on the pcvq model: its own codes are the units (the codebook is the LM's
    vocabulary, no k-means), and its log-mel decoder resynthesizes the samples."""
    tmp, _, args, _ = so_run
    check_ok(run_recipe("speechocean762", "--stage", "7", *args, "--lm-model", "pcvq", "--lm-overrides", TINY_LM))
    exp = tmp / "exp"
    dev, train = (DataDir.read(tmp / "data" / "data" / s) for s in ("dev", "train"))
    size = yaml.safe_load((exp / "pcvq" / "config.yaml").read_text())["model"]["bottleneck_cfg"]["codebook"]["size"]
    lm = exp / "pcvq" / "lm"
    check_unit_lm(lm, vocab=size, train_utts=train.utts, dev_utts=dev.utts)
    assert json.loads((lm / "units_train" / "extract.json").read_text())["kmeans"] is None
    assert len(list((lm / "samples" / "wav").glob("*.wav"))) == 3


def test_rerun_skips_and_unknown_model_fails(so_run):
    tmp, _, args, _ = so_run
    last = tmp / "exp" / "pcvq" / "last.pt"
    before = last.stat().st_mtime_ns
    log = check_ok(run_recipe("speechocean762", "--stage", "0", "--stop-stage", "5", *args))
    assert last.stat().st_mtime_ns == before
    for what in ("corpus prepared in", "are complete in", "finished training, skipping", "pcvq are complete in",
                 "exists, skipping", "probes of pcvq done, skipping"):
        assert what in log, what
    bad = run_recipe("speechocean762", "--models", "vq nosuch", "--exp", str(tmp / "exp2"), "--stage", "9")
    assert bad.returncode != 0 and "model 'nosuch' is not in conf/models.txt" in bad.stderr
