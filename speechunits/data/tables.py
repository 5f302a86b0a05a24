"""Kaldi tables: the one line parser of every data-dir table, and wav.scp / segments on their own.

A table is a text file of lines keyed by their first field, sorted in C order with
unique keys (see speechunits/data/datadir.py for the tables of a data dir). Here:
the record reader (`_read_records`) and its problem collector (`_Problems`,
`ValidationResult`), the `Segment` class, `read_table`, `write_table`, and
`read_wav_scp` / `read_segments`, which read one of those two files on its own
with the same parser and checks as `DataDir.read`.

This module opens no audio, so both `speechunits.data.datadir` (data dirs, which
also opens audio to validate it and to compute utt2dur) and `speechunits.audio`
(AudioLoader over wav.scp + segments) import it without importing each other
(docs/design.md section 2). `speechunits.data.datadir` re-exports its public names.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Mapping

from speechunits.data.pipes import is_pipe
from speechunits.errors import DataFormatError, SpeechUnitsError
from speechunits.fileio import write_lines


WHITESPACE = re.compile(r"[ \t]+")  # Kaldi splits fields on spaces and tabs only
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclasses.dataclass(frozen=True)
class _Layout:
    min_fields: int
    max_fields: int | None
    text: str  # shown in messages


_LAYOUTS = {
    "wav.scp": _Layout(2, None, "<recording> <path or command>"),
    "segments": _Layout(4, 4, "<utt> <recording> <start> <end>"),
    "utt2spk": _Layout(2, 2, "<utt> <speaker>"),
    "spk2utt": _Layout(2, None, "<speaker> <utt> ..."),
    "text": _Layout(1, None, "<utt> <words ...>"),
    "spk2gender": _Layout(2, 2, "<speaker> m|f"),
    "utt2dur": _Layout(2, 2, "<utt> <seconds>"),
}
_EXTRA_LAYOUT = _Layout(2, None, "<key> <value ...>")
MAX_EXAMPLES = 5  # keys named in one message; the rest are counted


def format_seconds(x: float) -> str:
    """Seconds as short text that still keeps ten significant digits (0.1 + 0.2 -> "0.3")."""
    return format(float(x), ".10g")


@dataclasses.dataclass(frozen=True)
class Segment:
    """One line of `segments`: the utterance is [start, end) seconds of `recording`.

    `end` None means "to the end of the recording", which Kaldi writes as -1 (and
    extract-segments accepts). It is None rather than -1 here so that arithmetic
    on an open end fails loudly instead of giving a negative duration; an end of
    -1 passed to the constructor is stored as None, and `write` turns it back into -1.
    """

    recording: str
    start: float
    end: float | None

    def __post_init__(self) -> None:
        if self.end is not None and self.end == -1:
            object.__setattr__(self, "end", None)

    @property
    def open_end(self) -> bool:
        """True when the segment runs to the end of its recording (end -1)."""
        return self.end is None

    @property
    def duration(self) -> float:
        """Seconds; an open end (-1) has no duration without the recording's length, so it raises."""
        if self.end is None:
            raise SpeechUnitsError(
                f"the segment of {self.recording!r} from {self.start:g} s runs to the end of the recording "
                "(end -1): its duration needs the recording's length (compute_utt2dur or AudioLoader.duration "
                "read it from the audio)"
            )
        return self.end - self.start

    @property
    def end_text(self) -> str:
        """The end as written in a segments file ("-1" for an open end)."""
        return "-1" if self.end is None else format_seconds(self.end)


