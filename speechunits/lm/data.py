"""Unit files -> token sequences, training crops and padded batches for the unit LM.

    seqs = read_units("units/train")                       # {utt: UnitSequence}
    toks = to_tokens(seqs["spk01-0000"], vocab_size=64, level="units", max_duration=16)
    data = LMData.from_config(cfg.data, cfg.model, seed=0)   # train / dev TokenSets, summary
    batch = data.train.batch(BatchPlan([0, 5], [0.3, 0.9]))  # LMBatch: padded tensors

A sequence is [bos, u_1, ..., u_N] as input and [u_1, ..., u_N, end] as targets,
where bos = end = vocab_size. At level "units" u_i are the units with repeats
merged (durations travel as classes: min(d, max_duration) - 1); at level "frames"
one token per latent frame (duration 1 each). Training examples are crops of
`crop_tokens` positions, placed by the sampler's draws (the training engine's
EpochSampler, so resume is exact); dev examples are whole utterances, cut to the
model's context when it has one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from speechunits.errors import SpeechUnitsError
from speechunits.lm.models import IGNORE
from speechunits.train.data import BatchPlan
from speechunits.units.formats import UnitSequence, read_units

log = logging.getLogger(__name__)

__all__ = ["Tokens", "to_tokens", "LMBatch", "TokenSet", "LMData", "LMDataSummary", "vocab_size_of", "mean_durations"]


@dataclass
class Tokens:
    """One utterance as LM tokens. tokens: (N + 1,) int64 [bos, u_1..u_N]; targets:
    (N + 1,) [u_1..u_N, end]; dur_classes: (N + 1,) input duration classes (0 for bos);
    dur_targets: (N + 1,) the next unit's class (IGNORE for the end); frames: latent frames."""

    utt: str
    tokens: np.ndarray
    targets: np.ndarray
    dur_classes: np.ndarray
    dur_targets: np.ndarray
    frames: int

    def __len__(self) -> int:
        return int(self.tokens.size)


def duration_classes(durations: np.ndarray, max_duration: int) -> np.ndarray:
    """Durations in frames (>= 1) -> classes 0 .. max_duration - 1 (longer ones clipped)."""
    return np.clip(np.asarray(durations, dtype=np.int64), 1, max_duration) - 1


def unit_stream(seq: UnitSequence, level: str) -> tuple[np.ndarray, np.ndarray]:
    """(units, durations) at the token level: merged units, or one per latent frame."""
    if level == "frames":
        codes = seq.frame_codes()
        return codes, np.ones_like(codes)
    return np.asarray(seq.units, dtype=np.int64), np.asarray(seq.durations, dtype=np.int64)


def to_tokens(seq: UnitSequence, vocab_size: int, level: str = "units", max_duration: int = 16) -> Tokens:
    """A UnitSequence as LM tokens (see the module docstring); units outside the
    vocabulary are an error naming the utterance."""
    units, durs = unit_stream(seq, level)
    if units.size and (units.min() < 0 or units.max() >= vocab_size):
        bad = int(units[(units < 0) | (units >= vocab_size)][0])
        raise SpeechUnitsError(f"utterance {seq.utt}: unit {bad} is outside the LM's vocabulary 0..{vocab_size - 1}")
    bos = vocab_size
    classes = duration_classes(durs, max_duration)
    tokens = np.concatenate([[bos], units]).astype(np.int64)
    targets = np.concatenate([units, [bos]]).astype(np.int64)
    dur_in = np.concatenate([[0], classes + 1]).astype(np.int64)  # input classes: 0 = boundary, c + 1 = class c
    dur_t = np.concatenate([classes, [IGNORE]]).astype(np.int64)
    return Tokens(seq.utt, tokens, targets, dur_in, dur_t, int(durs.sum()))


def vocab_size_of(seqs: Mapping[str, UnitSequence]) -> int:
    top = max((int(s.units.max()) for s in seqs.values() if s.units.size), default=-1)
    return top + 1


