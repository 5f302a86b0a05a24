"""The README's main job, egs/synthetic/run.sh, end to end at a tiny setting.

Every stage runs for real (corpus, features, MFCC ABX, training, extraction, learned
ABX, probes, unit metrics, resynthesis, report, unit LM); the checks are on what each stage
must leave behind, and that a rerun skips finished work.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

RECIPE = Path(__file__).resolve().parents[2] / "egs" / "synthetic" / "run.sh"
TINY = "train.max_steps=20 train.eval_every=10 train.checkpoint_every=10"
TINY_LM = ("--lm-overrides", "train.max_steps=10 train.eval_every=5 train.checkpoint_every=5", "--lm-words", "6",
           "--lm-pairs", "2")
pytestmark = pytest.mark.slow  # runs the recipe


def run(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(RECIPE), "--out", str(out), "--minutes", "2", "--nj", "1", "--train-overrides", TINY, *TINY_LM, *args],
        capture_output=True, text=True, env=env,
    )


COMMITTED = RECIPE.parent / "RESULTS.md"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    pytest.importorskip("espeakng_loader")
    out = tmp_path_factory.mktemp("synthetic-recipe")
    committed = COMMITTED.read_bytes()
    result = run(out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert COMMITTED.read_bytes() == committed  # the committed figures change only with --publish true
    return out, result


def test_every_stage_leaves_its_outputs(recipe):
    out, result = recipe
    model = out / "exp" / "small"
    assert (out / "data/synthetic/corpus.json").is_file()
    utts = (out / "data/synthetic/data/all/wav.scp").read_text().splitlines()
    assert len(list((out / "feats/mfcc_dd").glob("*.npy"))) == len(utts)
    for system, reps in (("mfcc", ["mfcc"]), ("small", ["dense", "codes"])):
        for rep in reps:
            for cond in ("triphone.within", "triphone.across", "phone.within", "phone.across"):
                score = json.loads((out / "exp" / system / "abx" / f"{rep}.{cond}.json").read_text())
                assert score["units"] == "percent ABX error" and 0 <= score["score"] <= 100
                assert score["n_triplets"] > 0
    assert (model / "best.pt").is_file() and (model / "config.yaml").is_file()
    test_utts = (out / "data/synthetic/data/test/wav.scp").read_text().splitlines()
    assert len((model / "units_test/units.txt").read_text().splitlines()) == len(test_utts)
    assert json.loads((model / "probes/probes.json").read_text())["kind"] == "probes"
    metrics = json.loads((model / "unit_metrics.json").read_text())
    assert 0 < metrics["pnmi"] <= 1 and metrics["used_codes"] > 1
    assert "PNMI" in (model / "report/report.md").read_text()
    wavs = sorted((model / "resynth").glob("*/*.wav"))
    assert len(wavs) == 3 and sf.info(wavs[0]).samplerate == 16000
    assert not (out / "RESULTS.md").exists()
    results = (out / "exp" / "RESULTS.md").read_text()
    assert "| mfcc |" in results and "| small dense |" in results and "| small codes |" in results
    cores = len(os.sched_getaffinity(0))  # the machine's, not the single thread OMP_NUM_THREADS gives jobs
    assert f"Command: `{RECIPE} --out {out} --minutes 2" in results and "stages 0-8 of this run took" in results
    assert f"min on {cores} cores" in results
    assert (out / "exp/log/extract.log").is_file()  # --nj 1: one extraction job, no parts
    assert (model / "report/report.html").is_file()
    # stage 9: the unit LM, its baseline, spoken-LM sets and accuracies, samples, snippets, in the report
    lm = model / "lm"
    assert (lm / "transformer/best.pt").is_file() and (lm / "ngram.json").is_file()
    for m in ("transformer", "ngram"):
        assert json.loads((lm / f"scores/{m}_test.json").read_text())["perplexity"] > 1
        tasks = json.loads((lm / f"spoken/{m}/spoken_lm.json").read_text())["tasks"]
        assert tasks["lexical"]["pairs"] == 6 * 3 and tasks["syntactic"]["pairs"] == 2 * 3 * 3  # 3 test voices
    assert len(list((lm / "samples/wav").glob("*.wav"))) == 3 and len(list((lm / "continued/wav").glob("*.wav"))) == 3
    assert json.loads((lm / "snippets/snippets.json").read_text())["units"]
    report = (model / "report/report.md").read_text()
    assert "## Unit language model" in report and "## Listening to units" in report
    # this run's key figures beside the committed ones
    assert f"Key figures of {out}/exp/RESULTS.md vs the committed RESULTS.md:" in result.stdout
    assert "  mfcc " in result.stdout and " / " in result.stdout and "figures equal the committed ones" in result.stdout


def test_rerun_skips_finished_stages(recipe):
    out, _ = recipe
    result = run(out, "--stop-stage", "5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "corpus exists" in result.stderr
    assert "complete in" in result.stderr
    assert "finished training, skipping" in result.stderr
    assert "exists, skipping" in result.stderr  # ABX


def test_lm_on_more_speech_in_the_training_voices(recipe):
    """--lm-minutes: the LMs train on a train-only corpus of the same seed and voices
    (its first utterances are the recipe's training split), with unit-lm-large.yaml."""
    import shutil

    import yaml

    out, _ = recipe
    model = out / "exp" / "small"
    shutil.rmtree(model / "lm")
    result = run(out, "--stage", "9", "--lm-minutes", "1.5")
    assert result.returncode == 0, result.stderr[-3000:]
    lm_corpus = out / "data" / "lm_train"
    info = json.loads((lm_corpus / "corpus.json").read_text())
    assert info["config"]["train_only"] and not (lm_corpus / "data" / "test").exists()
    train = (out / "data/synthetic/data/train/text").read_text().splitlines()
    more = (lm_corpus / "data/train/text").read_text().splitlines()
    assert len(more) > len(train) and set(train) <= set(more)
    assert 1.2 < info["seconds"] / 60 < 1.8
    lm_units = (model / "units_lm_train/units.txt").read_text().splitlines()
    assert len(lm_units) == len(more)
    cfg = yaml.safe_load((model / "lm/transformer/config.yaml").read_text())
    assert cfg["data"]["train_units"].endswith("units_lm_train") and cfg["data"]["batch_size"] == 32
    assert cfg["train"]["max_steps"] == 10  # --lm-overrides still apply
    assert json.loads((model / "lm/scores/ngram_test.json").read_text())["perplexity"] > 1
