"""Shared set-up of the recipe smoke tests: a tiny synthetic corpus, tiny training
settings, and running a recipe as a subprocess with this environment's Python on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
EGS = REPO / "egs"

# A few steps of a tiny model: the smoke tests check the plumbing, not the learning.
TINY_TRAIN = " ".join([
    "train.max_steps=3", "train.log_every=1", "train.eval_every=0", "train.checkpoint_every=0",
    "optim.warmup_steps=1", "data.batch_size=4", "data.crop_seconds=1.0", "data.dev_fraction=0.2",
    "model.encoder.channels=32", "model.conditioning.channels=16", "model.conditioning.speaker_dim=8",
    "model.decoder_cfg.channels=32", "model.decoder_cfg.layers=1", "model.bottleneck_cfg.dim=16",
    "model.bottleneck_cfg.codebook.size=16", "model.bottleneck_cfg.codebook.kmeans_batches=1",
])  # fmt: skip


def make_synthetic(out: Path, minutes: float = 1.0, speakers: int = 4, seed: int = 0) -> Path:
    """A synthetic espeak corpus (exact alignments) in `out`; returns `out`."""
    from speechunits.cli import main

    status = main(["prepare", "synthetic", str(out), "--minutes", str(minutes), "--speakers", str(speakers),
                   "--test-speakers", "2", "--seed", str(seed)])  # fmt: skip
    assert status == 0
    return out


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(path), dtype="float32")
    return x, sr


def run_recipe(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`bash egs/NAME/run.sh ARGS` from an unrelated cwd, this Python's bin folder first on PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    return subprocess.run(["bash", str(EGS / name / "run.sh"), *args], capture_output=True, text=True,
                          env=env, cwd="/", timeout=timeout)  # fmt: skip


def check_ok(result: subprocess.CompletedProcess) -> str:
    """The recipe's log (stderr + stdout), after asserting it succeeded."""
    text = result.stderr + result.stdout
    assert result.returncode == 0, text[-4000:]
    return text
