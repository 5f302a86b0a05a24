"""Tiny unit corpora for the LM tests."""

from __future__ import annotations

import numpy as np
import pytest

from speechunits.units.formats import UnitSequence, write_units


def tiny_corpus(n: int = 24, vocab: int = 6, seed: int = 0) -> dict[str, UnitSequence]:
    """Utterances that cycle 0 1 2 ... (a deterministic pattern an LM can learn), random lengths/durations."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        length = int(rng.integers(5, 15))
        start = int(rng.integers(0, vocab))
        units = (start + np.arange(length)) % vocab
        durs = rng.integers(1, 5, size=length)
        utt = f"spk{i % 3}-{i:04d}"
        out[utt] = UnitSequence(utt, units.astype(np.int64), durs.astype(np.int64), 0.02)
    return out


@pytest.fixture
def unit_dir(tmp_path):
    seqs = tiny_corpus()
    write_units(tmp_path / "units", seqs)
    return tmp_path / "units"
