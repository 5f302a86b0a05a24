"""Sampling unit sequences from a unit LM: from scratch, or continuing prompts.

    gen = torch.Generator().manual_seed(0)
    seq = sample_sequence(model, prompt=Tokens..., max_units=200, temperature=0.9, top_k=20, generator=gen)
    seqs = sample_units(loaded, n=4, seed=0)                        # {utt: UnitSequence}, from scratch
    seqs = continue_units(loaded, read_units("units/test"), prompt_seconds=1.0, seed=0)

Generation stops at the end token or after max_units. With `use_cache` (the default)
the transformer runs incrementally on its KV cache (the LSTM on its state), one
token per step; without it every step recomputes the whole prefix (the reference,
and the benchmark's baseline). Both give the same tokens for the same generator.
Durations: sampled from the duration head when the model has one, else each
unit's mean duration in the training data (rounded, at least one frame); frame-level
models emit one frame per token and the runs are merged afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from speechunits.lm.data import duration_classes, unit_stream
from speechunits.lm.models import UnitLM
from speechunits.units.formats import UnitSequence, run_length
from speechunits.errors import ConfigError

__all__ = ["SampleOptions", "sample_tokens", "sample_units", "continue_units", "prompt_of"]


@dataclass
class SampleOptions:
    max_units: int = 200  # new tokens per utterance at most
    temperature: float = 1.0
    top_k: int = 0  # 0 = the whole distribution
    use_cache: bool = True
    stop_at_end: bool = True  # False: the end token is never drawn (fixed-length generation, benchmarks)
    min_units: int = 0  # the end token is not drawn before this many new units

    def __post_init__(self):
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")


def _pick(logits: Tensor, opts: SampleOptions, generator: torch.Generator) -> int:
    """logits (K,) -> one index drawn with temperature and top-k."""
    logits = logits.float() / opts.temperature
    if opts.top_k and opts.top_k < logits.numel():
        kth = torch.topk(logits, opts.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def sample_tokens(model: UnitLM, prompt_units: list[int], prompt_classes: list[int] | None, opts: SampleOptions,
                  generator: torch.Generator) -> tuple[list[int], list[int] | None]:
    """Continue [bos] + prompt_units; returns the new units (without the end) and, with a
    duration channel, their duration classes. prompt_classes: the prompt's classes (0-based)."""
    model.eval()
    dev = model.embed.weight.device
    with_durs = model.dur_head is not None
    tokens = [model.bos] + list(prompt_units)
    dur_in = [0] + [c + 1 for c in (prompt_classes or [0] * len(prompt_units))]
    limit = model.max_context
    new_units: list[int] = []
    new_classes: list[int] = []
    cache = None
    fed = 0  # tokens already in the cache
    for _ in range(opts.max_units):
        if limit is not None and len(tokens) >= limit:
            break
        if opts.use_cache:
            x = torch.tensor([tokens[fed:]], device=dev)
            d = torch.tensor([dur_in[fed:]], device=dev) if with_durs else None
            h, cache = model.hidden(x, d, cache=cache)
            fed = len(tokens)
        else:
            x = torch.tensor([tokens], device=dev)
            d = torch.tensor([dur_in], device=dev) if with_durs else None
            h, _ = model.hidden(x, d)
        last = h[:, -1:]
        logits = model.unit_logits(last)[0, 0]
        if not opts.stop_at_end or len(new_units) < opts.min_units:
            logits[model.bos] = float("-inf")
        unit = _pick(logits, opts, generator)
        if unit == model.bos:
            break
        cls = 0
        if with_durs:
            cls = _pick(model.duration_logits(last, torch.tensor([[unit]], device=dev))[0, 0], opts, generator)
            new_classes.append(cls)
        new_units.append(unit)
        tokens.append(unit)
        dur_in.append(cls + 1)
    return new_units, (new_classes if with_durs else None)


def _to_sequence(utt: str, units: list[int], frames: list[int], level: str, shift: float | None) -> UnitSequence:
    if level == "frames":
        u, d = run_length(np.asarray(units, dtype=np.int64))
        return UnitSequence(utt, u, d, shift)
    return UnitSequence(utt, np.asarray(units, dtype=np.int64), np.asarray(frames, dtype=np.int64), shift)


def _durations(model: UnitLM, units: list[int], classes: list[int] | None, level: str) -> list[int]:
    if level == "frames":
        return [1] * len(units)
    if classes is not None:
        return [c + 1 for c in classes]
    means = model.mean_durations.cpu().numpy()
    return [max(1, int(round(means[u]))) for u in units]


def sample_units(loaded, n: int, opts: SampleOptions = SampleOptions(), seed: int = 0,
                 prefix: str = "sample") -> dict[str, UnitSequence]:
    """n sequences from scratch: utterances <prefix>-0000, ...; utterance i uses generator seed (seed, i)."""
    model, level = loaded.model, loaded.config.data.level
    shift = loaded.config.data.frame_shift or None
    out = {}
    for i in range(n):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
        units, classes = sample_tokens(model, [], None, opts, gen)
        utt = f"{prefix}-{i:04d}"
        out[utt] = _to_sequence(utt, units, _durations(model, units, classes, level), level, shift)
    return out


def prompt_of(seq: UnitSequence, seconds: float, shift: float) -> UnitSequence:
    """The units of seq that start before `seconds` (the last one cut at `seconds`)."""
    limit = max(1, int(round(seconds / shift)))
    starts = np.concatenate([[0], np.cumsum(seq.durations)[:-1]]) if seq.units.size else np.zeros(0, np.int64)
    keep = starts < limit
    units = seq.units[keep]
    durs = np.minimum(seq.durations[keep], limit - starts[keep])
    return UnitSequence(seq.utt, units.astype(np.int64), durs.astype(np.int64), seq.shift)


def continue_units(loaded, seqs: dict[str, UnitSequence], prompt_seconds: float, opts: SampleOptions = SampleOptions(),
                   seed: int = 0) -> tuple[dict[str, UnitSequence], dict[str, int]]:
    """Each utterance's first prompt_seconds, continued by the LM. Returns the sequences
    (prompt + continuation, same utterance ids) and the number of prompt units of each."""
    from speechunits.errors import SpeechUnitsError

    model, level = loaded.model, loaded.config.data.level
    out, n_prompt = {}, {}
    md = loaded.config.model.max_duration
    for i, utt in enumerate(sorted(seqs)):
        seq = seqs[utt]
        shift = seq.shift or loaded.config.data.frame_shift
        if not shift:
            raise SpeechUnitsError(f"utterance {utt}: the unit file gives no frame shift, needed to cut a prompt in seconds")
        prompt = prompt_of(seq, prompt_seconds, shift)
        p_units, p_durs = unit_stream(prompt, level)
        classes = duration_classes(p_durs, md).tolist()
        gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
        units, new_classes = sample_tokens(model, p_units.tolist(), classes, opts, gen)
        frames = p_durs.tolist() + _durations(model, units, new_classes, level)
        out[utt] = _to_sequence(utt, p_units.tolist() + units, frames, level, shift)
        n_prompt[utt] = int(prompt.units.size)
    return out, n_prompt
