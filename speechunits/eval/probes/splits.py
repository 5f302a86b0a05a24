"""Train / dev / test splits of utterances for probing, seeded.

- utterance split: every speaker's utterances are shuffled and dealt into test,
  dev and train, so test utterances are unseen but every speaker is seen in
  training (what speaker identification needs). A speaker with fewer than 3
  utterances goes wholly to train.
- speaker split: a share of the speakers (at least one) is held out for test; the
  dev utterances are drawn from the training speakers. Phone probes on it measure
  how well the phone information generalises to voices the probe never saw.

The dev set is for early stopping only (held-out utterances of the training part).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from speechunits.errors import SpeechUnitsError

__all__ = ["Split", "utterance_split", "speaker_split", "SPLITS", "stable_seed"]

SPLITS = ("utterance", "speaker")


def stable_seed(seed: int, *names: str) -> int:
    """A seed derived from `seed` and names, the same in every process (unlike hash())."""
    return (int(seed) * 1_000_003 + zlib.crc32("/".join(names).encode())) % (2**31 - 1)


@dataclass
class Split:
    """Sorted utterance lists; `kind` is "utterance" or "speaker"."""

    kind: str
    train: list[str]
    dev: list[str]
    test: list[str]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "train": len(self.train), "dev": len(self.dev), "test": len(self.test)}


def _deal(utts: list[str], rng: np.random.Generator, test_fraction: float, dev_fraction: float):
    utts = sorted(utts)
    order = [utts[i] for i in rng.permutation(len(utts))]
    n = len(order)
    if n < 3:
        return [], [], order
    n_test = max(1, int(round(test_fraction * n))) if test_fraction > 0 else 0
    n_dev = max(1, int(round(dev_fraction * n))) if dev_fraction > 0 else 0
    n_test = min(n_test, n - 1 - (n_dev > 0))
    n_dev = min(n_dev, n - 1 - n_test)
    return order[:n_test], order[n_test : n_test + n_dev], order[n_test + n_dev :]


def utterance_split(
    utt2spk: Mapping[str, str], test_fraction: float = 0.2, dev_fraction: float = 0.1, seed: int = 0
) -> Split:
    """Utterance-disjoint, stratified by speaker (see the module docstring)."""
    rng = np.random.default_rng(stable_seed(seed, "utterance-split"))
    spk2utt: dict[str, list[str]] = {}
    for u, s in utt2spk.items():
        spk2utt.setdefault(s, []).append(u)
    train, dev, test = [], [], []
    for spk in sorted(spk2utt):
        te, de, tr = _deal(spk2utt[spk], rng, test_fraction, dev_fraction)
        test += te
        dev += de
        train += tr
    if not test or not train:
        raise SpeechUnitsError(f"utterance split: too few utterances ({len(utt2spk)}) for a train and a test part")
    return Split("utterance", sorted(train), sorted(dev), sorted(test))


def speaker_split(
    utt2spk: Mapping[str, str], test_fraction: float = 0.25, dev_fraction: float = 0.1, seed: int = 0
) -> Split:
    """Speaker-disjoint test set; dev = held-out utterances of the training speakers."""
    speakers = sorted(set(utt2spk.values()))
    if len(speakers) < 2:
        raise SpeechUnitsError("speaker split: needs at least two speakers")
    rng = np.random.default_rng(stable_seed(seed, "speaker-split"))
    n_test = min(len(speakers) - 1, max(1, int(round(test_fraction * len(speakers)))))
    test_spk = {speakers[i] for i in rng.permutation(len(speakers))[:n_test]}
    test = sorted(u for u, s in utt2spk.items() if s in test_spk)
    rest = sorted(u for u, s in utt2spk.items() if s not in test_spk)
    order = [rest[i] for i in rng.permutation(len(rest))]
    n_dev = min(len(order) - 1, max(1, int(round(dev_fraction * len(order))))) if dev_fraction > 0 else 0
    return Split("speaker", sorted(order[n_dev:]), sorted(order[:n_dev]), test)
