"""Splitting and combining data dirs (split_data.sh / combine_data.sh)."""

import pytest

from speechunits.data.datadir import DataDir, Segment, validate_data_dir
from speechunits.data.split import _boundaries, combine_data_dirs, split_data_dir, write_splits
from speechunits.errors import DataFormatError


def random_dir(rng, num_speakers=7, max_utts=9) -> DataDir:
    utt2spk, text, gender = {}, {}, {}
    for s in range(num_speakers):
        spk = f"spk{s:02d}"
        gender[spk] = "mf"[s % 2]
        for u in range(int(rng.integers(1, max_utts + 1))):
            utt = f"{spk}-u{u:03d}"
            utt2spk[utt] = spk
            text[utt] = f"WORD{u}"
    return DataDir(
        wav_scp={u: f"wav/{u}.wav" for u in utt2spk},
        utt2spk=utt2spk,
        text=text,
        spk2gender=gender,
        utt2dur={u: 1.0 + i / 10 for i, u in enumerate(utt2spk)},
        extra={"spk2age": {s: "30" for s in gender}},
    )


def test_boundaries_hand_computed():
    assert _boundaries([1] * 10, 3) == [3, 7, 10]  # parts 3, 4, 3: targets 3.33 and 6.67
    assert _boundaries([5, 1, 1, 1, 1, 1], 2) == [1, 6]  # 5 | 5
    assert _boundaries([10, 1, 1], 3) == [1, 2, 3]  # every part needs a speaker
    assert _boundaries([1, 1, 10], 2) == [2, 3]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_split_by_speaker_keeps_speakers_whole_and_balanced(rng, n):
    dd = random_dir(rng)
    parts = split_data_dir(dd, n)
    assert len(parts) == n
    assert sorted(u for p in parts for u in p.utts) == dd.utts  # union is the original, no repeats
    owner = {}
    for k, part in enumerate(parts):
        assert part.check().ok
        for spk in part.speakers:
            assert spk not in owner, f"speaker {spk} in parts {owner[spk]} and {k}"
            owner[spk] = k
            assert part.spk2utt[spk] == dd.spk2utt[spk]  # whole speaker
        assert set(part.spk2gender) == set(part.speakers)
        assert set(part.extra["spk2age"]) == set(part.speakers)
        assert set(part.text) == set(part.utts)
    assert set(owner) == set(dd.speakers)
    # contiguous runs of the sorted speakers
    assert [s for p in parts for s in p.speakers] == dd.speakers
    # within one speaker's worth of the mean
    biggest = max(len(u) for u in dd.spk2utt.values())
    for part in parts:
        assert abs(len(part.utts) - len(dd.utts) / n) <= biggest
    # deterministic
    assert split_data_dir(dd, n) == parts


def test_split_by_utterance(rng):
    dd = random_dir(rng)
    parts = split_data_dir(dd, 4, by="utterance")
    sizes = [len(p.utts) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(dd.utts)
    assert [u for p in parts for u in p.utts] == dd.utts
    for p in parts:
        assert p.check().ok


def test_split_errors(rng):
    dd = random_dir(rng, num_speakers=3)
    with pytest.raises(ValueError, match="3 speakers into 4 parts"):
        split_data_dir(dd, 4)
    with pytest.raises(ValueError):
        split_data_dir(dd, len(dd.utts) + 1, by="utterance")
    with pytest.raises(ValueError):
        split_data_dir(dd, 0)
    with pytest.raises(ValueError):
        split_data_dir(dd, 2, by="gender")


def test_write_splits(tmp_path, rng):
    dd = random_dir(rng)
    dd.write(tmp_path / "data")
    paths = write_splits(dd, tmp_path / "data", 3)
    assert paths == [tmp_path / "data" / "split3" / str(k) for k in (1, 2, 3)]
    parts = split_data_dir(dd, 3)
    for path, part in zip(paths, parts):
        assert validate_data_dir(path).ok
        assert DataDir.read(path) == part
    # by utterance goes to split<N>utt; rewriting replaces cleanly; no temporary folders left
    write_splits(dd, tmp_path / "data", 2, by="utterance")
    write_splits(dd, tmp_path / "data", 3)
    assert sorted(p.name for p in (tmp_path / "data").iterdir() if p.is_dir()) == ["split2utt", "split3"]
    assert sorted(p.name for p in (tmp_path / "data" / "split3").iterdir()) == ["1", "2", "3"]


def test_combine_undoes_split(tmp_path, rng):
    dd = random_dir(rng)
    parts = split_data_dir(dd, 3)
    assert combine_data_dirs(parts) == dd
    paths = write_splits(dd, tmp_path / "data", 3)
    assert combine_data_dirs(paths) == dd  # paths are read first


def test_combine_duplicates_are_named(rng):
    dd = random_dir(rng)
    a = dd.subset(dd.utts[:5])
    b = dd.subset(dd.utts[3:])
    with pytest.raises(DataFormatError, match="2 utterance ids.*" + dd.utts[3] + ".*" + dd.utts[4]):
        combine_data_dirs([a, b])


def test_combine_conflicts_and_missing_tables():
    a = DataDir(wav_scp={"s-1": "a.wav"}, utt2spk={"s-1": "s"}, text={"s-1": "HI"}, spk2gender={"s": "m"})
    b = DataDir(wav_scp={"s-2": "b.wav"}, utt2spk={"s-2": "s"}, spk2gender={"s": "f"})
    with pytest.raises(DataFormatError, match="speaker 's'.*'m'.*'f'"):
        combine_data_dirs([a, b])
    b.spk2gender = {"s": "m"}
    both = combine_data_dirs([a, b])
    assert both.text is None  # b has none: left out, as combine_data.sh does
    assert both.spk2utt == {"s": ["s-1", "s-2"]} and both.check().ok


def test_combine_mixed_segments():
    seg = DataDir(
        wav_scp={"rec": "rec.wav"},
        utt2spk={"s-1": "s"},
        segments={"s-1": Segment("rec", 0.5, 1.5)},
        utt2dur={"s-1": 1.0},
    )
    whole = DataDir(wav_scp={"t-1": "t.wav"}, utt2spk={"t-1": "t"}, utt2dur={"t-1": 2.5})
    both = combine_data_dirs([seg, whole])
    assert both.segments == {"s-1": Segment("rec", 0.5, 1.5), "t-1": Segment("t-1", 0.0, 2.5)}
    assert both.check().ok
    whole.utt2dur = None  # without durations: to the end of the recording (end -1)
    both = combine_data_dirs([seg, whole])
    assert both.segments["t-1"] == Segment("t-1", 0.0, None) and both.check().ok
