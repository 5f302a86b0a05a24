"""Unit sequences and files: run-length coding against a brute-force loop, file round trips,
and errors that name the file and line."""

import json

import numpy as np
import pytest

from speechunits.errors import DataFormatError, SpeechUnitsError
from speechunits.units.formats import (
    UnitSequence,
    expand_runs,
    read_units,
    run_length,
    unit_starts,
    write_units,
)


def brute_runs(codes):
    units, durs = [], []
    for c in codes:
        if units and units[-1] == c:
            durs[-1] += 1
        else:
            units.append(int(c))
            durs.append(1)
    return units, durs


@pytest.mark.parametrize("n", [0, 1, 2, 7, 100])
def test_run_length_matches_loop(rng, n):
    codes = rng.integers(0, 3, size=n)
    units, durs = run_length(codes)
    ref_u, ref_d = brute_runs(codes)
    assert units.tolist() == ref_u and durs.tolist() == ref_d
    assert np.array_equal(expand_runs(units, durs), codes)
    assert all(units[i] != units[i + 1] for i in range(len(units) - 1))


def test_unit_starts_hand_computed():
    assert unit_starts(np.array([2, 3, 1]), 0.02).tolist() == pytest.approx([0.0, 0.04, 0.10])
    assert unit_starts(np.array([], dtype=np.int64), 0.02).size == 0


def seqs():
    return [
        UnitSequence("b", np.array([4, 1, 4]), np.array([2, 1, 5]), 0.02),
        UnitSequence("a", np.array([7]), np.array([3]), 0.02),
    ]


def test_write_read_round_trip(tmp_path):
    write_units(tmp_path, seqs())
    assert (tmp_path / "units.txt").read_text() == "a 7\nb 4 1 4\n"  # sorted by utterance
    assert (tmp_path / "durations.txt").read_text() == "a 3\nb 2 1 5\n"
    first = json.loads((tmp_path / "units.jsonl").read_text().splitlines()[1])
    assert first == {"utt": "b", "units": [4, 1, 4], "durations": [2, 1, 5], "start": [0.0, 0.04, 0.06],
                     "shift": 0.02}
    (tmp_path / "frame_shift").write_text("0.02\n")
    for source in (tmp_path, tmp_path / "units.jsonl", tmp_path / "units.txt"):
        back = read_units(source)
        assert sorted(back) == ["a", "b"]
        assert back["b"].units.tolist() == [4, 1, 4] and back["b"].durations.tolist() == [2, 1, 5]
        assert back["b"].shift == 0.02
        assert back["b"].frame_codes().tolist() == [4, 4, 1, 4, 4, 4, 4, 4]


def test_units_txt_without_durations_is_frame_level(tmp_path):
    (tmp_path / "units.txt").write_text("u1 3 3 5\n")
    back = read_units(tmp_path / "units.txt")
    assert back["u1"].durations.tolist() == [1, 1, 1] and back["u1"].shift is None


@pytest.mark.parametrize(
    "units, durations, line, fragment",
    [
        ("a 1 2\nb 3 x\n", "a 1 1\nb 1 1\n", 2, "integers"),
        ("a 1 2\n", "a 1\n", 1, "1 durations for 2 units"),
        ("a 1 2\n", "a 1 0\n", 1, ">= 1"),
        ("a 1\na 2\n", "a 1\n", 2, "twice"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, units, durations, line, fragment):
    (tmp_path / "units.txt").write_text(units)
    (tmp_path / "durations.txt").write_text(durations)
    with pytest.raises(DataFormatError) as e:
        read_units(tmp_path / "units.txt")
    assert e.value.line == line and fragment in str(e.value)


def test_bad_jsonl(tmp_path):
    p = tmp_path / "units.jsonl"
    p.write_text('{"utt": "a", "units": [1], "durations": [1], "shift": 0.02}\n{"utt": "b", "units": [1, 2]\n')
    with pytest.raises(DataFormatError) as e:
        read_units(p)
    assert e.value.line == 2
    with pytest.raises(SpeechUnitsError):
        read_units(tmp_path / "missing.jsonl")
