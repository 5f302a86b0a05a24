"""The unit-LM experiment config: model + data + optimiser + training loop, one YAML file.

    model:  UnitLMConfig   (speechunits/lm/models.py)
    data:   LMDataConfig   the unit files, token level, crops, batches
    optim:  OptimConfig    (speechunits/train/config.py), LM defaults below
    train:  TrainConfig    (speechunits/train/config.py), LM defaults below

    cfg = lm_config_from_dict({}, ["data.train_units=units/train", "model.kind=lstm"])

The same conventions as the autoencoder's ExperimentConfig: overrides are dotted
`section.key=value`, every value a run used is saved in EXP/config.yaml and in
each checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable

from speechunits.config import from_dict, load_yaml, override_mapping, to_dict
from speechunits.errors import ConfigError, SpeechUnitsError
from speechunits.lm.models import UnitLMConfig
from speechunits.train.config import OptimConfig, TrainConfig

__all__ = ["LMDataConfig", "LMExperimentConfig", "lm_config_from_dict", "load_lm_config", "LEVELS"]

LEVELS = ("units", "frames")


@dataclass
class LMDataConfig:
    """Where the units are and how batches are cut from them.

    level: "units" = one token per unit (repeats merged, as units.txt), "frames" = one
    token per latent frame (each unit repeated for its duration). frame_shift: seconds
    per latent frame, filled from the unit file (0 when it does not say).
    """

    train_units: str = ""  # units.jsonl, units.txt (+ durations.txt) or an extract output folder
    dev_units: str = ""  # empty: hold out dev_fraction of the training utterances
    dev_fraction: float = 0.05
    dev_max_utts: int = 200
    level: str = "units"
    crop_tokens: int = 256  # training crops: tokens per example (context length in training)
    batch_size: int = 16
    frame_shift: float = 0.0

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ConfigError(f"data.level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if not 0.0 <= self.dev_fraction < 1.0:
            raise ConfigError(f"data.dev_fraction must be in [0, 1), got {self.dev_fraction}")
        if self.crop_tokens < 2 or self.batch_size < 1:
            raise ConfigError("data.crop_tokens must be >= 2 and data.batch_size >= 1")


def _lm_optim() -> OptimConfig:
    return OptimConfig(lr=1e-3, warmup_steps=100, weight_decay=0.0)


def _lm_train() -> TrainConfig:
    return TrainConfig(max_steps=2000, log_every=25, eval_every=250, checkpoint_every=500, keep_checkpoints=2)


@dataclass
class LMExperimentConfig:
    model: UnitLMConfig = field(default_factory=UnitLMConfig)
    data: LMDataConfig = field(default_factory=LMDataConfig)
    optim: OptimConfig = field(default_factory=_lm_optim)
    train: TrainConfig = field(default_factory=_lm_train)

    def to_dict(self) -> dict:
        return to_dict(self)


SECTIONS = {"model": UnitLMConfig, "data": LMDataConfig, "optim": OptimConfig, "train": TrainConfig}


def lm_config_from_dict(data: dict | None, overrides: Iterable[str] = (), where: str = "LM config") -> LMExperimentConfig:
    """An LMExperimentConfig from a mapping (a YAML file, a checkpoint's "config") plus
    dotted overrides ("model.kind=lstm", "data.level=frames"). Sections missing from
    the mapping get the LM defaults (not the autoencoder's)."""
    try:
        data = override_mapping(data, overrides, SECTIONS)
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise KeyError(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
        defaults = LMExperimentConfig()
        sections = {}
        for name, cls in SECTIONS.items():
            given = data.get(name)
            if given is not None and not isinstance(given, dict):
                raise ConfigError(f"section {name}: expected a mapping, got {type(given).__name__}")
            merged = {**to_dict(getattr(defaults, name)), **(given or {})}
            sections[name] = from_dict(cls, merged, where=name)
    except (KeyError, ValueError, TypeError) as e:
        raise SpeechUnitsError(f"{where}: {e.args[0] if e.args else e}") from None
    return LMExperimentConfig(**sections)


def load_lm_config(yaml_path: str | os.PathLike, overrides: Iterable[str] = ()) -> LMExperimentConfig:
    try:
        data = load_yaml(yaml_path)
    except FileNotFoundError:
        raise SpeechUnitsError(f"{yaml_path}: config file not found") from None
    except Exception as e:  # yaml syntax errors
        raise SpeechUnitsError(f"{yaml_path}: cannot read config: {e}") from None
    return lm_config_from_dict(data, overrides, where=str(yaml_path))
