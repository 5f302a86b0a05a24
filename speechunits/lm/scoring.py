"""Per-utterance log-probabilities of unit sequences under a unit LM (neural or n-gram).

    scorer = load_scorer("exp/lm")             # or an n-gram model file (ngram.json)
    scores = scorer.score(read_units("units/test"))  # [UttScore], sorted by utterance
    summary = perplexity(scores)               # corpus perplexity per token

The log-probability of an utterance is that of all its tokens and of the end:
log p(u_1..u_N, end) = sum_t log p(u_t | u_<t), in nats; per-token perplexity is
exp(-sum logp / sum tokens) with tokens = N + 1. With a duration channel the
duration log-probability is reported beside it (`dur_logprob`), not mixed in.
Sequences longer than a transformer's context are scored with sliding windows:
each window of max_len tokens scores only its second half (the first window all),
so every token is predicted once, from at least max_len / 2 tokens of context.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from speechunits.lm.data import Tokens, to_tokens
from speechunits.lm.models import IGNORE, UnitLM
from speechunits.units.formats import UnitSequence

__all__ = ["UttScore", "Scorer", "NeuralScorer", "load_scorer", "perplexity", "token_logprobs"]


@dataclass
class UttScore:
    utt: str
    logprob: float  # nats, units and the end
    tokens: int  # predicted tokens (units + 1)
    dur_logprob: float | None = None

    @property
    def perplexity(self) -> float:
        return math.exp(-self.logprob / max(1, self.tokens))


class Scorer(Protocol):
    name: str
    level: str

    def score(self, seqs: Mapping[str, UnitSequence]) -> list[UttScore]: ...


def perplexity(scores: Sequence[UttScore]) -> dict:
    """Corpus figures: total log-prob, tokens, per-token NLL and perplexity, utterances."""
    lp = sum(s.logprob for s in scores)
    n = sum(s.tokens for s in scores)
    nll = -lp / max(1, n)
    out = {"utterances": len(scores), "tokens": n, "logprob": lp, "nll": nll, "perplexity": math.exp(min(nll, 700))}
    durs = [s.dur_logprob for s in scores if s.dur_logprob is not None]
    if durs:
        out["dur_nll"] = -sum(durs) / max(1, n)
    return out


@torch.no_grad()
def token_logprobs(model: UnitLM, items: Sequence[Tokens], batch_size: int = 16,
                   device: str | torch.device = "cpu") -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per-token log-probabilities (N + 1,) of each item's targets, and of its durations
    ((N,) for the units, None without a duration channel)."""
    model.eval()
    out: list = [None] * len(items)
    ctx = model.max_context
    short = [i for i, it in enumerate(items) if ctx is None or len(it) <= ctx]
    short.sort(key=lambda i: len(items[i]))
    for a in range(0, len(short), batch_size):
        idx = short[a : a + batch_size]
        res = _score_windows(model, [items[i] for i in idx], [0] * len(idx), None, device)
        for i, r in zip(idx, res):
            out[i] = r
    for i, it in enumerate(items):
        if out[i] is None:
            out[i] = _score_long(model, it, ctx, device)
    return out


def _score_windows(model, items, starts, length, device, keep_from: int = 0):
    """Score windows [start, start + length) of items in one padded batch; returns the
    log-probs of positions >= start + keep_from of each window."""
    from speechunits.lm.data import collate

    batch = collate(items, starts, length, model.bos, 0.0).to(device)
    h, _ = model.hidden(batch.tokens, batch.dur_classes if model.dur_head is not None else None)
    logp = F.log_softmax(model.unit_logits(h).float(), dim=-1)
    tgt = batch.targets.clamp(min=0)
    lp = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    dlp = None
    if model.dur_head is not None:
        dlog = F.log_softmax(model.duration_logits(h, batch.targets).float(), dim=-1)
        dlp = dlog.gather(-1, batch.dur_targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    res = []
    for i, n in enumerate(batch.lengths.tolist()):
        units = lp[i, keep_from:n].cpu().numpy().astype(np.float64)
        durs = None
        if dlp is not None:
            valid = (batch.dur_targets[i, keep_from:n] != IGNORE).cpu().numpy()
            durs = dlp[i, keep_from:n].cpu().numpy().astype(np.float64)[valid]
        res.append((units, durs))
    return res


def _score_long(model, item: Tokens, ctx: int, device):
    stride = max(1, ctx // 2)
    units, durs = [], []
    start, first = 0, True
    while True:
        keep = 0 if first else ctx - stride
        (u, d), = _score_windows(model, [item], [start], ctx, device, keep_from=keep)
        units.append(u)
        if d is not None:
            durs.append(d)
        if start + ctx >= len(item):
            break
        start += stride
        first = False
        # the next window's kept part starts at start + ctx - stride = the previous window's end
    return np.concatenate(units), (np.concatenate(durs) if durs else None)


class NeuralScorer:
    """Scores unit sequences with a trained unit LM (see load_lm)."""

    def __init__(self, loaded, device: str | torch.device = "cpu", batch_size: int = 16):
        self.model = loaded.model
        self.config = loaded.config
        self.level = loaded.config.data.level
        self.name = f"{loaded.config.model.kind} ({loaded.path})"
        self.device, self.batch_size = device, batch_size

    def tokens(self, seq: UnitSequence) -> Tokens:
        cfg = self.config.model
        return to_tokens(seq, cfg.vocab_size, self.level, cfg.max_duration)

    def score(self, seqs: Mapping[str, UnitSequence]) -> list[UttScore]:
        utts = sorted(seqs)
        items = [self.tokens(seqs[u]) for u in utts]
        res = token_logprobs(self.model, items, self.batch_size, self.device)
        return [UttScore(u, float(lp.sum()), int(lp.size), None if d is None else float(d.sum()))
                for u, (lp, d) in zip(utts, res)]


def load_scorer(path: str | os.PathLike, device: str | torch.device = "cpu") -> Scorer:
    """A neural LM (checkpoint or experiment dir) or an n-gram model (a .json file)."""
    from pathlib import Path

    if Path(path).suffix == ".json":
        from speechunits.lm.ngram import NgramLM

        return NgramLM.load(path)
    from speechunits.lm.checkpoint import load_lm

    return NeuralScorer(load_lm(path, device=device), device=device)
