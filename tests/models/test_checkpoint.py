"""The inference loader (speechunits/models/checkpoint.py): a saved tiny model loads to
one that gives the same outputs; experiment dirs resolve to best.pt, else last.pt;
files that are not checkpoints, dirs without one, pickled objects and unit-LM
checkpoints are clear errors; and inference never imports the training code."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechunits.config import to_dict
from speechunits.errors import SpeechUnitsError
from speechunits.frontends.pipeline import feature_preset
from speechunits.models.autoencoder import build_model, model_config_from_dict
from speechunits.models.checkpoint import (
    CHECKPOINT_VERSION,
    ModelBundle,
    load_checkpoint,
    load_model,
    resolve_checkpoint,
)
from speechunits.train.checkpoint import save_checkpoint  # the writer (training's side)

ROOT = Path(__file__).resolve().parents[2]


def tiny_model(input_dim=6, seed=0):
    cfg = model_config_from_dict({
        "input_dim": input_dim, "encoder": {"channels": 16}, "bottleneck": "vq",
        "bottleneck_cfg": {"dim": 4, "codebook": {"size": 8}}, "conditioning": {"channels": 8, "speaker_dim": 4},
        "decoder": "fbank", "decoder_cfg": {"out_dim": 5, "channels": 8, "layers": 1}, "speakers": ["s0", "s1"],
    })
    torch.manual_seed(seed)
    return build_model(cfg).eval()


def save(path, model, step=7, input_features=None, **config):
    """A checkpoint as the trainer writes it (the experiment config as plain data)."""
    data = {"input_features": to_dict(input_features) if input_features is not None else {}, **config}
    save_checkpoint(path, model=model, config={"model": to_dict(model.cfg), "data": data}, step=step, epoch=1)
    return path


def test_a_saved_model_loads_to_the_same_outputs(tmp_path):
    model = tiny_model()
    path = save(tmp_path / "exp" / "best.pt", model, input_features=feature_preset("fbank", ["cmvn=speaker"]))
    bundle = load_model(tmp_path / "exp")  # an experiment dir: its best.pt
    assert isinstance(bundle, ModelBundle) and bundle.path == path and bundle.step == 7
    assert not bundle.model.training and bundle.model.cfg == model.cfg
    assert bundle.input_features == feature_preset("fbank", ["cmvn=speaker"])
    assert bundle.config["model"] == to_dict(model.cfg)  # the experiment config as plain data
    assert bundle.config["data"]["input_features"]["cmvn"] == "speaker"
    x = torch.randn(2, 30, 6)
    with torch.no_grad():
        ref, got = model.encode(x), bundle.model.encode(x)
    assert torch.equal(ref.codes, got.codes)
    for name in ref.taps:
        assert torch.equal(ref.taps[name].values, got.taps[name].values)


def test_experiment_dir_prefers_best_then_last(tmp_path):
    exp = tmp_path / "exp"
    save(exp / "last.pt", tiny_model(), step=9)
    assert resolve_checkpoint(exp) == exp / "last.pt" and load_model(exp).step == 9
    assert load_model(exp).input_features is None  # not recorded: the caller must supply them
    save(exp / "best.pt", tiny_model(seed=1), step=4)
    assert resolve_checkpoint(exp) == exp / "best.pt" and load_model(exp).step == 4
    assert resolve_checkpoint(exp / "last.pt") == exp / "last.pt"  # a file is itself


def test_not_a_checkpoint_and_empty_dirs_are_clear_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SpeechUnitsError, match="junk.pt: cannot read checkpoint"):
        load_model(tmp_path / "junk.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(SpeechUnitsError, match="other.pt: not a speechunits checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(SpeechUnitsError, match="missing.pt: checkpoint not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "step-5.pt").write_bytes(b"")
    with pytest.raises(SpeechUnitsError, match="empty: experiment dir has no best.pt or last.pt"):
        load_model(tmp_path / "empty")


def test_newer_versions_and_mismatched_weights_are_clear_errors(tmp_path):
    path = save(tmp_path / "a.pt", tiny_model())
    state = torch.load(path, weights_only=True)
    state["version"] = CHECKPOINT_VERSION + 1
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(SpeechUnitsError, match="newer"):
        load_checkpoint(tmp_path / "future.pt")
    state["version"] = CHECKPOINT_VERSION
    state["config"]["model"]["encoder"]["channels"] = 32  # the config no longer matches the weights
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(SpeechUnitsError, match="weights do not match the saved config"):
        load_model(tmp_path / "bad.pt")


RAN = []


def _side_effect():
    RAN.append(True)
    return "pwned"


class Pickled:
    """An object whose unpickling would run code (a function call)."""

    def __reduce__(self):
        return (_side_effect, ())


def test_weights_only_refuses_pickled_objects(tmp_path):
    path = save(tmp_path / "ok.pt", tiny_model())
    state = torch.load(path, weights_only=True)
    state["config"]["data"]["note"] = Pickled()
    torch.save(state, tmp_path / "pickled.pt")
    with pytest.raises(SpeechUnitsError, match="pickled.pt: cannot read checkpoint"):
        load_model(tmp_path / "pickled.pt")
    assert not RAN  # the object was never rebuilt


def test_a_unit_lm_checkpoint_is_named(tmp_path):
    from speechunits.lm.checkpoint import is_lm_checkpoint

    model = tiny_model()
    path = tmp_path / "lm.pt"
    save_checkpoint(path, model=model, config={"model": {"vocab_size": 8}, "data": {"train_units": "u.jsonl"}},
                    step=1, epoch=0)
    assert is_lm_checkpoint(path)
    with pytest.raises(SpeechUnitsError, match="a unit-LM checkpoint, not an autoencoder"):
        load_model(path)


def test_inference_never_imports_the_training_code():
    code = (
        "import sys\n"
        "import speechunits.models.checkpoint, speechunits.units.extractor, speechunits.units.resynth\n"
        "import speechunits.eval.probes, speechunits.cli.extract, speechunits.cli.resynth, speechunits.cli.probe\n"
        "import speechunits.cli.unit_metrics\n"
        "print(sorted(m for m in sys.modules if m.startswith('speechunits.train')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.strip() == "[]"
