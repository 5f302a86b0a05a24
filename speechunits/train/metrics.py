"""Where training scalars go: EXP/metrics.jsonl always, TensorBoard when installed.

One JSON object per line and event: {"step": 100, "split": "train", "loss": ..., ...}.
"split" says what the scalars are:

    train        means over the last train.log_every steps: loss, recon, bottleneck
                 losses and batch statistics, grad_norm, lr, epoch, audio_per_second
    dev          an evaluation: loss, recon and bottleneck losses, latent usage
                 (recon_true / recon_zero / recon_shuffled, gap_zero, gap_shuffled),
                 code usage on the dev set (perplexity, used_codes, ...), best_loss
    epoch        code usage of the training batches over an epoch (since the last
                 evaluation if one fell inside it)
    train_usage  the same, at an evaluation (since the epoch start or previous evaluation)
    final        wall_seconds and audio_seconds of the run

On resume the lines logged after the checkpoint's step are dropped, so the file
reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from speechunits.fileio import write_lines

log = logging.getLogger(__name__)

__all__ = ["MetricsLog", "read_metrics"]


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / Inf
    return value


class MetricsLog:
    def __init__(self, exp_dir: str | os.PathLike, tensorboard: bool = True):
        self.path = Path(exp_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional extra: pip install 'speechunits[tensorboard]'
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(str(Path(exp_dir) / "tensorboard"))
        self._file = None

    def truncate_after(self, step: int) -> None:
        """Drop events logged after `step` (they belong to the part of a run that was lost)."""
        if not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:  # a line cut by the interruption
                continue
        write_lines(self.path, keep)

    def write(self, step: int, split: str, scalars: dict) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        record = {"step": int(step), "split": split, **{k: _clean(v) for k, v in scalars.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in scalars.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(exp_dir: str | os.PathLike, split: str | None = None) -> list[dict]:
    """The events of EXP/metrics.jsonl (optionally of one split)."""
    path = Path(exp_dir) / "metrics.jsonl"
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if split is None or record.get("split") == split:
            out.append(record)
    return out
