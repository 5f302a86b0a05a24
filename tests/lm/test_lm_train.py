"""Unit-LM training through the training engine: memorising, exact resume, the CLI, scoring, sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from speechunits.lm.checkpoint import load_lm
from speechunits.lm.config import lm_config_from_dict
from speechunits.lm.sample import SampleOptions, continue_units, sample_tokens, sample_units
from speechunits.lm.scoring import NeuralScorer, perplexity
from speechunits.lm.trainer import LMTrainer, context_of_crops
from speechunits.train.checkpoint import load_checkpoint
from speechunits.train.trainer import Callback
from speechunits.units.formats import UnitSequence, read_units, write_units

SMALL = ("model.dim=32", "model.layers=2", "model.heads=2", "model.ff_dim=64", "model.dropout=0.0",
         "model.max_len=64", "data.batch_size=4", "train.log_every=5", "optim.warmup_steps=5")


def _cfg(units, *more):
    return lm_config_from_dict({}, [f"data.train_units={units}", *SMALL, *more])


@pytest.mark.slow  # one of the heaviest single tests: in the full suite, not the fast subset
@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_memorises_a_deterministic_corpus(tmp_path, kind):
    """Every utterance is 0 1 2 3 4 5 0 1 2: a model that learns it has perplexity near 1."""
    seqs = {f"u{i:02d}": UnitSequence(f"u{i:02d}", np.array([0, 1, 2, 3, 4, 5, 0, 1, 2]), np.full(9, 2), 0.02)
            for i in range(8)}
    write_units(tmp_path / "units", seqs)
    cfg = _cfg(tmp_path / "units", f"model.kind={kind}", "train.max_steps=120", "train.eval_every=120",
               "optim.lr=3e-3", "data.dev_fraction=0.2")
    result = LMTrainer(cfg, tmp_path / "exp", device="cpu").fit()
    assert result.dev["ppl"] < 1.1
    lm = load_lm(tmp_path / "exp")
    summary = perplexity(NeuralScorer(lm).score(seqs))
    assert summary["perplexity"] < 1.1 and summary["tokens"] == 8 * 10
    assert lm.model.mean_durations[0].item() == pytest.approx(2.0)
    # greedy-ish sampling reproduces the pattern, with the training durations
    out = sample_units(lm, 2, SampleOptions(temperature=0.1), seed=0)
    for s in out.values():
        assert s.units.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2] and s.durations.tolist() == [2] * 9 and s.shift == 0.02


class Kill(Exception):
    pass


class KillAt(Callback):
    def __init__(self, step):
        self.at = step

    def on_step(self, trainer, step):
        if step == self.at:
            raise Kill(step)


def test_interrupted_and_resumed_run_is_bitwise_identical(tmp_path, unit_dir):
    more = ("train.max_steps=12", "train.checkpoint_every=5", "train.eval_every=4", "model.dropout=0.1",
            "model.durations=true")
    full = LMTrainer(_cfg(unit_dir, *more), tmp_path / "full", device="cpu")
    full.fit()
    ref = {k: v.clone() for k, v in full.model.state_dict().items()}
    with pytest.raises(Kill):
        LMTrainer(_cfg(unit_dir, *more), tmp_path / "resumed", device="cpu", callbacks=[KillAt(7)]).fit()
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["step"] == 5
    resumed = LMTrainer(_cfg(unit_dir, *more), tmp_path / "resumed", device="cpu")
    result = resumed.fit()
    assert result.resumed_from == 5 and result.step == 12
    for k, v in resumed.model.state_dict().items():
        assert torch.equal(v, ref[k]), k
    lines = [json.loads(x) for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["split"] == "dev"] == [4, 8, 12]


def test_transformer_context_is_the_training_crop(tmp_path, unit_dir):
    """Crops of 6 tokens train positions 0-5 only: max_len is cut to 6 (the position table
    too), an utterance longer than that is scored in windows, each token once; an LSTM and a
    transformer whose crops reach max_len keep it."""
    cfg = _cfg(unit_dir, "data.crop_tokens=6", "train.max_steps=3", "train.eval_every=3")
    LMTrainer(cfg, tmp_path / "cut", device="cpu").fit()
    lm = load_lm(tmp_path / "cut")
    assert lm.config.model.max_len == 6 and lm.model.pos.weight.shape[0] == 6 and lm.model.max_context == 6
    seqs = read_units(unit_dir)
    long = max(seqs.values(), key=lambda s: s.units.size)
    assert long.units.size + 1 > 6
    score = NeuralScorer(lm).score({long.utt: long})[0]
    assert score.tokens == long.units.size + 1 and np.isfinite(score.logprob)
    for kind, crop, want in (("lstm", 6, 64), ("transformer", 64, 64), ("transformer", 100, 64)):
        c = context_of_crops(_cfg(unit_dir, f"model.kind={kind}", f"data.crop_tokens={crop}"))
        assert c.model.max_len == want


def test_cli_train_score_sample_resynth_ready(tmp_path, unit_dir, capsys):
    from speechunits.cli import main

    exp = tmp_path / "exp"
    assert main(["lm", "train", str(unit_dir), str(exp), *SMALL, "train.max_steps=10", "train.eval_every=5",
                 "model.kind=lstm"]) == 0
    assert (exp / "best.pt").is_file() and (exp / "config.yaml").is_file()
    assert "lm train" in (exp / "command.txt").read_text()
    assert main(["lm", "score", str(exp), str(unit_dir), "--output", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["utterances"] == 24 and scores["perplexity"] > 1
    assert main(["lm", "ngram", str(unit_dir), str(tmp_path / "ng.json"), "--order", "3"]) == 0
    assert main(["lm", "score", str(tmp_path / "ng.json"), str(unit_dir)]) == 0
    assert "perplexity" in capsys.readouterr().out
    out = tmp_path / "cont"
    assert main(["lm", "sample", str(exp), str(out), "--prompt", str(unit_dir), "--prompt-seconds", "0.1",
                 "--max-utts", "3", "--max-units", "5", "--top-k", "3"]) == 0
    got = read_units(out)
    prompts = read_units(unit_dir)
    info = json.loads((out / "sample.json").read_text())
    assert len(got) == 3
    for utt, seq in got.items():
        k = info["prompt_units"][utt]
        assert seq.units[:k].tolist() == prompts[utt].units[:k].tolist()
        assert seq.durations[:k].sum() <= 5  # 0.1 s at 20 ms
        assert seq.units.size <= k + 5
    # the same seed gives the same units
    assert main(["lm", "sample", str(exp), str(tmp_path / "again"), "--prompt", str(unit_dir), "--prompt-seconds",
                 "0.1", "--max-utts", "3", "--max-units", "5", "--top-k", "3"]) == 0
    assert (tmp_path / "again" / "units.txt").read_text() == (out / "units.txt").read_text()


def test_sampling_with_and_without_cache_agree(tmp_path, unit_dir):
    cfg = _cfg(unit_dir, "train.max_steps=3", "model.durations=true")
    LMTrainer(cfg, tmp_path / "exp", device="cpu").fit()
    lm = load_lm(tmp_path / "exp")
    for cache in (True, False):
        gen = torch.Generator().manual_seed(3)
        got = sample_tokens(lm.model, [1, 2], [0, 1], SampleOptions(max_units=20, use_cache=cache), gen)
        if cache:
            ref = got
    assert got == ref and len(got[0]) == len(got[1])
    seqs, n = continue_units(lm, read_units(unit_dir), 0.05, SampleOptions(max_units=4), seed=1)
    for seed in range(5):  # the end is never drawn before min_units
        got = sample_tokens(lm.model, [], None, SampleOptions(max_units=30, min_units=12), torch.Generator().manual_seed(seed))
        assert len(got[0]) >= 12
    assert all(n[u] >= 1 for u in n)
