"""Job parts (`--nj`, `--job K/N`) against a brute-force check of what they must be:
every part is a contiguous run of whole speakers, the parts add up to the whole in
order, none is empty while there are speakers to give, and each part's size is within
one speaker's utterances of the mean."""

import itertools

import numpy as np
import pytest

from speechunits.errors import SpeechUnitsError
from speechunits.jobs import job_part, utterance_groups


def random_speakers(rng, n_speakers):
    utt2spk = {}
    for s in range(n_speakers):
        for u in range(int(rng.integers(1, 7))):
            utt2spk[f"spk{s:02d}-u{u}"] = f"spk{s:02d}"
    return utt2spk


@pytest.mark.parametrize("seed", range(20))
def test_parts_are_contiguous_runs_of_whole_speakers(seed):
    rng = np.random.default_rng(seed)
    utt2spk = random_speakers(rng, int(rng.integers(1, 9)))
    utts = sorted(utt2spk)
    groups = utterance_groups(utts, utt2spk)
    assert [g for g in groups] == [[u for u in utts if utt2spk[u] == s] for s in sorted(set(utt2spk.values()))]
    biggest = max(map(len, groups))
    for n in range(1, len(groups) + 3):
        parts = [job_part(groups, k, n) for k in range(1, n + 1)]
        assert list(itertools.chain(*parts)) == utts  # the whole, in order, each utterance once
        for part in parts:  # whole speakers only
            speakers = {utt2spk[u] for u in part}
            assert all(sum(utt2spk[u] == s for u in part) == sum(utt2spk[u] == s for u in utts) for s in speakers)
        used = min(n, len(groups))
        assert all(parts[:used]) and not any(parts[used:])  # empty only beyond the number of speakers
        mean = len(utts) / used
        assert all(abs(len(p) - mean) <= biggest for p in parts[:used])


def test_parts_without_speakers_are_single_utterances():
    utts = [f"u{i}" for i in range(7)]
    groups = utterance_groups(utts)
    assert groups == [[u] for u in utts]
    parts = [job_part(groups, k, 3) for k in (1, 2, 3)]
    assert sorted(map(len, parts)) == [2, 2, 3] and list(itertools.chain(*parts)) == utts
    # speakers not adjacent in the input are still grouped (first appearance)
    assert utterance_groups(["b1", "a1", "b2"], {"b1": "B", "a1": "A", "b2": "B"}) == [["b1", "b2"], ["a1"]]


@pytest.mark.parametrize("k,n", [(0, 2), (3, 2), (1, 0)])
def test_bad_part_is_an_error(k, n):
    with pytest.raises(SpeechUnitsError, match="job part"):
        job_part([["a"]], k, n)
