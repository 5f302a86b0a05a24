"""wav.scp and segments read on their own (read_wav_scp, read_segments) and the Segment type.

References: hand-written expected tables and the file/line of each planted fault;
for valid files, DataDir.read of the same files (the data-dir reader) must agree.
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile

from speechunits.data.datadir import DataDir, Segment, compute_utt2dur, read_segments, read_wav_scp, validate_data_dir
from speechunits.errors import DataFormatError, SpeechUnitsError


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def raises_at(reader, path: Path, line: int | None, pattern: str) -> DataFormatError:
    with pytest.raises(DataFormatError, match=pattern) as e:
        reader(path)
    assert e.value.path == str(path) and e.value.line == line
    assert str(e.value).startswith(f"{path}:{line}: " if line else f"{path}: ")
    return e.value


# ----------------------------------------------------------------------------- wav.scp


def test_read_wav_scp(tmp_path):
    p = write(tmp_path / "wav.scp", "a x/a.flac\nb /abs/b.wav\nc sox  in.wav -t wav - |\n")
    assert read_wav_scp(p) == {"a": "x/a.flac", "b": "/abs/b.wav", "c": "sox  in.wav -t wav - |"}
    assert read_wav_scp(str(p)) == read_wav_scp(p)


@pytest.mark.parametrize(
    "text,line,pattern",
    [
        ("a x.wav\nb\n", 2, r"expected at least 2 fields \(<recording> <path or command>\), found 1"),
        ("a x.wav\nb my file.wav\n", 2, "'my file.wav' has several fields but does not end in '[|]'"),
        ("a x.wav\nb y.wav\na z.wav\n", 3, "duplicate key 'a' .first on line 1"),
        ("a x.wav\n\nb y.wav\n", 2, "empty line"),  # audio.py used to skip these; data dirs refuse them
        ("a x.wav\n   \nb y.wav\n", 2, "empty line"),
        ("b y.wav\na x.wav\n", 2, "not sorted in C order: 'a' comes after 'b' .line 1"),
        ("a x.wav\nb y.wav", 2, "last line does not end with a newline"),
        ("a x.wav\r\nb y.wav\n", 1, "carriage return"),
        ("a x.wav\n b y.wav\n", 2, "starts with whitespace"),
        ("a x.wav\nb ~/y.wav\n", 2, "do not use ~"),
        (b"a x.wav\nb \xff.wav\n", 2, "not valid UTF-8"),
    ],
)
def test_read_wav_scp_errors(tmp_path, text, line, pattern):
    raises_at(read_wav_scp, write(tmp_path / "wav.scp", text), line, pattern)


def test_read_wav_scp_any_file_name_and_order_option(tmp_path):
    p = write(tmp_path / "my.scp", "b y.wav\na x.wav\n")
    raises_at(read_wav_scp, p, 2, "not sorted")
    assert read_wav_scp(p, check_order=False) == {"b": "y.wav", "a": "x.wav"}
    assert list(read_wav_scp(p, check_order=False)) == ["b", "a"]  # file order


def test_missing_file(tmp_path):
    raises_at(read_wav_scp, tmp_path / "wav.scp", None, "file not found")
    raises_at(read_segments, tmp_path / "segments", None, "file not found")


# ----------------------------------------------------------------------------- segments


def test_read_segments(tmp_path):
    p = write(tmp_path / "segments", "s1 r1 0.5 1.25\ns2 r1 1.25 -1\ns3 r2 0 2e0\n")
    segs = read_segments(p)
    assert segs == {"s1": Segment("r1", 0.5, 1.25), "s2": Segment("r1", 1.25, None), "s3": Segment("r2", 0.0, 2.0)}
    assert segs["s2"].end is None and segs["s2"].open_end and not segs["s1"].open_end
    assert segs["s1"].duration == 0.75


@pytest.mark.parametrize(
    "bad_line,pattern",
    [
        ("s2 r1 0.5", r"expected 4 fields \(<utt> <recording> <start> <end>\), found 3"),
        ("s2 r1 0.5 1.0 0", "expected 4 fields .* found 5"),
        ("s2 r1 zero 1.0", "start time of 's2' must be a number of seconds, found 'zero'"),
        ("s2 r1 0.5 nan", "end time of 's2' must be a number of seconds, found 'nan'"),
        ("s2 r1 0.5 inf", "end time of 's2' must be a number"),
        ("s2 r1 0.5 1e999", "end time of 's2' must be a number"),  # overflows to inf
        ("s2 r1 1.0 1.0", "segment of 's2' needs start < end, found 1 1"),
        ("s2 r1 1.0 0.5", "segment of 's2' needs start < end, found 1 0.5"),
        ("s2 r1 -0.5 1.0", "segment of 's2' starts at a negative time, -0.5 s"),
        ("s2 r1 -0.5 -1", "starts at a negative time"),
        ("s2 r1 0.5 -2", "ends at -2 s; the only negative end allowed is -1"),
        ("s1 r1 0.5 1.0", "duplicate key 's1' .first on line 1"),
        ("", "empty line"),
        ("s0 r1 0 1", "not sorted in C order: 's0' comes after 's1'"),
    ],
)
def test_read_segments_errors(tmp_path, bad_line, pattern):
    p = write(tmp_path / "segments", f"s1 r1 0 1\n{bad_line}\ns3 r1 0 1\n")
    raises_at(read_segments, p, 2, pattern)


def test_earliest_line_is_reported(tmp_path):
    # the parser works in passes (lines, then times, then ranges); the error raised is still the first in the file
    p = write(tmp_path / "segments", "s1 r1 0 1\ns2 r1 x 1\ns3 r1 2 1\ns3 r1 0 1\n")
    raises_at(read_segments, p, 2, "start time of 's2'")
    p = write(tmp_path / "segments", "s1 r1 0 1\ns2 r1 2 1\ns2 r1 0 1\n")
    raises_at(read_segments, p, 2, "needs start < end")


def test_agrees_with_data_dir_reader(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    write(d / "wav.scp", "r1 a.wav\nr2 sox b.wav -t wav - |\n")
    write(d / "segments", "r1-a r1 0 1.5\nr1-b r1 1.5 -1\nr2-a r2 0.25 0.5\n")
    write(d / "utt2spk", "r1-a r1\nr1-b r1\nr2-a r2\n")
    dd = DataDir.read(d)
    assert read_wav_scp(d / "wav.scp") == dd.wav_scp
    assert read_segments(d / "segments") == dd.segments
    # a bad line gives the same file, line and message through both readers
    write(d / "segments", "r1-a r1 0 1.5\nr1-b r1 1.5 -3\nr2-a r2 0.25 0.5\n")
    direct = raises_at(read_segments, d / "segments", 2, "only negative end allowed is -1")
    with pytest.raises(DataFormatError) as e:
        DataDir.read(d)
    assert str(e.value) == str(direct)


# ----------------------------------------------------------------------------- Segment and end -1


def test_segment_open_end():
    seg = Segment("rec", 1.5, -1)
    assert seg.end is None and seg == Segment("rec", 1.5, None) and seg.open_end
    assert seg.end_text == "-1" and Segment("rec", 0.1 + 0.2, 0.3 + 0.4).end_text == "0.7"
    with pytest.raises(SpeechUnitsError, match="'rec' from 1.5 s runs to the end of the recording"):
        seg.duration


def test_data_dir_accepts_end_minus_one(tmp_path):
    # extract-segments reads end -1 as "to the end of the recording"; so do DataDir.read and validation
    files = {
        "wav.scp": "rec1 rec1.wav\nrec2 rec2.wav\n",
        "segments": "s1-a rec1 0 1.25\ns1-b rec1 1.25 -1\ns2-a rec2 0.5 -1\n",
        "utt2spk": "s1-a s1\ns1-b s1\ns2-a s2\n",
        "spk2utt": "s1 s1-a s1-b\ns2 s2-a\n",
    }
    d = tmp_path / "data"
    d.mkdir()
    for name, text in files.items():
        write(d / name, text)
    dd = DataDir.read(d)
    assert dd.segments["s1-b"] == Segment("rec1", 1.25, None)
    assert validate_data_dir(d).ok and dd.check().ok
    dd.write(tmp_path / "copy")  # -1 written back as -1
    for name, text in files.items():
        assert (tmp_path / "copy" / name).read_text() == text, name
    # durations of open segments come from the recording's header
    sr = 8000
    soundfile.write(tmp_path / "rec1.wav", np.zeros(2 * sr, dtype=np.float32), sr)
    soundfile.write(tmp_path / "rec2.wav", np.zeros(sr // 4, dtype=np.float32), sr)
    from speechunits.batch import BatchReport

    report = BatchReport()
    assert compute_utt2dur(dd, base_dir=tmp_path, report=report) == {"s1-a": 1.25, "s1-b": 0.75}
    assert list(report.failures) == ["s2-a"] and "at or after the end of the recording" in report.failures["s2-a"]
