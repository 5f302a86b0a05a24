"""CTM phone alignments: round trips, sorting, and errors that name the line."""

import pytest

from speechunits.data.ctm import read_ctm, write_ctm
from speechunits.errors import DataFormatError


def random_alignments(rng, num_utts=4):
    out = {}
    for i in range(num_utts):
        t, segs = float(rng.uniform(0, 0.5)), []
        for _ in range(int(rng.integers(1, 12))):
            dur = float(rng.uniform(0.01, 0.3))
            segs.append((round(t, 6), round(t + dur, 6), str(rng.choice(["AA", "B", "sil", "K_E"]))))
            t += dur + float(rng.choice([0.0, 0.05]))
        out[f"spk{i % 2}-utt{i}"] = segs
    return out


def test_round_trip(tmp_path, rng):
    ali = random_alignments(rng)
    write_ctm(tmp_path / "a.ctm", ali)
    back = read_ctm(tmp_path / "a.ctm")
    assert list(back) == sorted(ali)
    for utt, segs in ali.items():
        assert [p for _, _, p in back[utt]] == [p for _, _, p in segs]
        for (s0, e0, _), (s1, e1, _) in zip(segs, back[utt]):
            assert s1 == pytest.approx(s0, abs=1e-6) and e1 == pytest.approx(e0, abs=2e-6)


def test_hand_written_file(tmp_path):
    (tmp_path / "a.ctm").write_text(
        "u2 1 0.30 0.20 B\n"
        "u1 1 0.10 0.05 AH 0.93\n"  # confidence column dropped
        "u1 1 0.00 0.10 sil\n"
        ";; a comment\n"
        "u2 1 0 0.3 A\n"
    )
    assert read_ctm(tmp_path / "a.ctm") == {
        "u1": [(0.0, 0.1, "sil"), (0.1, 0.1 + 0.05, "AH")],
        "u2": [(0.0, 0.3, "A"), (0.3, 0.5, "B")],
    }
    write_ctm(tmp_path / "b.ctm", read_ctm(tmp_path / "a.ctm"))
    assert (tmp_path / "b.ctm").read_text() == "u1 1 0 0.1 sil\nu1 1 0.1 0.05 AH\nu2 1 0 0.3 A\nu2 1 0.3 0.2 B\n"


def test_touching_segments_are_not_overlaps(tmp_path):
    # 0.1 + 0.2 != 0.3 in floating point; the tolerance absorbs it
    (tmp_path / "a.ctm").write_text("u 1 0.1 0.2 A\nu 1 0.3 0.1 B\n")
    assert [p for _, _, p in read_ctm(tmp_path / "a.ctm")["u"]] == ["A", "B"]


@pytest.mark.parametrize(
    "text, line, pattern",
    [
        ("u 1 0 0.1 A\nu 1 0.1 B\n", 2, "expected 5 or 6 fields"),
        ("u 1 0 0.1 A\nu 1 0.1 0.1 B 0.9 extra\n", 2, "expected 5 or 6 fields"),
        ("u 1 zero 0.1 A\n", 1, "numbers"),
        ("u 1 0 nan A\n", 1, "numbers"),
        ("u 1 -0.1 0.1 A\n", 1, "start >= 0"),
        ("u 1 0 0 A\n", 1, "duration > 0"),
        ("u 1 0 0.1 A\n\nu 1 0.1 0.1 B\n", 2, "empty line"),
        ("u 1 0 0.2 A\nv 1 0 1 C\nu 1 0.1 0.1 B\n", 3, "overlap.*line 1"),
    ],
)
def test_errors_name_the_line(tmp_path, text, line, pattern):
    path = tmp_path / "bad.ctm"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=pattern) as info:
        read_ctm(path)
    assert info.value.path == str(path) and info.value.line == line


def test_overlap_check_can_be_disabled(tmp_path):
    (tmp_path / "a.ctm").write_text("u 1 0 0.2 A\nu 1 0.1 0.1 B\n")
    assert read_ctm(tmp_path / "a.ctm", check_overlap=False) == {"u": [(0.0, 0.2, "A"), (0.1, 0.2, "B")]}


def test_write_refuses_bad_alignments(tmp_path):
    with pytest.raises(DataFormatError, match="overlaps"):
        write_ctm(tmp_path / "a.ctm", {"u": [(0.0, 0.2, "A"), (0.1, 0.3, "B")]})
    with pytest.raises(DataFormatError, match="start < end"):
        write_ctm(tmp_path / "a.ctm", {"u": [(0.2, 0.2, "A")]})
    with pytest.raises(DataFormatError, match="whitespace"):
        write_ctm(tmp_path / "a.ctm", {"u": [(0.0, 0.2, "A B")]})
    assert not (tmp_path / "a.ctm").exists()
