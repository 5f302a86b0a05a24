"""Experiment configs: every pipeline YAML loads, survives a dict / YAML round trip,
takes dotted overrides in any section, and rejects typos; model.input_dim 0 comes from
the input features' meta.json (an explicit value that disagrees is an error); the LR
schedule matches hand-computed values."""

import math

import pytest
import yaml

from speechunits.config import save_yaml, to_dict
from speechunits.errors import SpeechUnitsError
from speechunits.train.config import (
    ExperimentConfig,
    experiment_config_from_dict,
    load_experiment_config,
    resolve_input_dim,
)
from speechunits.train.optim import lr_factor

from conftest import IN_DIM, PIPELINES, tiny_config

ALL = sorted(PIPELINES.glob("*.yaml"))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_pipeline_round_trip(path, tmp_path):
    cfg = load_experiment_config(path)
    assert experiment_config_from_dict(to_dict(cfg)) == cfg
    save_yaml(cfg, tmp_path / "config.yaml")
    assert load_experiment_config(tmp_path / "config.yaml") == cfg
    # every pipeline names its training sections explicitly
    raw = yaml.safe_load(path.read_text())
    assert {"model", "data", "optim", "train"} <= set(raw), path.name


def test_overrides_reach_every_section():
    cfg = load_experiment_config(
        PIPELINES / "wavenet-vq.yaml",
        ["optim.lr=2e-3", "optim.betas=[0.8, 0.9]", "train.max_steps=7", "data.crop_seconds=1.5",
         "model.encoder.channels=32", "model.bottleneck_cfg.codebook.size=16", "data.input_features={cmvn: speaker}"],
    )
    assert cfg.optim.lr == 2e-3 and cfg.optim.betas == (0.8, 0.9)  # YAML 1.1's string "2e-3" -> float
    assert cfg.train.max_steps == 7 and cfg.data.crop_seconds == 1.5
    assert cfg.model.encoder.channels == 32 and cfg.model.bottleneck_cfg["codebook"]["size"] == 16
    assert cfg.data.input_features == {"cmvn": "speaker"}
    # switching the bottleneck kind together with its settings works (overrides apply before checking)
    vae = load_experiment_config(PIPELINES / "wavenet-vq.yaml", ["model.bottleneck=vae", "model.bottleneck_cfg={dim: 8}"])
    assert vae.model.bottleneck == "vae" and vae.model.bottleneck_cfg["dim"] == 8 and "beta" in vae.model.bottleneck_cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "optim.lrr"),
        ("train.amp=fp8", "train.amp"),
        ("train.cpu_amp=fp16", "train.cpu_amp"),
        ("model.encoder.chanels=3", "chanels"),
        ("lr=1", "start with a section"),
        ("optim.schedule=linear", "optim.schedule"),
        ("data.dev_fraction=1.5", "dev_fraction"),
    ],
)
def test_bad_overrides_are_errors(override, message):
    with pytest.raises(SpeechUnitsError, match=message):
        load_experiment_config(PIPELINES / "small.yaml", [override])


def test_unknown_section_and_missing_file(tmp_path):
    (tmp_path / "x.yaml").write_text("model: {}\ntrian: {}\n")
    with pytest.raises(SpeechUnitsError, match="trian"):
        load_experiment_config(tmp_path / "x.yaml")
    with pytest.raises(SpeechUnitsError, match="not found"):
        load_experiment_config(tmp_path / "nope.yaml")


def test_defaults_are_the_paper_model():
    cfg = ExperimentConfig()
    assert cfg.model.input_dim == 0  # from the input features (their meta.json), as the pipelines
    assert cfg.model.jitter == 0.12 and cfg.model.decoder == "wavenet"


def test_input_dim_comes_from_the_features_meta_json(corpus, tmp_path):
    from speechunits.data.featdir import FeatureDir
    from speechunits.models.checkpoint import load_model
    from speechunits.train.trainer import Trainer

    cfg = tiny_config("small", corpus, "model.input_dim=0", "train.max_steps=1", "data.crop_seconds=0.2")
    assert cfg.model.input_dim == 0
    resolved = resolve_input_dim(cfg)
    assert resolved.model.input_dim == IN_DIM == FeatureDir(corpus.inputs).meta["feature_dim"]
    assert to_dict(resolved) == {**to_dict(cfg), "model": {**to_dict(cfg.model), "input_dim": IN_DIM}}
    assert resolve_input_dim(resolved) is resolved  # an explicit value is kept (TrainingData checks it)
    # training resolves it: the saved config and the checkpoint hold the features' dimension
    trainer = Trainer(cfg, tmp_path / "exp", device="cpu")
    trainer.fit()
    assert trainer.config.model.input_dim == IN_DIM
    assert load_experiment_config(tmp_path / "exp" / "config.yaml").model.input_dim == IN_DIM
    assert load_model(tmp_path / "exp").model.cfg.input_dim == IN_DIM


def test_input_dim_mismatch_and_unrecorded_dimension_are_errors(corpus, tmp_path):
    from speechunits.train.trainer import Trainer

    cfg = tiny_config("small", corpus, "model.input_dim=7", "train.max_steps=1")
    expect = r"features have 6 dims \(meta.json\), the model expects model.input_dim=7"
    with pytest.raises(SpeechUnitsError, match=expect):
        Trainer(cfg, tmp_path / "exp", device="cpu").fit()
    meta = corpus.inputs / "meta.json"
    meta.write_text(meta.read_text().replace('"feature_dim"', '"dims"'))
    with pytest.raises(SpeechUnitsError, match="the features record no feature_dim"):
        resolve_input_dim(tiny_config("small", corpus, "model.input_dim=0"))


def test_learning_rate_schedule_hand_computed():
    cfg = load_experiment_config(PIPELINES / "small.yaml", ["optim.warmup_steps=10", "optim.min_lr_ratio=0.1"]).optim
    assert lr_factor(0, cfg, 110) == pytest.approx(0.1)  # first step of the ramp: 1/10
    assert lr_factor(4, cfg, 110) == pytest.approx(0.5)
    assert lr_factor(10, cfg, 110) == pytest.approx(1.0)  # top of the cosine
    assert lr_factor(60, cfg, 110) == pytest.approx(0.1 + 0.9 * 0.5)  # half way: (1 + cos(pi/2)) / 2
    assert lr_factor(110, cfg, 110) == pytest.approx(0.1)  # the floor
    assert lr_factor(500, cfg, 110) == pytest.approx(0.1)
    exp = load_experiment_config(PIPELINES / "small.yaml", ["optim.warmup_steps=0", "optim.schedule=exponential",
                                                            "optim.decay_rate=0.5", "optim.decay_steps=100"]).optim
    assert lr_factor(0, exp, 1000) == 1.0 and lr_factor(200, exp, 1000) == pytest.approx(0.25)
    assert lr_factor(50, exp, 1000) == pytest.approx(math.sqrt(0.5))