def mean_durations(seqs: Sequence[UnitSequence], vocab_size: int) -> np.ndarray:
    """(V,) mean latent frames per merged unit (1 for units never seen)."""
    total = np.zeros(vocab_size)
    count = np.zeros(vocab_size)
    for s in seqs:
        u = np.asarray(s.units, dtype=np.int64)
        keep = u < vocab_size
        np.add.at(total, u[keep], np.asarray(s.durations)[keep])
        np.add.at(count, u[keep], 1)
    return np.where(count > 0, total / np.maximum(count, 1), 1.0)


@dataclass
class LMBatch:
    """tokens, targets, dur_classes, dur_targets: (B, T) long, right-padded (targets with
    IGNORE, inputs with bos / 0); lengths (B,); utts; seconds: speech the tokens cover."""

    tokens: Tensor
    targets: Tensor
    dur_classes: Tensor
    dur_targets: Tensor
    lengths: Tensor
    utts: list[str]
    seconds: float

    def to(self, device) -> "LMBatch":
        return LMBatch(self.tokens.to(device), self.targets.to(device), self.dur_classes.to(device),
                       self.dur_targets.to(device), self.lengths.to(device), self.utts, self.seconds)

    def model_inputs(self) -> dict[str, Tensor]:
        return {"tokens": self.tokens, "targets": self.targets, "dur_classes": self.dur_classes,
                "dur_targets": self.dur_targets}

    @property
    def audio_seconds(self) -> float:
        return self.seconds


def collate(items: Sequence[Tokens], starts: Sequence[int], length: int | None, pad: int, frame_shift: float) -> LMBatch:
    """Windows [start, start + length) of each item (whole items when length is None), padded."""
    cuts = []
    for it, a in zip(items, starts):
        b = len(it) if length is None else min(len(it), a + length)
        cuts.append((it, a, b))
    t = max(b - a for _, a, b in cuts)
    n = len(cuts)
    tokens = torch.full((n, t), pad, dtype=torch.long)
    targets = torch.full((n, t), IGNORE, dtype=torch.long)
    dur_in = torch.zeros((n, t), dtype=torch.long)
    dur_t = torch.full((n, t), IGNORE, dtype=torch.long)
    frames = 0
    for i, (it, a, b) in enumerate(cuts):
        tokens[i, : b - a] = torch.from_numpy(it.tokens[a:b])
        targets[i, : b - a] = torch.from_numpy(it.targets[a:b])
        dur_in[i, : b - a] = torch.from_numpy(it.dur_classes[a:b])
        dur_t[i, : b - a] = torch.from_numpy(it.dur_targets[a:b])
        frames += it.frames * (b - a) / max(1, len(it))
    lengths = torch.tensor([b - a for _, a, b in cuts], dtype=torch.long)
    return LMBatch(tokens, targets, dur_in, dur_t, lengths, [it.utt for it, _, _ in cuts], frames * frame_shift)


class TokenSet:
    """Token sequences with the training engine's batch interface: len(), batch(plan).
    crop: positions per training example (None: whole sequences, cut to max_len)."""

    def __init__(self, items: list[Tokens], crop: int | None, pad: int, frame_shift: float, max_len: int | None = None):
        self.items, self.crop, self.pad, self.frame_shift, self.max_len = items, crop, pad, frame_shift, max_len

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_tokens(self) -> int:
        return sum(len(it) for it in self.items)

    def batch(self, plan: BatchPlan) -> LMBatch:
        items = [self.items[i] for i in plan.indices]
        if self.crop is None:
            return collate(items, [0] * len(items), self.max_len, self.pad, self.frame_shift)
        starts = [int(math.floor(d * (max(0, len(it) - self.crop) + 1))) for it, d in zip(items, plan.draws)]
        starts = [min(s, max(0, len(it) - self.crop)) for s, it in zip(starts, items)]
        return collate(items, starts, self.crop, self.pad, self.frame_shift)


