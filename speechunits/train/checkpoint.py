"""Writing checkpoints: a state dict plus the resolved experiment config, in one torch file.

    save_checkpoint("exp/x/last.pt", model=model, config=cfg, step=1000, epoch=3,
                    optimizer=opt, scheduler=sched, scaler=scaler, trainer_state=state)

The file is written to a temporary name beside the target and renamed (an
interrupted write never leaves a file that looks finished). Everything inside is
plain data (tensors, numbers, strings, lists, dicts), so loading never unpickles
code. Reading lives with the models, so inference never imports the training code
(speechunits/models/checkpoint.py: resolve_checkpoint, load_checkpoint, load_model);
the trainer reads its resume checkpoints through the same load_checkpoint.

Keys: "version", "model" (state_dict), "config" (ExperimentConfig as a dict),
"step", "epoch", "optimizer", "scheduler", "scaler" (their state dicts or None),
"trainer_state" (RNG states, sampler position, best dev loss; see trainer.py).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from speechunits.config import to_dict
from speechunits.fileio import save_torch
from speechunits.models.checkpoint import CHECKPOINT_VERSION, load_checkpoint, resolve_checkpoint
from speechunits.train.config import ExperimentConfig

__all__ = ["CHECKPOINT_VERSION", "save_checkpoint", "unwrap", "load_checkpoint", "resolve_checkpoint"]


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
