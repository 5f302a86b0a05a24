"""`prepare folder`: speakers from folders or a pattern, ids, transcripts, TextGrid/CTM
alignments, and every bad file named in failed.txt."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechunits.batch import BatchReport
from speechunits.cli import main
from speechunits.corpora.folder import FolderConfig, assign_ids, fit_alignment, import_folder, sanitise
from speechunits.data.ctm import read_ctm
from speechunits.data.datadir import DataDir
from speechunits.data.items import read_items
from speechunits.errors import DataFormatError, SpeechUnitsError

SR = 16000


def _wav(path: Path, seconds: float, fmt: str = "WAV") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR, format=fmt)
    return path


def _grid(intervals, xmax, tier="phones"):
    """A long-format TextGrid written by hand (Praat's layout)."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {xmax}",
             "tiers? <exists>", "size = 1", "item []:", "    item [1]:", '        class = "IntervalTier"',
             f'        name = "{tier}"', "        xmin = 0", f"        xmax = {xmax}",
             f"        intervals: size = {len(intervals)}"]  # fmt: skip
    for k, (a, b, t) in enumerate(intervals, 1):
        lines += [f"        intervals [{k}]:", f"            xmin = {a}", f"            xmax = {b}", f'            text = "{t}"']
    return "\n".join(lines) + "\n"


def test_sanitise():
    assert sanitise("a b/c:d-e_f.g") == "a_b_c_d-e_f.g"


def test_speaker_from_dir_and_ids(tmp_path):
    audio = tmp_path / "audio"
    _wav(audio / "alice" / "s1.wav", 0.5)
    _wav(audio / "alice" / "sub" / "s2.flac", 0.25, "FLAC")
    _wav(audio / "bob" / "bob-07.wav", 0.3)  # already speaker-prefixed: kept
    _wav(audio / "my spk" / "take 1.ogg", 0.4, "OGG")
    _wav(audio / "loose.wav", 0.2)  # no speaker folder
    out = tmp_path / "data"
    made = import_folder(audio, out, FolderConfig())
    dd = DataDir.read(out)
    assert dd.utt2spk == {"alice-s1": "alice", "alice-s2": "alice", "bob-07": "bob", "my_spk-take_1": "my_spk"}
    assert dd.wav_scp["alice-s2"] == str(audio / "alice" / "sub" / "s2.flac")
    link = Path(dd.wav_scp["my_spk-take_1"])  # wav.scp cannot hold whitespace: a link to the file
    assert link == out / "links" / "my_spk-take_1.ogg" and link.resolve() == audio / "my spk" / "take 1.ogg"
    assert dd.utt2dur == pytest.approx({"alice-s1": 0.5, "alice-s2": 0.25, "bob-07": 0.3, "my_spk-take_1": 0.4})
    assert made.report.failures == {"loose.wav": "loose.wav: not inside a speaker folder (speaker from dir)"}
    assert (out / "failed.txt").read_text().splitlines() == ["loose.wav: not inside a speaker folder (speaker from dir)"]
    assert not (out / "alignments.ctm").exists()


def test_speaker_from_pattern_and_from_file():
    paths = [Path("/a/F01_001.wav"), Path("/a/M02_x.wav"), Path("/a/noise.wav")]
    report = BatchReport()
    files = assign_ids(Path("/a"), paths, FolderConfig(speaker_from="pattern", pattern=r"^(?P<spk>[FM]\d+)_"), report)
    assert [(f.speaker, f.utt) for f in files] == [("F01", "F01-F01_001"), ("M02", "M02-M02_x")]
    assert list(report.failures) == ["noise.wav"] and "does not match" in report.failures["noise.wav"]
    files = assign_ids(Path("/a"), paths, FolderConfig(speaker_from="file"), BatchReport())
    assert [(f.speaker, f.utt) for f in files] == [("F01_001", "F01_001"), ("M02_x", "M02_x"), ("noise", "noise")]