@dataclass
class LMDataSummary:
    train_utts: int = 0
    dev_utts: int = 0
    train_tokens: int = 0
    dev_tokens: int = 0
    vocab_size: int = 0
    level: str = "units"
    empty: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"train: {self.train_utts} utterances, {self.train_tokens} tokens; dev: {self.dev_utts} utterances, "
               f"{self.dev_tokens} tokens; {self.vocab_size} units, level {self.level}"]
        if self.empty:
            out.append(f"skipped {len(self.empty)} utterances without units: {', '.join(self.empty[:5])}"
                       f"{' ...' if len(self.empty) > 5 else ''}")
        return out


class LMData:
    """The training and dev TokenSets of a run (the trainer's `data`)."""

    def __init__(self, train: TokenSet, dev: TokenSet | None, summary: LMDataSummary, vocab_size: int,
                 frame_shift: float, mean_durations: np.ndarray):
        self.train, self.dev, self.summary = train, dev, summary
        self.vocab_size, self.frame_shift, self.mean_durations = vocab_size, frame_shift, mean_durations

    @classmethod
    def from_config(cls, data_cfg, model_cfg, seed: int = 0) -> "LMData":
        """Read data_cfg.train_units (and dev_units); vocab_size: model_cfg.vocab_size, else
        max unit id + 1 over the training (and dev) units."""
        from speechunits.train.data import held_out

        if not data_cfg.train_units:
            raise SpeechUnitsError("data.train_units is not set (a units.jsonl, units.txt or extract folder)")
        train_seqs = read_units(data_cfg.train_units)
        dev_seqs = read_units(data_cfg.dev_units) if data_cfg.dev_units else {}
        summary = LMDataSummary(level=data_cfg.level)
        summary.empty = sorted(u for u, s in {**train_seqs, **dev_seqs}.items() if s.units.size == 0)
        train_seqs = {u: s for u, s in train_seqs.items() if s.units.size}
        dev_seqs = {u: s for u, s in dev_seqs.items() if s.units.size}
        if not train_seqs:
            raise SpeechUnitsError(f"{data_cfg.train_units}: no utterance has units")
        if not dev_seqs and data_cfg.dev_fraction > 0 and len(train_seqs) > 1:
            dev_ids = held_out(sorted(train_seqs), data_cfg.dev_fraction, seed)
            dev_seqs = {u: train_seqs.pop(u) for u in dev_ids}
        if len(dev_seqs) > data_cfg.dev_max_utts:
            dev_seqs = {u: dev_seqs[u] for u in sorted(dev_seqs)[: data_cfg.dev_max_utts]}
        vocab = model_cfg.vocab_size or max(vocab_size_of(train_seqs), vocab_size_of(dev_seqs))
        shift = data_cfg.frame_shift or next((s.shift for s in train_seqs.values() if s.shift), 0.0) or 0.0
        md = model_cfg.max_duration

        def tokens(seqs):
            return [to_tokens(seqs[u], vocab, data_cfg.level, md) for u in sorted(seqs)]

        max_len = model_cfg.max_len if model_cfg.kind == "transformer" else None
        crop = min(data_cfg.crop_tokens, max_len) if max_len else data_cfg.crop_tokens
        train = TokenSet(tokens(train_seqs), crop, vocab, shift)
        dev = TokenSet(tokens(dev_seqs), None, vocab, shift, max_len) if dev_seqs else None
        summary.train_utts, summary.train_tokens = len(train), train.num_tokens
        summary.dev_utts, summary.dev_tokens = (len(dev), dev.num_tokens) if dev else (0, 0)
        summary.vocab_size = vocab
        means = mean_durations(list(train_seqs.values()), vocab)
        return cls(train, dev, summary, vocab, float(shift), means)
