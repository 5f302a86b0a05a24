"""Reading checkpoints, and the trained model for inference (extract, resynth, probe).

    path = resolve_checkpoint("exp/x")                 # exp/x/best.pt, else exp/x/last.pt
    ckpt = load_checkpoint("exp/x/last.pt")            # dict, torch.load(weights_only=True)
    bundle = load_model("exp/x", device="cuda")        # ModelBundle: model in eval mode + its input features

A checkpoint is one torch file of plain data (tensors, numbers, strings, lists,
dicts), so loading never unpickles code: `torch.load(weights_only=True)` refuses
anything else. Keys: "version", "model" (the state_dict), "config" (the experiment
config as a dict: sections model, data, optim, train), "step", "epoch", and for
exact resume "optimizer", "scheduler", "scaler", "trainer_state". The training
engine writes them (save_checkpoint in train/checkpoint.py; this module never
imports it) and reads them back through load_checkpoint to resume; unit LMs use
the same files (speechunits/lm/checkpoint.py).

Rebuilding the model needs two sections of the config only: "model" (an
AutoencoderConfig, speechunits/models/autoencoder.py) and "data.input_features"
(how the model's input was computed from audio, a FeaturePipelineConfig,
speechunits/frontends/pipeline.py). Neither needs the training code.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from speechunits.errors import SpeechUnitsError
from speechunits.frontends.pipeline import FeaturePipelineConfig, pipeline_config_from_dict
from speechunits.models.autoencoder import SpeechAutoencoder, build_model, model_config_from_dict

log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_VERSION",
    "CHECKPOINT_NAMES",
    "ModelBundle",
    "resolve_checkpoint",
    "load_checkpoint",
    "load_model",
]

CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("version", "model", "config", "step")
CHECKPOINT_NAMES = ("best.pt", "last.pt")  # what an experiment dir is read through, in this order


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or an experiment dir (its best.pt, else last.pt)."""
    path = Path(path)
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            if (path / name).is_file():
                return path / name
        raise SpeechUnitsError(f"{path}: experiment dir has no best.pt or last.pt")
    if not path.is_file():
        raise SpeechUnitsError(f"{path}: checkpoint not found")
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The checkpoint dict (see the module docstring); plain data only (weights_only=True)."""
    path = resolve_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated, corrupt, not a torch file, or pickled objects
        raise SpeechUnitsError(f"{path}: cannot read checkpoint: {e}") from e
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise SpeechUnitsError(f"{path}: not a speechunits checkpoint (needs keys {', '.join(REQUIRED_KEYS)})")
    if int(ckpt["version"]) > CHECKPOINT_VERSION:
        raise SpeechUnitsError(
            f"{path}: checkpoint version {ckpt['version']} is newer than this code ({CHECKPOINT_VERSION})"
        )
    return ckpt


@dataclass
class ModelBundle:
    """A trained autoencoder, ready for inference.

    model: SpeechAutoencoder in eval mode on the requested device (its config: model.cfg).
    input_features: how to compute the model's input from audio (FeaturePipelineConfig;
        None when the run did not record it, data.input_features).
    step: the training step of the checkpoint.
    config: the run's experiment config as plain data (sections model, data, optim, train).
    path: the checkpoint file read."""

    model: SpeechAutoencoder
    input_features: FeaturePipelineConfig | None
    step: int
    config: dict
    path: Path


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> ModelBundle:
    """Rebuild the autoencoder of a checkpoint (or an experiment dir: best.pt, else last.pt)."""
    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path, map_location="cpu")
    config = ckpt["config"]
    where = f"{path}: config"
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise SpeechUnitsError(f"{where}: no model section")
    data = config.get("data") or {}
    if not isinstance(data, dict):
        raise SpeechUnitsError(f"{where}: section data: expected a mapping, got {type(data).__name__}")
    if "train_units" in data:
        raise SpeechUnitsError(f"{path}: a unit-LM checkpoint, not an autoencoder (speechunits lm reads it)")
    model_cfg = model_config_from_dict(config["model"], where=f"{where}: model")
    try:
        pipeline = pipeline_config_from_dict(data.get("input_features"), where="data.input_features")
    except (KeyError, ValueError, TypeError) as e:
        raise SpeechUnitsError(f"{where}: {e.args[0] if e.args else e}") from None
    model = build_model(model_cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise SpeechUnitsError(f"{path}: weights do not match the saved config: {e}") from e
    model.to(device).eval()
    if pipeline is None:
        log.warning("%s: the run did not record its input features (data.input_features)", path)
    return ModelBundle(model=model, input_features=pipeline, step=int(ckpt["step"]), config=config, path=path)