def test_bad_config_is_an_error():
    with pytest.raises(SpeechUnitsError, match="no named group"):
        FolderConfig(speaker_from="pattern", pattern=r"^(\w+)_").check()
    with pytest.raises(SpeechUnitsError, match="speaker_from"):
        FolderConfig(speaker_from="nowhere").check()


def test_duplicate_ids_and_unreadable_audio_fail_by_name(tmp_path):
    audio = tmp_path / "audio"
    _wav(audio / "s1" / "a.wav", 0.3)
    _wav(audio / "s1" / "a.flac", 0.3, "FLAC")  # same id s1-a
    _wav(audio / "s1" / "b.wav", 0.3)
    (audio / "s2").mkdir()
    (audio / "s2" / "c.wav").write_text("not audio\n" * 40)
    made = import_folder(audio, tmp_path / "data", FolderConfig())
    f = made.report.failures
    assert sorted(f) == ["s1/a.flac", "s1/a.wav", "s2/c.wav"]
    assert "utterance id s1-a is shared by s1/a.flac, s1/a.wav" in f["s1/a.wav"]
    assert "unreadable" in f["s2/c.wav"]
    assert DataDir.read(tmp_path / "data").utts == ["s1-b"]


def test_transcripts_text_file_and_sidecar(tmp_path):
    audio = tmp_path / "audio"
    for spk, stem in (("s1", "a"), ("s1", "b"), ("s2", "c")):
        _wav(audio / spk / f"{stem}.wav", 0.3)
    text = tmp_path / "text"
    text.write_text("s2/c  third one\ns1-a first\nb the  second\nunused nothing\n")  # rel path, utt id, stem
    made = import_folder(audio, tmp_path / "d1", FolderConfig(transcripts=str(text)))
    assert made.report.ok
    assert DataDir.read(tmp_path / "d1").text == {"s1-a": "first", "s1-b": "the second", "s2-c": "third one"}

    (audio / "s1" / "a.txt").write_text("hello\nthere\n")
    (audio / "s2" / "c.lab").write_text("lab file")
    made = import_folder(audio, tmp_path / "d2", FolderConfig(transcripts="sidecar"))
    assert DataDir.read(tmp_path / "d2").text == {"s1-a": "hello there", "s2-c": "lab file"}
    assert list(made.report.failures) == ["s1/b.wav"] and "no transcript b.txt" in made.report.failures["s1/b.wav"]


def test_textgrid_alignments_become_ctm_and_items(tmp_path):
    audio, grids = tmp_path / "audio", tmp_path / "grids"
    _wav(audio / "s1" / "a.wav", 1.0)
    _wav(audio / "s1" / "b.wav", 0.5)
    _wav(audio / "s2" / "c.wav", 1.0)
    _wav(audio / "s2" / "d.wav", 0.6)
    grids.mkdir()
    a = [(0, 0.1, ""), (0.1, 0.3, "K"), (0.3, 0.5, "AE1"), (0.5, 0.7, "T"), (0.7, 1.0, "")]
    (grids / "a.TextGrid").write_text(_grid(a, 1.0))
    (grids / "s2").mkdir()
    (grids / "s2" / "c.TextGrid").write_text(_grid([(0, 0.2, "sil"), (0.2, 0.4, "D"), (0.4, 0.6, "AO1"), (0.6, 0.8, "G"), (0.8, 1.005, "")], 1.005))
    (grids / "b.TextGrid").write_text(_grid([(0, 0.5, "AH")], 0.5, tier="words"))  # no phones tier
    # d has no TextGrid
    out = tmp_path / "data"
    assert main(["prepare", "folder", str(audio), str(out), "--alignments", str(grids), "--strip-stress"]) == 1
    failed = (out / "failed.txt").read_text()
    assert "s1/b.wav: TextGrid" in failed and "no tier named 'phones' (tiers: 'words')" in failed
    assert "s2/d.wav: no TextGrid" in failed
    ctm = read_ctm(out / "alignments.ctm")
    expected = [(0, 0.1, "sil"), (0.1, 0.3, "K"), (0.3, 0.5, "AE"), (0.5, 0.7, "T"), (0.7, 1.0, "sil")]
    assert [p for _, _, p in ctm["s1-a"]] == [p for _, _, p in expected]
    assert np.allclose([t for s in ctm["s1-a"] for t in s[:2]], [t for s in expected for t in s[:2]], atol=2e-6)
    assert ctm["s2-c"][-1] == pytest.approx((0.8, 1.0, "sil"))  # 5 ms past the audio: clipped
    items = read_items(out / "phone.item")
    assert sorted(zip(items.file, items.phone, items.prev, items.next)) == [("s1-a", "AE", "K", "T"), ("s2-c", "AO", "D", "G")]
    assert main(["prepare", "folder", str(audio), str(out), "--alignments", str(grids), "--allow-failures"]) == 0


