"""Resume is exact: a run killed after its step-3 checkpoint and resumed ends bitwise
equal to an uninterrupted run; the experiment dir holds what the contract lists."""

import json

import pytest
import torch
import yaml

from speechunits.errors import SpeechUnitsError
from speechunits.train.checkpoint import load_checkpoint
from speechunits.train.trainer import Callback, Trainer

from conftest import tiny_config


class Kill(Exception):
    pass


class KillAt(Callback):
    def __init__(self, step):
        self.at = step

    def on_step(self, trainer, step):
        if step == self.at:
            raise Kill(step)


# jitter on, dead-code restarts (private codebook generator), k-means over the first 2 batches
# (the reservoir is mid-fill at the step-1 checkpoint), one epoch = 2 batches of 3 (crossed at 2, 4, 6)
MORE = ("train.max_steps=6", "model.bottleneck_cfg.codebook.kmeans_batches=2", "train.eval_every=2")


@pytest.mark.parametrize("stop_after_checkpoint", [3, 1])
def test_interrupted_and_resumed_run_is_bitwise_identical(corpus, tmp_path, stop_after_checkpoint):
    every = stop_after_checkpoint
    full = Trainer(tiny_config("small", corpus, *MORE, f"train.checkpoint_every={every}"), tmp_path / "full",
                   device="cpu")
    full_result = full.fit()
    reference = {k: v.clone() for k, v in full.model.state_dict().items()}

    exp = tmp_path / "resumed"
    cfg = tiny_config("small", corpus, *MORE, f"train.checkpoint_every={every}")
    with pytest.raises(Kill):  # dies one step after a checkpoint; that step is lost
        Trainer(cfg, exp, device="cpu", callbacks=[KillAt(every + 1)]).fit()
    assert load_checkpoint(exp / "last.pt")["step"] == every
    resumed = Trainer(cfg, exp, device="cpu")
    result = resumed.fit()
    assert result.resumed_from == every and result.step == 6 == full_result.step

    state = resumed.model.state_dict()
    assert state.keys() == reference.keys()
    for k in reference:
        assert torch.equal(state[k], reference[k]), k
    # also the optimiser moments and the schedule
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(exp / "last.pt")
    for (ka, va), (kb, vb) in zip(a["optimizer"]["state"].items(), b["optimizer"]["state"].items()):
        assert torch.equal(va["exp_avg"], vb["exp_avg"]) and torch.equal(va["exp_avg_sq"], vb["exp_avg_sq"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 6
    # the metrics log reads as one run: the lost step's line was dropped on resume
    steps = [json.loads(line)["step"] for line in (exp / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_experiment_dir_contents(corpus, tmp_path):
    exp = tmp_path / "exp"
    cfg = tiny_config("small", corpus, "train.max_steps=4", "train.checkpoint_every=1", "train.keep_checkpoints=2",
                      "train.eval_every=2")
    Trainer(cfg, exp, device="cpu", command="speechunits train x").fit()
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == ["step-3.pt", "step-4.pt"]
    for name in ("last.pt", "best.pt", "config.yaml", "command.txt", "metrics.jsonl"):
        assert (exp / name).is_file(), name
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["model"]["speakers"] == ["s0", "s1"]  # filled from the data, sorted
    assert saved["data"]["input_features"]["cmvn"] == "utterance"  # from the input dir's meta.json
    assert saved["optim"]["warmup_steps"] == 2 and "grad_clip" in saved["optim"]  # resolved, defaults filled in
    assert (exp / "command.txt").read_text() == "speechunits train x\n"
    events = [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]
    dev = [e for e in events if e["split"] == "dev"]
    assert [e["step"] for e in dev] == [2, 4]
    for key in ("loss", "recon_true", "recon_zero", "recon_shuffled", "gap_zero", "perplexity", "used_codes"):
        assert key in dev[0], key
    best = load_checkpoint(exp / "best.pt")
    assert best["trainer_state"]["best_dev_loss"] == min(e["loss"] for e in dev)
    # the final evaluation comes before the final checkpoint, which therefore knows the best loss
    assert load_checkpoint(exp / "last.pt")["trainer_state"]["best_dev_loss"] == min(e["loss"] for e in dev)

    # --resume with a different model refuses; --no-resume starts afresh
    other = tiny_config("small", corpus, "train.max_steps=1", "model.encoder.channels=8")
    with pytest.raises(SpeechUnitsError, match="different model"):
        Trainer(other, exp, device="cpu").fit()
    Trainer(other, exp, device="cpu", resume=False).fit()
    assert load_checkpoint(exp / "last.pt")["step"] == 1
    assert not list((exp / "checkpoints").glob("step-*.pt"))


def test_resume_without_checkpoint_is_an_error(corpus, tmp_path):
    with pytest.raises(SpeechUnitsError, match="nothing to resume"):
        Trainer(tiny_config("small", corpus), tmp_path / "none", device="cpu", resume=True).fit()
