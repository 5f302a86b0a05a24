"""Load a trained unit LM: a checkpoint file or an experiment dir (best.pt, else last.pt).

    lm = load_lm("exp/lm")          # LoadedLM: model (eval mode), config, step
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from speechunits.errors import SpeechUnitsError
from speechunits.lm.config import LMExperimentConfig, lm_config_from_dict
from speechunits.lm.models import UnitLM, build_lm
from speechunits.models.checkpoint import load_checkpoint, resolve_checkpoint

__all__ = ["LoadedLM", "load_lm", "is_lm_checkpoint"]


@dataclass
class LoadedLM:
    model: UnitLM
    config: LMExperimentConfig
    step: int
    path: str


def load_lm(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedLM:
    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path)
    config = lm_config_from_dict(ckpt["config"], where=f"{path}: config")
    if not config.model.vocab_size:
        raise SpeechUnitsError(f"{path}: not a unit-LM checkpoint (no model.vocab_size)")
    model = build_lm(config.model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise SpeechUnitsError(f"{path}: weights do not match the saved config: {e}") from e
    model.to(device).eval()
    return LoadedLM(model, config, int(ckpt["step"]), str(path))


def is_lm_checkpoint(path: str | os.PathLike) -> bool:
    """True when `path` (file or experiment dir) holds a unit-LM checkpoint (its config has LM data keys)."""
    try:
        ckpt = load_checkpoint(path)
    except SpeechUnitsError:
        return False
    return "train_units" in (ckpt.get("config", {}).get("data") or {})
