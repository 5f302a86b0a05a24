"""Adam and the learning-rate schedule: linear warm-up, then cosine or exponential decay.

    lr(step) = lr * min(1, (step + 1) / warmup) * decay(step)

cosine:      decay goes from 1 at the end of warm-up to min_lr_ratio at train.max_steps
exponential: decay = decay_rate ** ((step - warmup) / decay_steps)
constant:    decay = 1

The schedule is a LambdaLR over a plain function, so its state dict holds only
numbers (checkpoints load with weights_only=True).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["lr_factor", "build_optimizer", "build_scheduler"]


def lr_factor(step: int, optim_cfg, max_steps: int) -> float:
    """The multiplier of optim.lr for optimiser step `step` (0-based)."""
    warm = optim_cfg.warmup_steps
    ramp = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
    after = max(0, step - warm)
    if optim_cfg.schedule == "cosine":
        span = max(1, max_steps - warm)
        progress = min(1.0, after / span)
        floor = optim_cfg.min_lr_ratio
        decay = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    elif optim_cfg.schedule == "exponential":
        decay = optim_cfg.decay_rate ** (after / optim_cfg.decay_steps)
    else:
        decay = 1.0
    return ramp * decay


def build_optimizer(model: nn.Module, optim_cfg) -> torch.optim.Adam:
    params = [p for p in model.parameters() if p.requires_grad]
    kind = torch.optim.AdamW if optim_cfg.weight_decay > 0 else torch.optim.Adam
    return kind(params, lr=optim_cfg.lr, betas=tuple(optim_cfg.betas), eps=optim_cfg.eps,
                weight_decay=optim_cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, optim_cfg, max_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, optim_cfg, max_steps))
