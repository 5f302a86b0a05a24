"""Parts of a job: contiguous runs of whole groups (speakers), balanced by utterance count.

    groups = utterance_groups(utts, utt2spk)      # one group per speaker
    mine = job_part(groups, k, n)                 # the utterances of part k of n

Parts keep speakers whole, so per-speaker steps (CMVN) see all of a speaker in one
part; they are deterministic (speechunits.data.split.split_groups), and parts beyond
the number of groups are empty, so a job array of fixed size runs on any data.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from speechunits.data.split import split_groups
from speechunits.errors import SpeechUnitsError


def check_part(k: int, n: int) -> None:
    if not 1 <= k <= n:
        raise SpeechUnitsError(f"job part {k}/{n}: need 1 <= k <= n")


def utterance_groups(utts: Iterable[str], utt2spk: Mapping[str, str] | None = None) -> list[list[str]]:
    """The utterances grouped by speaker, in order of first appearance; without
    `utt2spk` (or for an utterance not in it) each utterance is a group of its own."""
    groups: dict[str, list[str]] = {}
    for utt in utts:
        key = utt2spk[utt] if utt2spk and utt in utt2spk else "\0" + utt
        groups.setdefault(key, []).append(utt)
    return list(groups.values())


def job_part(groups: Sequence[Sequence[str]], k: int, n: int) -> list[str]:
    """The utterances of part k (1-based) of n, in group order; empty for k beyond the
    number of groups."""
    check_part(k, n)
    parts = split_groups(groups, min(n, len(groups))) if groups else []
    return list(parts[k - 1]) if k <= len(parts) else []