@dataclasses.dataclass
class ValidationResult:
    """Problems found in a data dir, as `path[:line]: message` strings."""

    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class _Problems:
    """Collects problems; in strict mode the first error raises instead.

    `folder` and `records` (set once the tables are parsed) let `at` name the file
    and line of a (table, key); for in-memory tables only the table name is known.
    """

    def __init__(self, strict: bool, folder: Path | None = None):
        self.strict = strict
        self.folder = folder
        self.records: dict[str, dict[str, _Record]] = {}
        self.result = ValidationResult()
        self.exceptions: list[DataFormatError] = []  # the errors of result.errors, as raised

    def where(self, name: str) -> str:
        return str(self.folder / name) if self.folder is not None else name

    def at(self, name: str, key: str | None, message: str, warn: bool = False) -> None:
        """A problem with `key` of table `name` (key None: with the table as a whole)."""
        record = self.records.get(name, {}).get(key) if key is not None else None
        (self.warn if warn else self.error)(message, self.where(name), record.line if record else None)

    def error(self, message: str, path: str | None = None, line: int | None = None) -> None:
        err = DataFormatError(message, path, line)
        if self.strict:
            raise err
        self.result.errors.append(str(err))
        self.exceptions.append(err)

    def raise_earliest(self) -> None:
        """Raise the collected error with the lowest line number (whole-file errors first)."""
        if self.exceptions:
            raise min(self.exceptions, key=lambda e: e.line or 0)

    def warn(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.result.warnings.append(str(DataFormatError(message, path, line)))


@dataclasses.dataclass(frozen=True)
class _Record:
    line: int
    fields: list[str]
    rest: str  # everything after the key, as written (wav.scp commands keep their spaces)


def _read_records(
    path: Path, problems: _Problems, layout: _Layout = _EXTRA_LAYOUT, check_order: bool = True
) -> dict[str, _Record]:
    """Parse a key-first table; report malformed, duplicate and out-of-order lines."""
    where = str(path)
    records: dict[str, _Record] = {}
    prev: tuple[str, int] | None = None
    unsorted: list[tuple[int, str, str, int]] = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problems.error("file not found", where)
        return records
    except OSError as e:
        problems.error(f"cannot read: {e.strerror or e}", where)
        return records
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if data and not data.endswith(b"\n"):
        problems.error("last line does not end with a newline", where, len(lines))
    for n, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.error("not valid UTF-8", where, n)
            continue
        if "\r" in line:
            problems.error("carriage return in line (Windows line endings? convert with dos2unix)", where, n)
            continue
        if not line.strip(" \t"):
            problems.error("empty line", where, n)
            continue
        if line[0] in " \t":
            problems.error("line starts with whitespace", where, n)
            continue
        fields = WHITESPACE.split(line.strip(" \t"))
        if len(fields) < layout.min_fields or (layout.max_fields and len(fields) > layout.max_fields):
            want = f"{layout.min_fields}" if layout.min_fields == layout.max_fields else f"at least {layout.min_fields}"
            problems.error(f"expected {want} fields ({layout.text}), found {len(fields)}", where, n)
            continue
        key = fields[0]
        if key in records:
            problems.error(f"duplicate key {key!r} (first on line {records[key].line})", where, n)
            continue
        if check_order and prev is not None and key < prev[0]:
            if problems.strict:
                problems.error(f"not sorted in C order: {key!r} comes after {prev[0]!r} (line {prev[1]})", where, n)
            unsorted.append((n, key, prev[0], prev[1]))
        records[key] = _Record(n, fields, line[len(key) :].strip(" \t"))
        prev = (key, n)
    if unsorted:
        n, key, prev_key, prev_line = unsorted[0]
        more = f"; {len(unsorted)} lines out of order" if len(unsorted) > 1 else ""
        problems.error(
            f"not sorted in C order: {key!r} comes after {prev_key!r} (line {prev_line}){more}; "
            "sort with LC_ALL=C sort",
            where,
            n,
        )
    return records


def read_table(path: str | os.PathLike, check_order: bool = True) -> dict[str, str]:
    """A generic `key value...` table as {key: rest of line}; raises on the first problem."""
    records = _read_records(Path(path), _Problems(strict=True), _EXTRA_LAYOUT, check_order)
    return {k: r.rest for k, r in records.items()}


def read_wav_scp(path: str | os.PathLike, check_order: bool = True) -> dict[str, str]:
    """A Kaldi wav.scp on its own: {recording: path, or command ending in '|'}.

    The parser and checks of `DataDir.read`: every line `<recording> <path or
    command>`, no empty lines, unique keys, sorted in C order (unless
    `check_order` is False), a path without whitespace (only a command, ending in
    '|', has several fields), no '~'. Raises DataFormatError naming the file and
    the 1-based line of the first problem; a missing file is one too.
    """

    def parse(records: dict[str, _Record], problems: _Problems, name: str) -> dict[str, str]:
        table = {k: r.rest for k, r in records.items()}
        _check_wav_scp(table, problems, name)
        return table

    return _read_one(path, "wav.scp", parse, check_order)


def read_segments(path: str | os.PathLike, check_order: bool = True) -> dict[str, Segment]:
    """A Kaldi segments file on its own: {utt: Segment}.

    Lines are `<utt> <recording> <start> <end>` in seconds; end -1 means to the
    end of the recording (Segment.end None). The parser and checks of
    `DataDir.read`: four fields, finite numbers, 0 <= start < end (or end -1),
    unique keys, C order (unless `check_order` is False), no empty lines. Raises
    DataFormatError naming the file and the 1-based line of the first problem.
    """

    def parse(records: dict[str, _Record], problems: _Problems, name: str) -> dict[str, Segment]:
        segments = _parse_segments(records, problems, name)
        _check_segments(segments, problems, name)
        return segments

    return _read_one(path, "segments", parse, check_order)


def _read_one(path: str | os.PathLike, layout: str, parse, check_order: bool):
    """Read one standard table outside a data dir; raise the problem on the earliest line.

    Problems are collected first, so that a bad value on line 2 is reported before
    a duplicate key on line 5, as a reader going line by line would.
    """
    path = Path(path)
    problems = _Problems(strict=False, folder=path.parent)  # where(path.name) is path again
    problems.records[path.name] = _read_records(path, problems, _LAYOUTS[layout], check_order)
    out = parse(problems.records[path.name], problems, path.name)
    problems.raise_earliest()
    return out


def write_table(path: str | os.PathLike, table: Mapping[str, object]) -> None:
    """Write `key value` lines sorted in C order, atomically."""
    write_lines(path, (f"{k} {v}" if str(v) != "" else k for k, v in sorted(table.items())))


def _check_wav_scp(wav_scp: Mapping[str, str], problems: _Problems, name: str = "wav.scp") -> None:
    """Each wav.scp value is a path without whitespace or '~', or a command ending in '|' (a warning:
    commands run only with --allow-pipes)."""
    for rec, value in sorted(wav_scp.items()):
        if is_pipe(value):
            problems.at(name, rec, f"entry of {rec!r} is a shell command ({value.strip()}): features, extract and "
                        "utt2dur refuse it unless --allow-pipes, and validate-data does not run it", warn=True)
        if value.startswith("~"):  # fopen does no tilde expansion
            problems.at(name, rec, f"do not use ~ in wav.scp paths: {value}")
        elif not is_pipe(value) and WHITESPACE.search(value):
            problems.at(name, rec, f"{value!r} has several fields but does not end in '|' "
                        "(a path cannot hold whitespace; a command must end in '|')")  # fmt: skip


def _parse_segments(records: Mapping[str, _Record], problems: _Problems, name: str) -> dict[str, Segment]:
    """Segments from parsed `<utt> <recording> <start> <end>` lines; times must be finite numbers."""
    out: dict[str, Segment] = {}
    for utt, record in records.items():
        times = []
        for what, text in (("start", record.fields[2]), ("end", record.fields[3])):
            if _NUMBER.fullmatch(text) and math.isfinite(float(text)):
                times.append(float(text))
            else:
                problems.at(name, utt, f"{what} time of {utt!r} must be a number of seconds, found {text!r}")
        if len(times) == 2:
            out[utt] = Segment(record.fields[1], times[0], times[1])
    return out


def _check_segments(segments: Mapping[str, Segment], problems: _Problems, name: str = "segments") -> None:
    """0 <= start < end, or end -1 (None: to the end of the recording), as extract-segments accepts."""
    for utt, seg in sorted(segments.items()):
        if seg.start < 0:
            problems.at(name, utt, f"segment of {utt!r} starts at a negative time, {seg.start:g} s")
        elif seg.end is not None and seg.end < 0:
            problems.at(name, utt, f"segment of {utt!r} ends at {seg.end:g} s; the only negative end allowed "
                        "is -1 (to the end of the recording)")  # fmt: skip
        elif seg.end is not None and not seg.start < seg.end:
            problems.at(name, utt, f"segment of {utt!r} needs start < end, found {seg.start:g} {seg.end:g}")


def table_key_kind(name: str) -> str | None:
    """What a table's keys are: "utt", "spk", "reco", or None when unknown."""
    if name in ("text", "segments", "feats.scp", "vad.scp") or name.startswith("utt2"):
        return "utt"
    if name == "cmvn.scp" or name.startswith("spk2"):
        return "spk"
    if name == "wav.scp" or name.startswith("reco2"):
        return "reco"
    return None


def examples(keys: list[str]) -> str:
    """The first MAX_EXAMPLES keys, comma-separated, and how many more."""
    shown = ", ".join(keys[:MAX_EXAMPLES])
    return shown + (f", ... ({len(keys) - MAX_EXAMPLES} more)" if len(keys) > MAX_EXAMPLES else "")
