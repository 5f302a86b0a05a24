"""Kaldi data dirs: reading, writing, and validation that names file and line."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speechunits.batch import BatchReport
from speechunits.cli import main
from speechunits.data.datadir import (
    DataDir,
    Segment,
    compute_utt2dur,
    read_table,
    spk2utt_to_utt2spk,
    utt2spk_to_spk2utt,
    validate_data_dir,
)
from speechunits.errors import AudioError, DataFormatError, SpeechUnitsError

GOOD = {
    "wav.scp": "spkA-u1 a1.wav\nspkA-u2 sox a2.wav -t wav - |\nspkB-u1 b1.wav\n",
    "utt2spk": "spkA-u1 spkA\nspkA-u2 spkA\nspkB-u1 spkB\n",
    "spk2utt": "spkA spkA-u1 spkA-u2\nspkB spkB-u1\n",
    "text": "spkA-u1 HELLO  WORLD\nspkA-u2 HI\nspkB-u1 YES\n",
    "spk2gender": "spkA f\nspkB m\n",
    "utt2dur": "spkA-u1 1.5\nspkA-u2 0.25\nspkB-u1 2\n",
    "utt2num_frames": "spkA-u1 150\nspkA-u2 25\nspkB-u1 200\n",
}


def make_dir(root: Path, files: dict, name="data") -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    for fname, content in files.items():
        (d / fname).write_bytes(content.encode() if isinstance(content, str) else content)
    return d


def with_changes(**changes):
    files = dict(GOOD)
    for k, v in changes.items():
        k = k.replace("_scp", ".scp")
        if v is None:
            files.pop(k)
        else:
            files[k] = v
    return files


def test_read_good_dir(tmp_path):
    dd = DataDir.read(make_dir(tmp_path, GOOD))
    assert dd.utts == ["spkA-u1", "spkA-u2", "spkB-u1"]
    assert dd.speakers == ["spkA", "spkB"]
    assert dd.wav_scp["spkA-u2"] == "sox a2.wav -t wav - |"  # rest of line, spaces kept
    assert dd.text["spkA-u1"] == "HELLO  WORLD"
    assert dd.utt2dur == {"spkA-u1": 1.5, "spkA-u2": 0.25, "spkB-u1": 2.0}
    assert dd.spk2gender == {"spkA": "f", "spkB": "m"}
    assert dd.extra == {"utt2num_frames": {"spkA-u1": "150", "spkA-u2": "25", "spkB-u1": "200"}}
    assert dd.spk2utt == {"spkA": ["spkA-u1", "spkA-u2"], "spkB": ["spkB-u1"]}
    result = validate_data_dir(tmp_path / "data")
    # the one pipe entry is worth a warning (commands run only with --allow-pipes), not an error
    assert result.ok and result.errors == []
    assert len(result.warnings) == 1 and "wav.scp:2: entry of 'spkA-u2' is a shell command" in result.warnings[0]


def test_round_trip_is_byte_identical(tmp_path):
    src = make_dir(tmp_path, GOOD)
    dd = DataDir.read(src)
    dd.write(tmp_path / "copy")
    again = DataDir.read(tmp_path / "copy")
    assert again == dd
    for name in GOOD:  # already sorted and normalised, so written back verbatim
        assert (tmp_path / "copy" / name).read_text() == GOOD[name], name
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted(GOOD)


def test_write_sorts_in_c_order_like_sort(tmp_path):
    # upper case, digits, '-' and '_' sort differently in C and in natural locales
    utts = ["b_1", "B-2", "a10", "a9", "A_1", "a-1", "Zz", "é1", "e1"]
    dd = DataDir(wav_scp={u: f"{u}.wav" for u in utts}, utt2spk={u: u for u in utts})
    dd.write(tmp_path / "d")
    lines = (tmp_path / "d" / "utt2spk").read_text().splitlines()
    expected = subprocess.run(
        ["sort"], input="\n".join(f"{u} {u}" for u in utts) + "\n", capture_output=True, text=True,
        env={**os.environ, "LC_ALL": "C"}, check=True,
    ).stdout.splitlines()
    assert lines == expected
    assert DataDir.read(tmp_path / "d").utts == [line.split()[0] for line in expected]


def test_spk2utt_derived_when_missing(tmp_path):
    dd = DataDir.read(make_dir(tmp_path, with_changes(spk2utt=None)))
    assert dd.spk2utt == {"spkA": ["spkA-u1", "spkA-u2"], "spkB": ["spkB-u1"]}
    dd.write(tmp_path / "out")
    assert (tmp_path / "out" / "spk2utt").read_text() == GOOD["spk2utt"]


def test_utt2spk_spk2utt_conversion():
    utt2spk = {"s2-b": "s2", "s1-a": "s1", "s1-c": "s1"}
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    assert spk2utt == {"s1": ["s1-a", "s1-c"], "s2": ["s2-b"]}
    assert spk2utt_to_utt2spk(spk2utt) == dict(sorted(utt2spk.items()))
    with pytest.raises(DataFormatError, match="s1-a"):
        spk2utt_to_utt2spk({"s1": ["s1-a"], "s2": ["s1-a"]})


@pytest.mark.parametrize(
    "changes, file, line, pattern",
    [
        ({"utt2spk": "spkA-u2 spkA\nspkA-u1 spkA\nspkB-u1 spkB\n"}, "utt2spk", 2, "not sorted"),
        ({"text": "spkA-u1 HI\nspkA-u1 HO\nspkA-u2 HI\nspkB-u1 YES\n"}, "text", 2, "duplicate key 'spkA-u1'.*line 1"),
        ({"utt2spk": "spkA-u1 spkA\nspkA-u2 spkA extra\nspkB-u1 spkB\n"}, "utt2spk", 2, "expected 2 fields"),
        ({"utt2spk": "spkA-u1 spkA\n\nspkA-u2 spkA\nspkB-u1 spkB\n"}, "utt2spk", 2, "empty line"),
        ({"wav_scp": "spkA-u1 a1.wav\nspkA-u2\nspkB-u1 b1.wav\n"}, "wav.scp", 2, "at least 2 fields"),
        ({"spk2gender": "spkA f\nspkB x\n"}, "spk2gender", 2, "m or f"),
        ({"utt2dur": "spkA-u1 1.5\nspkA-u2 abc\nspkB-u1 2\n"}, "utt2dur", 2, "number"),
        ({"utt2dur": "spkA-u1 1.5\nspkA-u2 0\nspkB-u1 2\n"}, "utt2dur", 2, "positive"),
        ({"text": "spkA-u1 HI\nspkA-u2 HI\nspkB-u1 YES\nspkC-u1 NO\n"}, "text", 4, "not in utt2spk.*spkC-u1"),
        ({"utt2spk": "spkA-u1 spkA\r\nspkA-u2 spkA\nspkB-u1 spkB\n"}, "utt2spk", 1, "carriage return"),
        ({"spk2utt": "spkA spkA-u2 spkA-u1\nspkB spkB-u1\n"}, "spk2utt", 1, "order"),
        ({"spk2utt": "spkA spkA-u1\nspkB spkA-u2 spkB-u1\n"}, "spk2utt", 1, "spkA-u2"),
        ({"utt2num_frames": "spkA-u1 150\nspkA-u2 25\nspkB-u1 200\nzzz 3\n"}, "utt2num_frames", 4, "zzz"),
        ({"text": b"spkA-u1 HI\nspkA-u2 \xff\nspkB-u1 YES\n"}, "text", 2, "UTF-8"),
        ({"text": "spkA-u1 HI\nspkA-u2 HI\x07\nspkB-u1 YES\n"}, "text", 2, "control characters"),
        ({"text": "spkA-u1 HI\nspkA-u2 <s> HI\nspkB-u1 YES\n"}, "text", 2, "reserved symbols.*<s>"),
        ({"spk2gender": "spkA f\nspkB m"}, "spk2gender", 2, "newline"),
        ({"wav_scp": "spkA-u1 a1.wav\nspkA-u2 ~/a2.wav\nspkB-u1 b1.wav\n"}, "wav.scp", 2, "~"),
        ({"wav_scp": "spkA-u1 a1.wav\nspkA-u2 my file.wav\nspkB-u1 b1.wav\n"}, "wav.scp", 2, "does not end in '[|]'"),
        ({"utt2num_frames": "spkA-u1 150\nspkA-u2 2.5\nspkB-u1 200\n"}, "utt2num_frames", 2, "positive integer"),
    ],
)
def test_errors_name_file_and_line(tmp_path, changes, file, line, pattern):
    d = make_dir(tmp_path, with_changes(**changes))
    with pytest.raises(DataFormatError, match=pattern) as info:
        DataDir.read(d)
    assert info.value.path == str(d / file)
    assert info.value.line == line
    result = validate_data_dir(d)
    assert not result.ok
    assert any(e.startswith(f"{d / file}:{line}: ") for e in result.errors), result.errors


@pytest.mark.parametrize(
    "changes, file, pattern",
    [
        ({"wav_scp": "spkA-u1 a1.wav\nspkB-u1 b1.wav\n"}, "wav.scp", "no entry for 1 utterances.*spkA-u2"),
        ({"text": "spkA-u1 HI\nspkB-u1 YES\n"}, "text", "no entry.*spkA-u2"),
        ({"spk2gender": "spkA f\n"}, "spk2gender", "no entry for 1 speakers.*spkB"),
        ({"utt2spk": None}, "utt2spk", "missing required file"),
        ({"utt2spk": ""}, "utt2spk", "empty file"),
        ({"spk2utt": "spkA spkA-u1 spkA-u2\n"}, "spk2utt", "no entry for 1 speakers.*spkB"),
    ],
)
def test_missing_entries_name_the_file(tmp_path, changes, file, pattern):
    d = make_dir(tmp_path, with_changes(**changes))
    with pytest.raises(DataFormatError, match=pattern) as info:
        DataDir.read(d)
    assert info.value.path == str(d / file)


def test_validation_collects_every_problem(tmp_path):
    d = make_dir(
        tmp_path,
        with_changes(
            utt2spk="spkA-u2 spkA\nspkA-u1 spkA\nspkB-u1 spkB\n",  # unsorted, line 2
            spk2gender="spkA f\nspkB female\n",  # bad gender, line 2
            text="spkA-u1 HI\nspkA-u2 HI\n",  # spkB-u1 missing
            utt2dur="spkA-u1 1.5\nspkA-u2 1 2\nspkB-u1 2\n",  # 3 fields, line 2
        ),
    )
    errors = validate_data_dir(d).errors
    assert any(e.startswith(f"{d}/utt2spk:2: not sorted") for e in errors)
    assert any(e.startswith(f"{d}/spk2gender:2: ") and "'female'" in e for e in errors)
    assert any(e.startswith(f"{d}/text: no entry") and "spkB-u1" in e for e in errors)
    assert any(e.startswith(f"{d}/utt2dur:2: expected 2 fields") for e in errors)
    assert len(errors) >= 4


def test_unsorted_file_reports_first_line_and_count(tmp_path):
    d = make_dir(tmp_path, with_changes(utt2spk="spkB-u1 spkB\nspkA-u2 spkA\nspkA-u1 spkA\n"))
    errors = [e for e in validate_data_dir(d).errors if "utt2spk:" in e]
    assert len(errors) == 1 and errors[0].startswith(f"{d}/utt2spk:2: ") and "2 lines out of order" in errors[0]


def test_speaker_prefix_is_a_warning(tmp_path):
    files = {
        "wav.scp": "u1 a.wav\nu2 b.wav\n",
        "utt2spk": "u1 spkA\nu2 spkB\n",
    }
    d = make_dir(tmp_path, files)
    result = validate_data_dir(d)
    assert result.ok
    assert len(result.warnings) == 1 and "do not start with their speaker id" in result.warnings[0]
    DataDir.read(d)  # reading succeeds; the warning is only logged


def test_single_speaker_warns(tmp_path):
    result = validate_data_dir(make_dir(tmp_path, {"wav.scp": "s-1 a.wav\ns-2 b.wav\n", "utt2spk": "s-1 s\ns-2 s\n"}))
    assert result.ok and len(result.warnings) == 1 and "only one speaker" in result.warnings[0]


def test_utt2spk_not_sorted_by_speaker_warns(tmp_path):
    files = {"wav.scp": "a-1 x\na-b-1 y\na-c z\n", "utt2spk": "a-1 a\na-b-1 a-b\na-c a\n"}
    result = validate_data_dir(make_dir(tmp_path, files))
    assert result.ok
    assert any("not sorted by speaker" in w for w in result.warnings)


def test_segments(tmp_path):
    files = {
        "wav.scp": "rec1 rec1.wav\nrec2 rec2.wav\n",
        "segments": "s1-a rec1 0.0 1.25\ns1-b rec1 1.25 2.5\ns2-a rec2 0 3\n",
        "utt2spk": "s1-a s1\ns1-b s1\ns2-a s2\n",
    }
    d = make_dir(tmp_path, files)
    dd = DataDir.read(d)
    assert dd.segments["s1-b"] == Segment("rec1", 1.25, 2.5)
    assert dd.recording("s1-b") == "rec1"
    assert compute_utt2dur(dd) == {"s1-a": 1.25, "s1-b": 1.25, "s2-a": 3.0}
    sub = dd.subset(["s2-a"])
    assert sub.wav_scp == {"rec2": "rec2.wav"} and sub.speakers == ["s2"]
    # a recording that is not in wav.scp, and a segment that ends before it starts
    bad = dict(files, segments="s1-a rec1 0.0 1.25\ns1-b rec3 1.25 2.5\ns2-a rec2 3 1\n")
    d2 = make_dir(tmp_path, bad, "bad")
    errors = validate_data_dir(d2).errors
    assert any(e.startswith(f"{d2}/segments:2: ") and "'rec3'" in e for e in errors)
    assert any(e.startswith(f"{d2}/segments:3: ") and "start < end" in e for e in errors)
    # end -1 (to the end of the recording) is valid, as in extract-segments; -2 is not
    minus_one = dict(files, segments="s1-a rec1 0.0 1.25\ns1-b rec1 1.25 -1\ns2-a rec2 0 3\n")
    assert DataDir.read(make_dir(tmp_path, minus_one, "minus_one")).segments["s1-b"] == Segment("rec1", 1.25, None)
    minus_two = dict(files, segments="s1-a rec1 0.0 1.25\ns1-b rec1 1.25 -2\ns2-a rec2 0 3\n")
    with pytest.raises(DataFormatError, match="only negative end allowed is -1") as info:
        DataDir.read(make_dir(tmp_path, minus_two, "minus_two"))
    assert info.value.line == 2
    # a recording that no segment uses is only a warning
    unused = dict(files, segments="s1-a rec1 0.0 1.25\ns1-b rec1 1.25 2.5\ns2-a rec1 3 4\n")
    result = validate_data_dir(make_dir(tmp_path, unused, "unused"))
    assert result.ok and any("rec2" in w for w in result.warnings)


def test_subset_filters_every_table(tmp_path):
    dd = DataDir.read(make_dir(tmp_path, GOOD))
    sub = dd.subset(["spkB-u1"])
    assert sub.utts == ["spkB-u1"]
    assert sub.wav_scp == {"spkB-u1": "b1.wav"}
    assert sub.text == {"spkB-u1": "YES"}
    assert sub.spk2gender == {"spkB": "m"}
    assert sub.utt2dur == {"spkB-u1": 2.0}
    assert sub.extra == {"utt2num_frames": {"spkB-u1": "200"}}
    assert sub.check().ok
    with pytest.raises(SpeechUnitsError, match="nope"):
        dd.subset(["nope"])


def test_write_refuses_inconsistent_and_removes_stale_files(tmp_path):
    dd = DataDir(wav_scp={"s-1": "a.wav"}, utt2spk={"s-1": "s", "s-2": "s"})
    with pytest.raises(DataFormatError, match="s-2"):
        dd.write(tmp_path / "x")
    assert not (tmp_path / "x" / "utt2spk").exists()
    d = make_dir(tmp_path, GOOD, "out")
    DataDir(wav_scp={"s-1": "a.wav"}, utt2spk={"s-1": "s"}).write(d)
    assert not (d / "text").exists() and not (d / "spk2gender").exists() and not (d / "utt2num_frames").exists()
    assert DataDir.read(d) == DataDir(wav_scp={"s-1": "a.wav"}, utt2spk={"s-1": "s"})


def test_read_table_generic(tmp_path):
    (tmp_path / "utt2lang").write_text("a en\nb  fr  CA\n")
    assert read_table(tmp_path / "utt2lang") == {"a": "en", "b": "fr  CA"}
    (tmp_path / "bad").write_text("b en\na fr\n")
    with pytest.raises(DataFormatError, match="not sorted") as info:
        read_table(tmp_path / "bad")
    assert info.value.line == 2


def test_compute_utt2dur_from_audio(tmp_path):
    sr = 8000
    for name, n in [("a1", 8000), ("b1", 4000)]:
        soundfile.write(tmp_path / f"{name}.wav", np.zeros(n, dtype=np.float32), sr)
    dd = DataDir(
        wav_scp={"spkA-u1": "a1.wav", "spkA-u2": "sox a2.wav -t wav - |", "spkB-u1": "b1.wav", "spkB-u2": "gone.wav"},
        utt2spk={"spkA-u1": "spkA", "spkA-u2": "spkA", "spkB-u1": "spkB", "spkB-u2": "spkB"},
    )
    report = BatchReport()
    durs = compute_utt2dur(dd, base_dir=tmp_path, report=report)
    assert durs == {"spkA-u1": 1.0, "spkB-u1": 0.5}
    assert sorted(report.failures) == ["spkA-u2", "spkB-u2"]
    with pytest.raises(AudioError, match="spkA-u2"):
        compute_utt2dur(dd, base_dir=tmp_path)


def test_cli_validate_data(tmp_path, capsys):
    d = make_dir(tmp_path, GOOD)
    (tmp_path / "a1.wav").write_bytes(b"")  # existence only: audio is not decoded
    # a2 is a pipe (not checked); b1.wav is missing
    assert main(["validate-data", str(d), "--base-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"error: {d}/wav.scp:3: audio of 'spkB-u1' not found" in out
    assert "FAILED (1 errors, 1 warnings)" in out  # the warning: a2 is a pipe
    assert f"warning: {d}/wav.scp:2: entry of 'spkA-u2' is a shell command" in out
    assert main(["validate-data", str(d), "--no-check-audio"]) == 0
    assert "OK (0 errors" in capsys.readouterr().out


def test_cli_every_problem_printed(tmp_path, capsys):
    utt2spk = "spkA-u1 spkA\nspkA-u2 spkA\nspkB-u1 spkB\nzz-1 zz\n"
    d = make_dir(tmp_path, with_changes(spk2gender="spkA f\nspkB q\n", utt2spk=utt2spk))
    assert main(["validate-data", str(d), "--no-check-audio"]) == 1
    out = capsys.readouterr().out
    assert f"{d}/spk2gender:2:" in out
    assert "zz-1" in out  # no wav.scp / text / utt2dur entry for it
    assert "FAILED" in out


def test_real_corpus_validates(shared, capsys, monkeypatch):
    corpus = shared.speechocean762()
    assert main(["validate-data", str(corpus), "--base-dir", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "error:" not in out and "OK (0 errors" in out
    # relative paths resolve against the current directory, as in a recipe
    monkeypatch.chdir(corpus)
    assert main(["validate-data", "."]) == 0
    dd = DataDir.read(corpus)
    assert len(dd.utts) == 2500 and len(dd.speakers) == 125
    assert set(dd.spk2gender.values()) == {"m", "f"}
    assert "spk2age" in dd.extra and "text-phone" not in dd.extra


def test_read_without_checks_accepts_unsorted_and_inconsistent(tmp_path):
    d = make_dir(tmp_path, with_changes(utt2spk="spkB-u1 spkB\nspkA-u1 spkA\nspkA-u2 spkA\n", text="spkA-u1 HI\n"))
    with pytest.raises(DataFormatError):
        DataDir.read(d)
    dd = DataDir.read(d, check=False)
    assert dd.utts == ["spkA-u1", "spkA-u2", "spkB-u1"] and dd.text == {"spkA-u1": "HI"}
    with pytest.raises(DataFormatError, match="expected 2 fields"):  # malformed lines still raise
        DataDir.read(make_dir(tmp_path, with_changes(utt2spk="spkA-u1\n"), "bad"), check=False)


def test_audio_paths_relative_to_base_dir(tmp_path, monkeypatch):
    d = make_dir(tmp_path, {"wav.scp": "s-1 audio/a.wav\nt-1 /no/such/b.wav\n", "utt2spk": "s-1 s\nt-1 t\n"})
    (d / "audio").mkdir()
    (d / "audio" / "a.wav").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    errors = validate_data_dir(d, check_audio=True).errors
    assert [e.split(": ")[0] for e in errors] == [f"{d}/wav.scp:1", f"{d}/wav.scp:2"]
    errors = validate_data_dir(d, check_audio=True, base_dir=d).errors
    assert len(errors) == 1 and "/no/such/b.wav" in errors[0]
    # all missing files exist relative to the data dir: a hint says so
    (d / "wav.scp").write_text("s-1 audio/a.wav\n")
    (d / "utt2spk").write_text("s-1 s\n")
    result = validate_data_dir(d, check_audio=True)
    assert len(result.errors) == 1 and any("--base-dir" in w for w in result.warnings)
    assert validate_data_dir(d, check_audio=True, base_dir=d).ok


def test_read_names_every_problem_not_only_the_first(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_text("u1 a.wav\nbadline\nu3 c.wav\nbad2\n")
    (d / "utt2spk").write_text("u1 s1\nu2\nu3 s1\n")
    with pytest.raises(DataFormatError) as caught:
        DataDir.read(d)
    e = caught.value
    assert (e.path, e.line) == (str(d / "utt2spk"), 2)  # the first, with its file and line
    for where in ("utt2spk:2", "wav.scp:2", "wav.scp:4"):
        assert where in str(e)
    assert "and 2 more problem(s)" in str(e)
    # a long list is capped
    (d / "utt2spk").write_text("".join(f"u{i}\n" for i in range(30)))
    with pytest.raises(DataFormatError) as caught:
        DataDir.read(d)
    message = str(caught.value)
    assert message.count("expected 2 fields") == 10  # the first and 9 more listed
    n_more = int(message.split("(and ")[1].split(" ")[0])
    assert n_more >= 30 and message.endswith(f"; and {n_more - 9} more)")
