"""Shared test set-up: few threads (CI has 2 cores), deterministic torch, the shared data."""

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------- shared data
# The shared corpora and reference problems live beside the repository, in ../shared
# (a clone anywhere works, with shared/ next to it). Tests reach them only through the
# `shared` fixture. Under CI=true a missing corpus or reference fails the test (a check
# CI believes it ran must run); elsewhere it is skipped with the reason.

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


class SharedData:
    """Paths into ../shared that exist, or a failed (CI) / skipped (elsewhere) test."""

    SPEECHOCEAN762 = "corpora/speechocean762-train"  # 125 speakers, 2,500 utterances (FLAC)
    ABX_REFERENCE = "reference/abx-synthetic"  # gen_synth.py + EXPECTED.md (fastabx 0.9 scores)

    def __init__(self, root: Path):
        self.root = root

    def path(self, rel: str, *needed: str) -> Path:
        """ROOT/rel, after checking that it (and each of `needed` inside it) exists."""
        where = self.root / rel
        missing = [str(where / n) for n in needed if not (where / n).exists()] if where.is_dir() else [str(where)]
        if missing:
            reason = f"shared data not found: {', '.join(missing)} (expected ../shared beside the repository)"
            if IN_CI:
                pytest.fail(f"{reason}; CI=true, so this check must run", pytrace=False)
            pytest.skip(reason)
        return where

    def speechocean762(self) -> Path:
        """The speechocean762 train split (Kaldi-style tables; wav.scp paths relative to it)."""
        return self.path(self.SPEECHOCEAN762, "wav.scp", "utt2spk", "spk2utt", "text", "text-phone",
                         "lexicon.txt", "spk2gender", "spk2age", "audio")  # fmt: skip

    def abx_reference(self) -> Path:
        """The ABX reference problem: gen_synth.py regenerates it, EXPECTED.md holds fastabx's scores."""
        return self.path(self.ABX_REFERENCE, "gen_synth.py", "EXPECTED.md")


@pytest.fixture(scope="session")
def shared() -> SharedData:
    return SharedData(SHARED)
