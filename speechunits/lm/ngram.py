"""The n-gram baseline: an interpolated Kneser-Ney unit LM, scored like the neural ones.

    lm = NgramLM.fit(read_units("units/train").values(), order=4)      # vocabulary from the data
    lm.save("exp/lm/ngram.json"); lm = NgramLM.load("exp/lm/ngram.json")
    lm.score(read_units("units/test"))                                 # [UttScore]
    lm.prob(context=(3, 7), token=12)

Sequences are padded with order - 1 boundary tokens in front (bos = V) and end
with the same token (the end, predicted like a unit): V + 1 outcomes. Interpolated
Kneser-Ney (Chen & Goodman 1998, one discount per order):

    p_k(w | h) = max(c_k(h w) - D_k, 0) / c_k(h .)  +  D_k N1+(h .) / c_k(h .) * p_{k-1}(w | h')
    p_0(w)     = 1 / (V + 1)

where h' drops the oldest token of h; c_k is the raw count at the highest order and the
continuation count N1+(. h w) (distinct left neighbours) below it; a context never
seen (c_k(h .) = 0) falls through to p_{k-1}. D_k = n1 / (n1 + 2 n2) from the counts
of counts of order k (clipped to [0.1, 0.95]) unless `discount` fixes it. Every
p(. | h) sums to 1 over the V + 1 outcomes (tested).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from typing import Iterable, Mapping, Sequence

import numpy as np

from speechunits.errors import SpeechUnitsError
from speechunits.fileio import write_json
from speechunits.lm.data import unit_stream
from speechunits.lm.scoring import UttScore
from speechunits.units.formats import UnitSequence

__all__ = ["NgramLM"]


class NgramLM:
    """Counts of one order; see the module docstring. counts[k]: {context (k-1 tuple): {w: count}}
    for k = 1..order (raw at k = order, continuation counts below)."""

    def __init__(self, order: int, vocab_size: int, counts: list[dict], discounts: list[float], level: str = "units"):
        self.order, self.vocab_size, self.level = order, vocab_size, level
        self.bos = vocab_size
        self.counts = counts  # index k-1
        self.discounts = discounts
        self.name = f"{order}-gram Kneser-Ney"
        self._totals = [{h: sum(ws.values()) for h, ws in c.items()} for c in counts]
        self._types = [{h: len(ws) for h, ws in c.items()} for c in counts]

    # -- fitting --------------------------------------------------------------------
    @classmethod
    def fit(cls, seqs: Iterable[UnitSequence] | Iterable[Sequence[int]], order: int = 3, vocab_size: int | None = None,
            discount: float | None = None, level: str = "units") -> "NgramLM":
        if order < 1:
            raise SpeechUnitsError(f"n-gram order must be >= 1, got {order}")
        streams = [cls._stream(s, level) for s in seqs]
        top = max((int(max(s)) for s in streams if len(s)), default=-1)
        vocab = vocab_size if vocab_size else top + 1  # None or 0: from the data
        if top >= vocab:
            raise SpeechUnitsError(f"unit {top} is outside the vocabulary 0..{vocab - 1}")
        bos = vocab
        raw: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for s in streams:
            padded = [bos] * (order - 1) + list(s) + [bos]
            for i in range(order - 1, len(padded)):
                raw[tuple(padded[i - order + 1 : i])][padded[i]] += 1
        counts: list[dict] = [None] * order  # type: ignore[list-item]
        counts[order - 1] = {h: dict(ws) for h, ws in raw.items()}
        for k in range(order - 1, 0, -1):  # continuation counts of order k from the n-grams of order k + 1
            cont: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
            for h, ws in counts[k].items():
                for w in ws:
                    cont[h[1:]][w] += 1
            counts[k - 1] = {h: dict(ws) for h, ws in cont.items()}
        discounts = []
        for c in counts:
            if discount is not None:
                discounts.append(float(discount))
                continue
            n1 = sum(1 for ws in c.values() for v in ws.values() if v == 1)
            n2 = sum(1 for ws in c.values() for v in ws.values() if v == 2)
            d = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
            discounts.append(min(0.95, max(0.1, d)))
        return cls(order, vocab, counts, discounts, level)

    @staticmethod
    def _stream(s, level: str) -> list[int]:
        if isinstance(s, UnitSequence):
            return unit_stream(s, level)[0].tolist()
        return [int(x) for x in s]

    # -- probabilities --------------------------------------------------------------
    def prob(self, context: Sequence[int], token: int) -> float:
        """p(token | the last order - 1 tokens of context); context is padded with bos."""
        h = tuple(([self.bos] * (self.order - 1) + list(context))[-(self.order - 1):]) if self.order > 1 else ()
        return self._p(h, int(token))

    def _p(self, h: tuple, w: int) -> float:
        p = 1.0 / (self.vocab_size + 1)
        for k in range(1, self.order + 1):  # from unigrams up to the full context
            ctx = h[len(h) - (k - 1):] if k > 1 else ()
            total = self._totals[k - 1].get(ctx)
            if not total:
                continue  # unseen context: keep the lower-order estimate
            d = self.discounts[k - 1]
            c = self.counts[k - 1][ctx].get(w, 0)
            p = max(c - d, 0.0) / total + d * self._types[k - 1][ctx] / total * p
        return p

    def logprobs(self, tokens: Sequence[int]) -> np.ndarray:
        """(N + 1,) natural-log probabilities of tokens u_1..u_N and the end."""
        seq = [self.bos] * (self.order - 1) + [int(t) for t in tokens] + [self.bos]
        out = np.empty(len(tokens) + 1)
        n = self.order - 1
        for i in range(n, len(seq)):
            out[i - n] = math.log(self._p(tuple(seq[i - n : i]), seq[i]))
        return out

    def score(self, seqs: Mapping[str, UnitSequence]) -> list[UttScore]:
        out = []
        for utt in sorted(seqs):
            toks = unit_stream(seqs[utt], self.level)[0]
            if toks.size and (toks.min() < 0 or toks.max() >= self.vocab_size):
                raise SpeechUnitsError(f"utterance {utt}: unit outside the n-gram LM's vocabulary 0..{self.vocab_size - 1}")
            lp = self.logprobs(toks.tolist())
            out.append(UttScore(utt, float(lp.sum()), int(lp.size)))
        return out

    def distribution(self, context: Sequence[int]) -> np.ndarray:
        """(V + 1,) p(. | context): units, then the end."""
        return np.array([self.prob(context, w) for w in range(self.vocab_size + 1)])

    # -- files ----------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "kind": "ngram", "order": self.order, "vocab_size": self.vocab_size, "level": self.level,
            "discounts": self.discounts,
            "counts": [[[list(h), {str(w): c for w, c in ws.items()}] for h, ws in sorted(cs.items())] for cs in self.counts],
        }

    def save(self, path: str | os.PathLike) -> None:
        write_json(path, self.to_json(), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NgramLM":
        try:
            with open(path, encoding="utf-8") as f:
                obj = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise SpeechUnitsError(f"{path}: cannot read n-gram model: {e}") from None
        if not isinstance(obj, dict) or obj.get("kind") != "ngram":
            raise SpeechUnitsError(f"{path}: not an n-gram model file (speechunits lm ngram writes one)")
        counts = [{tuple(h): {int(w): int(c) for w, c in ws.items()} for h, ws in cs} for cs in obj["counts"]]
        return cls(int(obj["order"]), int(obj["vocab_size"]), counts, [float(d) for d in obj["discounts"]],
                   obj.get("level", "units"))
