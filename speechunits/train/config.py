"""The experiment config: model + data + optimiser + training loop, one YAML file.

    model:  AutoencoderConfig  (speechunits/models/autoencoder.py)
    data:   DataConfig         where the training / dev data and features are, crops, batches
    optim:  OptimConfig        Adam, learning-rate schedule, gradient clipping
    train:  TrainConfig        steps, seed, AMP, logging / evaluation / checkpoint cadence

    cfg = load_experiment_config("pipelines/small.yaml", ["optim.lr=1e-3", "data.train_dir=data/train"])

Overrides are applied to the raw YAML mapping before anything is checked, so a
dotted key can switch e.g. the bottleneck kind together with its settings. Every
section is completed with its defaults; `to_dict(cfg)` (saved as EXP/config.yaml
and inside every checkpoint) therefore lists every value a run used.

`model.input_dim` 0 (the default) means "from the input features": the trainer
takes it from `data.input_feats`'s meta.json (feature_dim) before the data is
opened (`resolve_input_dim`); any other value is checked against it there, and a
mismatch is an error. The saved config holds the resolved value.

`data.input_features` records how the model's input features were computed (a
FeaturePipelineConfig as a dict, e.g. 13 MFCC + deltas with per-utterance CMVN);
the trainer fills it from the input feature dir's meta.json when it is empty, so
unit extraction can compute the same features from raw audio later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable

from speechunits.config import from_dict, load_yaml, override_mapping, to_dict
from speechunits.errors import ConfigError, SpeechUnitsError
from speechunits.models.autoencoder import AutoencoderConfig, model_config_from_dict

__all__ = [
    "DataConfig",
    "OptimConfig",
    "TrainConfig",
    "ExperimentConfig",
    "load_experiment_config",
    "experiment_config_from_dict",
    "resolve_input_dim",
    "SCHEDULES",
    "AMP_MODES",
    "CPU_AMP_MODES",
]

SCHEDULES = ("cosine", "exponential", "constant")
AMP_MODES = ("none", "bf16", "fp16")
CPU_AMP_MODES = ("none", "bf16", "auto")  # no fp16 autocast on a CPU; auto: bf16 where the CPU has it natively


@dataclass
class DataConfig:
    """Where the data is and how batches are cut from it.

    Paths may be empty in a pipeline YAML (a recipe fills them on the command line:
    `data.train_dir=data/train data.input_feats=feats/train/mfcc_dd`).
    The target is the waveform (read through wav.scp) for a WaveNet decoder, or the
    frames of `target_feats` for the filterbank decoder.
    """

    train_dir: str = ""  # Kaldi data dir: wav.scp (+ segments), utt2spk
    input_feats: str = ""  # feature dir (or .scp) of the model input, e.g. feats/train/mfcc_dd
    target_feats: str = ""  # feature dir of the fbank decoder's target (e.g. 80 log-mel); unused by WaveNet
    dev_dir: str = ""  # dev data dir; empty: hold out dev_fraction of the training utterances
    dev_input_feats: str = ""
    dev_target_feats: str = ""
    extra_target_feats: list[str] = field(default_factory=list)  # more label dirs, one per extra cluster-decoder head (decoder_cfg.extra_classes)
    dev_extra_target_feats: list[str] = field(default_factory=list)  # the same for dev_dir
    dev_fraction: float = 0.05  # held-out fraction of training utterances when dev_dir is empty (0 = no dev)
    dev_max_utts: int = 200  # at most this many dev utterances are scored per evaluation
    input_features: dict = field(default_factory=dict)  # FeaturePipelineConfig as a dict (filled from meta.json)
    crop_seconds: float = 2.0  # random crop per utterance, rounded to a multiple of the encoder stride
    batch_size: int = 8  # utterances per batch (per process under DDP)
    cache: bool = True  # keep loaded features / decoded audio in memory
    base_dir: str = ""  # anchors relative wav.scp paths (default: the current directory)
    allow_pipes: bool = False  # allow `cmd |` entries in wav.scp
    resample: bool = False  # resample audio at another rate to the decoder's rate (else an error)

    def __post_init__(self):
        for key in ("extra_target_feats", "dev_extra_target_feats"):
            if not isinstance(getattr(self, key), (list, tuple)):
                raise ConfigError(f"data.{key} must be a list of label dirs, e.g. [exp/a/codes,exp/b/codes]")
        if not 0.0 <= self.dev_fraction < 1.0:
            raise ConfigError(f"data.dev_fraction must be in [0, 1), got {self.dev_fraction}")
        if self.crop_seconds <= 0:
            raise ConfigError(f"data.crop_seconds must be positive, got {self.crop_seconds}")
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {self.batch_size}")

    def input_pipeline(self):
        """`input_features` as a FeaturePipelineConfig, or None when unknown."""
        from speechunits.frontends.pipeline import pipeline_config_from_dict

        return pipeline_config_from_dict(self.input_features, where="data.input_features")


@dataclass
class OptimConfig:
    """Adam with linear warm-up then cosine or exponential decay; global-norm clipping."""

    lr: float = 4e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 1000  # linear ramp from 0 to lr
    schedule: str = "cosine"  # cosine | exponential | constant (after warm-up)
    min_lr_ratio: float = 0.05  # cosine: floor as a fraction of lr, reached at train.max_steps
    decay_rate: float = 0.5  # exponential: lr * decay_rate ** ((step - warmup) / decay_steps)
    decay_steps: int = 100000
    grad_clip: float = 1.0  # max global gradient norm (0 = no clipping)

    def __post_init__(self):
        self.betas = tuple(float(b) for b in self.betas)
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be positive, got {self.lr}")
        if self.warmup_steps < 0 or self.decay_steps < 1:
            raise ConfigError("optim.warmup_steps must be >= 0 and optim.decay_steps >= 1")


@dataclass
class TrainConfig:
    """The loop: how long, how often to log / evaluate / checkpoint, precision, seed."""

    seed: int = 0  # the one seed: sampler, crops, held-out split, torch / numpy / python RNGs
    max_steps: int = 200000
    max_epochs: int = 0  # stop after this many epochs too (0 = no limit)
    log_every: int = 50  # train scalars to metrics.jsonl / TensorBoard
    eval_every: int = 1000  # dev loss, latent usage, code usage (0 = only at the end)
    eval_batches: int = 0  # 0 = every dev batch (dev_max_utts bounds it)
    checkpoint_every: int = 5000  # EXP/checkpoints/step-N.pt (last.pt is written at the same time)
    keep_checkpoints: int = 5  # keep the K most recent step checkpoints (0 = keep all)
    amp: str = "bf16"  # autocast dtype on CUDA: none | bf16 | fp16 (fp16 uses a GradScaler)
    cpu_amp: str = "none"  # autocast dtype on a CPU: none | bf16 (about 2x faster where the CPU has AVX-512 BF16 or AMX, slower where it has not) | auto (bf16 where it has them)
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on CUDA)

    def __post_init__(self):
        if self.amp not in AMP_MODES:
            raise ConfigError(f"train.amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.cpu_amp not in CPU_AMP_MODES:
            raise ConfigError(f"train.cpu_amp must be one of {', '.join(CPU_AMP_MODES)}, got {self.cpu_amp!r}")
        if self.max_steps < 0:
            raise ConfigError(f"train.max_steps must be >= 0, got {self.max_steps}")


@dataclass
class ExperimentConfig:
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return to_dict(self)


SECTIONS = {"data": DataConfig, "optim": OptimConfig, "train": TrainConfig}


def experiment_config_from_dict(
    data: dict, overrides: Iterable[str] = (), where: str = "experiment config"
) -> ExperimentConfig:
    """An ExperimentConfig from a plain mapping (a YAML file, a checkpoint's "config")
    plus dotted overrides ("optim.lr=1e-3", "model.encoder.channels=64")."""
    try:
        data = override_mapping(data, overrides, ("model", *SECTIONS))
        unknown = sorted(set(data) - {"model", *SECTIONS})
        if unknown:
            raise KeyError(f"unknown section(s) {', '.join(unknown)}; known: model, data, optim, train")
        for name in ("model", *SECTIONS):
            if data.get(name) is not None and not isinstance(data[name], dict):
                raise ConfigError(f"section {name}: expected a mapping, got {type(data[name]).__name__}")
        model = model_config_from_dict(data.get("model") or {}, where=f"{where}: model")
        sections = {name: from_dict(cls, data.get(name) or {}, where=name) for name, cls in SECTIONS.items()}
    except (KeyError, ValueError, TypeError) as e:
        raise SpeechUnitsError(f"{where}: {e.args[0] if e.args else e}") from None
    return ExperimentConfig(model=model, **sections)


def load_experiment_config(yaml_path: str | os.PathLike, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """A pipeline YAML (pipelines/*.yaml, EXP/config.yaml) with dotted overrides applied."""
    try:
        data = load_yaml(yaml_path)
    except FileNotFoundError:
        raise SpeechUnitsError(f"{yaml_path}: config file not found") from None
    except Exception as e:  # yaml syntax errors
        raise SpeechUnitsError(f"{yaml_path}: cannot read config: {e}") from None
    return experiment_config_from_dict(data, overrides, where=str(yaml_path))


def resolve_input_dim(cfg: ExperimentConfig) -> ExperimentConfig:
    """`cfg` with model.input_dim 0 (unset) replaced by the feature_dim that the input
    features' meta.json records (data.input_feats). An explicit value is returned as is:
    opening the data checks it against meta.json (speechunits/train/data.py)."""
    if cfg.model.input_dim or not cfg.data.input_feats:
        return cfg  # missing paths are reported when the data is opened
    from speechunits.data.featdir import FeatureDir, open_feature_source

    source = open_feature_source(cfg.data.input_feats)
    dim = source.meta.get("feature_dim") if isinstance(source, FeatureDir) else None
    if dim is None:
        raise SpeechUnitsError(
            f"{cfg.data.input_feats}: model.input_dim is 0 (from the input features) but the features record no "
            "feature_dim (meta.json): set model.input_dim"
        )
    return experiment_config_from_dict(to_dict(cfg), [f"model.input_dim={int(dim)}"])
