"""The n-gram LM against brute-force counts; normalisation; files."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from speechunits.lm.ngram import NgramLM

CORPUS = [[0, 1, 2, 0, 1], [1, 2, 2, 0], [2, 0, 1, 1, 2, 0], [0, 0, 1]]


def test_every_distribution_sums_to_one():
    lm = NgramLM.fit(CORPUS, order=3, vocab_size=4)
    for ctx in itertools.product(range(5), repeat=2):
        assert lm.distribution(list(ctx)).sum() == pytest.approx(1.0, abs=1e-12)
    assert lm.distribution([]).sum() == pytest.approx(1.0, abs=1e-12)


def test_no_discount_gives_relative_frequencies():
    """D = 0: p(w | h) = c(h w) / c(h) for every seen context (brute-force counts)."""
    order, bos = 3, 3
    lm = NgramLM.fit(CORPUS, order=order, vocab_size=3, discount=0.0)
    grams = Counter()
    for s in CORPUS:
        padded = [bos] * (order - 1) + s + [bos]
        for i in range(order - 1, len(padded)):
            grams[tuple(padded[i - 2 : i + 1])] += 1
    contexts = Counter()
    for g, c in grams.items():
        contexts[g[:2]] += c
    for g, c in grams.items():
        assert lm._p(g[:2], g[2]) == pytest.approx(c / contexts[g[:2]])


def test_kneser_ney_against_a_direct_computation():
    """Bigram KN with D = 0.5, computed by hand from counts and continuation counts."""
    d, bos, v = 0.5, 3, 3
    lm = NgramLM.fit(CORPUS, order=2, vocab_size=v, discount=d)
    bigrams = Counter()
    for s in CORPUS:
        padded = [bos] + s + [bos]
        bigrams.update(zip(padded[:-1], padded[1:]))
    cont = Counter(w for (_, w) in bigrams)  # distinct left neighbours
    n_cont = sum(cont.values())

    def p_uni(w):
        return max(cont[w] - d, 0) / n_cont + d * len(cont) / n_cont / (v + 1)

    for h in range(v + 1):
        total = sum(c for (a, _), c in bigrams.items() if a == h)
        types = sum(1 for (a, _) in bigrams if a == h)
        for w in range(v + 1):
            want = (max(bigrams[(h, w)] - d, 0) / total + d * types / total * p_uni(w)) if total else p_uni(w)
            assert lm.prob([h], w) == pytest.approx(want)


def test_scores_and_round_trip(tmp_path):
    from speechunits.units.formats import UnitSequence

    lm = NgramLM.fit(CORPUS, order=3)
    seqs = {"a": UnitSequence("a", np.array([0, 1, 2]), np.array([1, 2, 1]), 0.02)}
    (s,) = lm.score(seqs)
    manual = sum(math.log(lm.prob(ctx, w)) for ctx, w in (([], 0), ([0], 1), ([0, 1], 2), ([0, 1, 2], 3)))
    assert s.tokens == 4 and s.logprob == pytest.approx(manual)
    lm.save(tmp_path / "lm.json")
    again = NgramLM.load(tmp_path / "lm.json")
    assert again.score(seqs)[0].logprob == pytest.approx(s.logprob)
