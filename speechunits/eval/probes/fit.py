"""Training one probe: Adam on minibatches of frames, early stopping on a dev set.

    probe = fit_probe("linear", "classification", x_tr, y_tr, x_dev, y_dev, out_dim=40,
                      config=ProbeTrainConfig(), seed=0)
    pred = probe.predict(x_test)               # (N,) class ids, or (N, D) regression outputs

After every epoch (one pass over the training frames, reshuffled) the mean dev loss
is measured; the weights of the best epoch so far are kept, and training stops
after `patience` epochs without an improvement of more than `min_delta` (or at
`max_epochs`). The returned probe carries the best epoch's weights. Without dev
frames it trains for max_epochs and keeps the last weights.

Regression targets are z-scored with the training statistics for the loss (so all
80 filterbank bins weigh the same), and predictions are mapped back.

Seeded and deterministic: weight initialisation, dropout and the shuffling all draw
from RNGs seeded with `seed`, inside torch.random.fork_rng, so the caller's global
RNG state is left as it was.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from speechunits.eval.probes.heads import HeadConfig, build_head
from speechunits.errors import ConfigError

__all__ = ["ProbeTrainConfig", "Probe", "fit_probe", "TASKS"]

TASKS = ("classification", "regression")


@dataclass
class ProbeTrainConfig:
    """Optimiser and stopping rule of every probe."""

    lr: float = 5e-3
    weight_decay: float = 0.0
    batch_size: int = 1024  # frames per step
    max_epochs: int = 20
    patience: int = 2  # epochs without dev improvement before stopping
    min_delta: float = 1e-4  # an improvement is a dev loss lower by more than this
    head: HeadConfig = field(default_factory=HeadConfig)


@dataclass
class Probe:
    """A trained probe. history: per epoch {"epoch", "train_loss", "dev_loss"}."""

    head: nn.Module
    task: str
    target_mean: Tensor | None
    target_std: Tensor | None
    history: list[dict]
    best_epoch: int
    epochs: int
    stopped_early: bool

    @torch.no_grad()
    def outputs(self, x: Tensor, batch_size: int = 4096) -> Tensor:
        """Raw head outputs (logits, or regression outputs on the original scale): (N, D) -> (N, C)."""
        self.head.eval()
        device = next(self.head.parameters()).device
        parts = [self.head(x[i : i + batch_size].to(device, torch.float32)) for i in range(0, x.shape[0], batch_size)]
        out = torch.cat(parts) if parts else torch.zeros(0, self.head_out_dim, device=device)
        if self.task == "regression":
            out = out * self.target_std + self.target_mean
        return out

    @property
    def head_out_dim(self) -> int:
        return [m for m in self.head.modules() if isinstance(m, nn.Linear)][-1].out_features

    def predict(self, x: Tensor) -> Tensor:
        """(N, D) -> (N,) class ids (classification) or (N, C) values (regression)."""
        out = self.outputs(x)
        return out.argmax(-1) if self.task == "classification" else out


def _loss(task: str, out: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(out, y) if task == "classification" else F.mse_loss(out, y)


@torch.no_grad()
def _mean_loss(head: nn.Module, task: str, x: Tensor, y: Tensor, batch_size: int = 4096) -> float:
    head.eval()
    total = 0.0
    for i in range(0, x.shape[0], batch_size):
        out = head(x[i : i + batch_size])
        total += float(_loss(task, out, y[i : i + batch_size])) * out.shape[0]
    return total / max(1, x.shape[0])


def fit_probe(
    head_name: str,
    task: str,
    x_train: Tensor,
    y_train: Tensor,
    x_dev: Tensor | None,
    y_dev: Tensor | None,
    out_dim: int,
    config: ProbeTrainConfig | None = None,
    seed: int = 0,
) -> Probe:
    """Train a `head_name` probe: x (N, D) float; y (N,) long class ids or (N, C) float.

    The probe lives on x_train's device."""
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    cfg = config or ProbeTrainConfig()
    device = x_train.device
    x_train = x_train.float()
    if x_train.shape[0] == 0:
        raise ConfigError("no training frames")
    has_dev = x_dev is not None and y_dev is not None and x_dev.shape[0] > 0
    mean = std = None
    if task == "regression":
        y_train = y_train.float()
        mean = y_train.mean(0)
        std = y_train.std(0, unbiased=False).clamp_min(1e-5)
        y_train = (y_train - mean) / std
        if has_dev:
            y_dev = (y_dev.float() - mean) / std
    if has_dev:
        x_dev = x_dev.float()

    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        head = build_head(head_name, x_train.shape[1], out_dim, cfg.head).to(device)
        head.norm.fit(x_train)
        opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        shuffle = torch.Generator().manual_seed(seed)
        history: list[dict] = []
        best, best_state, best_epoch, bad = math.inf, None, 0, 0
        stopped = False
        n = x_train.shape[0]
        for epoch in range(1, cfg.max_epochs + 1):
            head.train()
            order = torch.randperm(n, generator=shuffle).to(device)
            total = 0.0
            for i in range(0, n, cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                loss = _loss(task, head(x_train[idx]), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            record = {"epoch": epoch, "train_loss": total / n}
            if has_dev:
                dev = _mean_loss(head, task, x_dev, y_dev)
                record["dev_loss"] = dev
                if dev < best - cfg.min_delta:
                    best, best_epoch, bad = dev, epoch, 0
                    best_state = copy.deepcopy(head.state_dict())
                else:
                    bad += 1
            history.append(record)
            if has_dev and bad >= cfg.patience:
                stopped = True
                break
        if best_state is not None:
            head.load_state_dict(best_state)
        else:
            best_epoch = len(history)
    head.eval()
    return Probe(head, task, mean, std, history, best_epoch, len(history), stopped)

