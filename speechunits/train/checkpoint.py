"""Checkpoints: a state dict plus the resolved experiment config, in one torch file.

    save_checkpoint("exp/x/last.pt", model=model, config=cfg, step=1000, epoch=3,
                    optimizer=opt, scheduler=sched, scaler=scaler, trainer_state=state)
    ckpt = load_checkpoint("exp/x/last.pt")            # dict, torch.load(weights_only=True)
    loaded = load_model("exp/x/best.pt", device="cuda")  # model in eval mode + its config

The file is written to a temporary name beside the target and renamed (an
interrupted write never leaves a file that looks finished). Everything inside is
plain data (tensors, numbers, strings, lists, dicts), so loading never unpickles
code: `torch.load(weights_only=True)`.

Keys: "version", "model" (state_dict), "config" (ExperimentConfig as a dict),
"step", "epoch", "optimizer", "scheduler", "scaler" (their state dicts or None),
"trainer_state" (RNG states, sampler position, best dev loss; see trainer.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from speechunits.config import to_dict
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import save_torch
from speechunits.train.config import ExperimentConfig, experiment_config_from_dict

log = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_VERSION", "save_checkpoint", "load_checkpoint", "load_model", "LoadedModel", "resolve_checkpoint"]

CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("version", "model", "config", "step")


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel (or similar `.module`) wrapper."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    config: ExperimentConfig | dict,
    step: int,
    epoch: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    scaler=None,
    trainer_state: dict | None = None,
) -> None:
    """Write a checkpoint atomically (tmp + rename). `model` may be DDP-wrapped."""
    state = {
        "version": CHECKPOINT_VERSION,
        "model": unwrap(model).state_dict(),
        "config": config if isinstance(config, dict) else to_dict(config),
        "step": int(step),
        "epoch": int(epoch),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "trainer_state": trainer_state,
    }
    save_torch(path, state)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or an experiment dir (its best.pt, else last.pt)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
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
    except Exception as e:  # truncated, corrupt or not a torch file
        raise SpeechUnitsError(f"{path}: cannot read checkpoint: {e}") from e
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise SpeechUnitsError(f"{path}: not a speechunits checkpoint (needs keys {', '.join(REQUIRED_KEYS)})")
    if int(ckpt["version"]) > CHECKPOINT_VERSION:
        raise SpeechUnitsError(
            f"{path}: checkpoint version {ckpt['version']} is newer than this code ({CHECKPOINT_VERSION})"
        )
    return ckpt


@dataclass
class LoadedModel:
    """model: SpeechAutoencoder in eval mode on the requested device; config: the run's
    ExperimentConfig; input_features: how to compute the model's input from audio
    (FeaturePipelineConfig; None when the run did not record it); step: training step."""

    model: nn.Module
    config: ExperimentConfig
    input_features: object | None
    step: int


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model from a checkpoint (or an experiment dir) for inference."""
    from speechunits.models.autoencoder import build_model

    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path, map_location="cpu")
    config = experiment_config_from_dict(ckpt["config"], where=f"{path}: config")
    model = build_model(config.model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise SpeechUnitsError(f"{path}: weights do not match the saved config: {e}") from e
    model.to(device).eval()
    pipeline = config.data.input_pipeline()
    if pipeline is None:
        log.warning("%s: the run did not record its input features (data.input_features)", path)
    return LoadedModel(model=model, config=config, input_features=pipeline, step=int(ckpt["step"]))