def test_ctm_alignments_and_spk2gender(tmp_path):
    audio = tmp_path / "audio"
    _wav(audio / "s1" / "a.wav", 1.0)
    _wav(audio / "s2" / "b.wav", 0.5)
    ctm = tmp_path / "in.ctm"
    ctm.write_text("a 1 0 0.2 sil\na 1 0.2 0.3 AH\na 1 0.5 0.5 sil\nb 1 0 0.3 AH\nb 1 0.3 0.5 B\n")  # b runs 0.3 s past its audio
    genders = tmp_path / "spk2gender"
    genders.write_text("s2 F\ns1 m\n")
    out = tmp_path / "data"
    made = import_folder(audio, out, FolderConfig(alignments=str(ctm), spk2gender=str(genders)))
    assert list(made.report.failures) == ["s2/b.wav"]
    assert "past the end of the audio" in made.report.failures["s2/b.wav"]
    assert list(read_ctm(out / "alignments.ctm")) == ["s1-a"]
    assert read_ctm(out / "alignments.ctm")["s1-a"] == [pytest.approx(x) for x in [(0, 0.2, "sil"), (0.2, 0.5, "AH"), (0.5, 1.0, "sil")]]
    assert DataDir.read(out).spk2gender == {"s1": "m"}
    genders.write_text("s1 m\n")
    with pytest.raises(SpeechUnitsError, match="no gender for speakers s2"):
        import_folder(audio, out, FolderConfig(spk2gender=str(genders)))


def test_fit_alignment():
    assert fit_alignment([(0, 0.5, "A"), (0.5, 1.004, "B")], 1.0, 0.01) == [(0, 0.5, "A"), (0.5, 1.0, "B")]
    with pytest.raises(DataFormatError, match="past the end"):
        fit_alignment([(0, 0.5, "A"), (0.5, 1.02, "B")], 1.0, 0.01)
    with pytest.raises(DataFormatError, match="overlaps"):
        fit_alignment([(0, 0.5, "A"), (0.4, 0.9, "B")], 1.0, 0.01)


def test_cli_exit_status_and_pattern(tmp_path, capsys):
    audio = tmp_path / "audio"
    _wav(audio / "F01_1.wav", 0.3)
    _wav(audio / "M02_1.wav", 0.3)
    (audio / "junk.wav").write_text("junk\n" * 20)
    out = tmp_path / "data"
    assert main(["prepare", "folder", str(audio), str(out), "--pattern", r"^(?P<spk>[FM]\d+)_"]) == 1
    captured = capsys.readouterr()
    assert "2 of 3 files imported, 2 speakers" in captured.out
    assert "failed: junk.wav" in captured.err and "--allow-failures" in captured.err
    assert main(["prepare", "folder", str(audio), str(out), "--pattern", r"^(?P<spk>[FM]\d+)_", "--allow-failures"]) == 0
    assert main(["prepare", "folder", str(audio), str(out), "--pattern", "x", "--speaker-from", "dir"]) == 1
    assert "--pattern is for --speaker-from pattern" in capsys.readouterr().err
    assert main(["prepare", "folder", str(tmp_path / "none"), str(out)]) == 1
