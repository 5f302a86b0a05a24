"""Kaldi data directories: read, write and validate them as utils/validate_data_dir.sh does.

A data dir is a folder of small text tables, each line keyed by its first field:

    wav.scp     <recording> <path, or a command ending in |>    required
    segments    <utt> <recording> <start> <end>                 optional; without it, recording = utterance;
                                                                end -1 = to the end of the recording
    utt2spk     <utt> <speaker>                                 required
    spk2utt     <speaker> <utt> <utt> ...                       derived from utt2spk; checked when present
    text        <utt> <words ...>                               optional
    spk2gender  <speaker> m|f                                   optional
    utt2dur     <utt> <seconds>                                 optional
    utt2*, spk2*, reco2*, feats.scp, cmvn.scp, vad.scp          other tables, kept as strings in `extra`

Every table is sorted in C (byte) order with unique keys. Python orders str by code
point, and UTF-8 preserves code-point order, so `sorted(keys)` is `LC_ALL=C sort`;
and because keys hold no whitespace (which sorts below every printable byte),
sorting lines and sorting keys agree.

Reading raises a DataFormatError on the first problem, naming the file and line.
`validate_data_dir` instead collects every problem, split into errors and warnings.
Warnings are what Kaldi tolerates or what is harmless here: utterance ids not
prefixed by their speaker id, utt2spk not also sorted by speaker (Kaldi errors
unless --no-spk-sort), a single speaker, recordings that no segment uses.

`read_wav_scp` and `read_segments` read one of those two files on its own (for
speechunits.audio.AudioLoader), with the same parser and checks as `DataDir.read`.

Kaldi resolves relative wav.scp paths against the directory a recipe runs in, not
against the data dir, so functions that open audio take a `base_dir` (default: the
current directory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import unicodedata
from pathlib import Path
from typing import Callable, Iterable, Mapping

from speechunits.data.pipes import is_pipe
from speechunits.errors import AudioError, DataFormatError, SpeechUnitsError
from speechunits.fileio import write_lines

log = logging.getLogger(__name__)

WHITESPACE = re.compile(r"[ \t]+")  # Kaldi splits fields on spaces and tabs only
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
MAX_EXAMPLES = 5
MAX_MISSING_AUDIO = 20  # listed one by one; the rest are counted
GENDERS = ("m", "f")
REQUIRED_FILES = ("wav.scp", "utt2spk")
STANDARD_FILES = ("wav.scp", "segments", "utt2spk", "spk2utt", "text", "spk2gender", "utt2dur")
RESERVED_WORDS = frozenset({"<s>", "</s>", "#0"})  # symbols the Kaldi language model tools own


def _positive_number(text: str) -> bool:
    return bool(_NUMBER.fullmatch(text)) and math.isfinite(float(text)) and float(text) > 0


def _warp_factor(text: str) -> bool:
    return bool(_NUMBER.fullmatch(text)) and 0.5 < float(text) < 1.5


# value checks of other known tables: (rule, what it must be)
_VALUE_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "utt2num_frames": (lambda t: t.isdigit() and int(t) > 0, "a positive integer"),
    "reco2dur": (_positive_number, "a positive number of seconds"),
    "utt2warp": (_warp_factor, "a warp factor between 0.5 and 1.5"),
    "spk2warp": (_warp_factor, "a warp factor between 0.5 and 1.5"),
}
_EXTRA_NAME = re.compile(r"(?:utt2|spk2|reco2)\w+|feats\.scp|cmvn\.scp|vad\.scp")


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


def table_key_kind(name: str) -> str | None:
    """What a table's keys are: "utt", "spk", "reco", or None when unknown."""
    if name in ("text", "segments", "feats.scp", "vad.scp") or name.startswith("utt2"):
        return "utt"
    if name == "cmvn.scp" or name.startswith("spk2"):
        return "spk"
    if name == "wav.scp" or name.startswith("reco2"):
        return "reco"
    return None


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


def _examples(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_EXAMPLES])
    return shown + (f", ... ({len(keys) - MAX_EXAMPLES} more)" if len(keys) > MAX_EXAMPLES else "")


# ----------------------------------------------------------------------------- tables


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


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Speakers (sorted) -> their utterances (sorted), as utils/utt2spk_to_spk2utt.pl."""
    out: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        out.setdefault(utt2spk[utt], []).append(utt)
    return dict(sorted(out.items()))


def spk2utt_to_utt2spk(spk2utt: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """The inverse; an utterance listed under two speakers is an error."""
    out: dict[str, str] = {}
    for spk, utts in spk2utt.items():
        for utt in utts:
            if utt in out:
                raise DataFormatError(f"utterance {utt!r} listed under speakers {out[utt]!r} and {spk!r}")
            out[utt] = spk
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------- the data dir


@dataclasses.dataclass
class DataDir:
    """The tables of a Kaldi data dir, in memory. spk2utt is always derived from utt2spk."""

    wav_scp: dict[str, str]
    utt2spk: dict[str, str]
    segments: dict[str, Segment] | None = None
    text: dict[str, str] | None = None
    spk2gender: dict[str, str] | None = None
    utt2dur: dict[str, float] | None = None
    extra: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    path: Path | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def read(cls, path: str | os.PathLike, check: bool = True) -> "DataDir":
        """Read a data dir; raise DataFormatError on the first problem.

        check=False skips sort order and cross-file consistency (to read a broken dir
        in order to repair it); malformed lines still raise.
        """
        problems = _Problems(strict=True, folder=Path(path))
        dd = _load(problems, full=check)
        for w in problems.result.warnings:
            log.warning("%s", w)
        return dd

    @classmethod
    def read_lenient(cls, path: str | os.PathLike) -> tuple["DataDir", ValidationResult]:
        """Read what can be read and return every problem instead of raising.

        Malformed, duplicate or unreadable lines are left out of the tables (each one
        is named in the result), so a batch job can process the good utterances and
        report the rest; a missing data dir or required file gives empty tables.
        """
        problems = _Problems(strict=False, folder=Path(path))
        dd = _load(problems, full=True)
        return dd, problems.result

    def check(self) -> ValidationResult:
        """Consistency of the in-memory tables (what `write` insists on)."""
        problems = _Problems(strict=False)
        _check(self, problems)
        return problems.result

    def write(self, path: str | os.PathLike) -> None:
        """Write every table sorted, each atomically; refuse an inconsistent dir.

        Tables that `read` would load but this dir lacks are removed from `path`, so
        a stale `text` or `utt2num_frames` cannot survive beside the new tables and
        `DataDir.read(path) == self` afterwards. Other files are left alone.
        """
        result = self.check()
        if not result.ok:
            problems = "\n  ".join(result.errors)
            raise DataFormatError(f"refusing to write an inconsistent data dir:\n  {problems}", str(path))
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        write_table(folder / "wav.scp", self.wav_scp)
        write_table(folder / "utt2spk", self.utt2spk)
        write_table(folder / "spk2utt", {s: " ".join(u) for s, u in self.spk2utt.items()})
        segments = None
        if self.segments is not None:
            segments = {u: f"{s.recording} {format_seconds(s.start)} {s.end_text}" for u, s in self.segments.items()}
        optional = {
            "segments": segments,
            "text": self.text,
            "spk2gender": self.spk2gender,
            "utt2dur": None if self.utt2dur is None else {u: format_seconds(d) for u, d in self.utt2dur.items()},
        }
        for name, table in optional.items():
            if table is not None:
                write_table(folder / name, table)
        for name, table in self.extra.items():
            write_table(folder / name, table)
        for name in _table_names(folder):
            if name not in _WRITTEN_ALWAYS and optional.get(name) is None and name not in self.extra:
                log.info("removing stale %s", folder / name)
                (folder / name).unlink()

    @property
    def utts(self) -> list[str]:
        return sorted(self.utt2spk)

    @property
    def speakers(self) -> list[str]:
        return sorted(set(self.utt2spk.values()))

    @property
    def recordings(self) -> list[str]:
        return sorted(self.wav_scp)

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        return utt2spk_to_spk2utt(self.utt2spk)

    def recording(self, utt: str) -> str:
        """The wav.scp key holding `utt`'s audio."""
        return self.segments[utt].recording if self.segments is not None else utt

    def subset(self, utts: Iterable[str]) -> "DataDir":
        """The data dir restricted to `utts`, with speaker and recording tables filtered to match."""
        keep = set(utts)
        unknown = sorted(keep - self.utt2spk.keys())
        if unknown:
            raise SpeechUnitsError(f"subset: {len(unknown)} utterances not in the data dir: {_examples(unknown)}")
        speakers = {self.utt2spk[u] for u in keep}
        recordings = {self.recording(u) for u in keep}
        keys = {"utt": keep, "spk": speakers, "reco": recordings}

        def only(table, kind):
            if table is None or kind is None:  # keys of unknown meaning: keep the table whole
                return None if table is None else dict(table)
            return {k: v for k, v in table.items() if k in keys[kind]}

        return DataDir(
            wav_scp=only(self.wav_scp, "reco"),
            utt2spk=only(self.utt2spk, "utt"),
            segments=only(self.segments, "utt"),
            text=only(self.text, "utt"),
            spk2gender=only(self.spk2gender, "spk"),
            utt2dur=only(self.utt2dur, "utt"),
            extra={name: only(t, table_key_kind(name)) for name, t in self.extra.items()},
        )


# ----------------------------------------------------------------------------- loading and checks


_WRITTEN_ALWAYS = ("wav.scp", "utt2spk", "spk2utt")


def _table_names(folder: Path) -> list[str]:
    """The tables of `folder` that DataDir.read loads, sorted."""
    return sorted(
        p.name for p in folder.iterdir() if p.is_file() and (p.name in STANDARD_FILES or _EXTRA_NAME.fullmatch(p.name))
    )


def _load(problems: _Problems, full: bool, check_audio: bool = False, base_dir=None) -> DataDir:
    """Parse the tables of problems.folder; with `full`, also check order and consistency."""
    folder = problems.folder
    if not folder.is_dir():
        problems.error("no such data directory", str(folder))
        return DataDir({}, {}, path=folder)
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            problems.error(f"missing required file {name}", str(folder / name))
        elif (folder / name).stat().st_size == 0:
            problems.error("empty file", str(folder / name))
    records = problems.records
    for name in _table_names(folder):
        records[name] = _read_records(folder / name, problems, _LAYOUTS.get(name, _EXTRA_LAYOUT), check_order=full)

    def column(name: str, index: int | None) -> dict[str, str] | None:
        """Field `index` of each line (None: the rest of the line), or None without the table."""
        if name not in records:
            return None
        return {k: r.rest if index is None else r.fields[index] for k, r in records[name].items()}

    def seconds(name: str, index: int) -> dict[str, float]:
        out = {}
        for key, text in column(name, index).items():
            if _NUMBER.fullmatch(text) and math.isfinite(float(text)):
                out[key] = float(text)
            else:
                problems.at(name, key, f"expected a number of seconds, found {text!r}")
        return out

    dd = DataDir(
        wav_scp=column("wav.scp", None) or {},
        utt2spk=column("utt2spk", 1) or {},
        text=column("text", None),
        spk2gender=column("spk2gender", 1),
        utt2dur=seconds("utt2dur", 1) if "utt2dur" in records else None,
        extra={name: column(name, None) for name in records if name not in STANDARD_FILES},
        path=folder,
    )
    if "segments" in records:
        dd.segments = _parse_segments(records["segments"], problems, "segments")
    if full and all(name in records for name in REQUIRED_FILES):
        _check(dd, problems)
        if "spk2utt" in records:
            _check_spk2utt(dd, problems)
        if check_audio:
            _check_audio(dd, problems, base_dir)
    return dd


def _check(dd: DataDir, problems: _Problems) -> None:
    """The rules of validate_data_dir.sh that hold for in-memory tables too."""
    _check_values(dd, problems)
    _check_ids(dd, problems)
    _check_speaker_order(dd, problems)


def _check_values(dd: DataDir, problems: _Problems) -> None:
    """Each entry on its own: writable as text, and a valid value for its table."""
    tables = {"wav.scp": dd.wav_scp, "utt2spk": dd.utt2spk, "segments": dd.segments, "text": dd.text,
              "spk2gender": dd.spk2gender, "utt2dur": dd.utt2dur, **dd.extra}  # fmt: skip
    for name, table in tables.items():
        for key, value in (table or {}).items():
            if not key or WHITESPACE.search(key) or "\n" in key or "\r" in key:
                problems.at(name, None, f"key {key!r} is empty or contains whitespace")
            if isinstance(value, str) and ("\n" in value or "\r" in value):
                problems.at(name, key, f"value of {key!r} contains a line break")
    for utt, spk in dd.utt2spk.items():
        if not spk or WHITESPACE.search(spk):
            problems.at("utt2spk", utt, f"speaker id {spk!r} of {utt!r} is empty or contains whitespace")
    _check_wav_scp(dd.wav_scp, problems)
    _check_segments(dd.segments or {}, problems)
    for utt, words in sorted((dd.text or {}).items()):
        control = sorted({ch for ch in words if ch != "\t" and unicodedata.category(ch) == "Cc"})
        if control:
            problems.at("text", utt, f"transcript of {utt!r} has control characters {control}")
        reserved = sorted(set(WHITESPACE.split(words)) & RESERVED_WORDS)
        if reserved:
            problems.at("text", utt, f"transcript of {utt!r} uses reserved symbols {reserved}")
    for utt, dur in sorted((dd.utt2dur or {}).items()):
        if not dur > 0:
            problems.at("utt2dur", utt, f"duration of {utt!r} must be positive, found {dur}")
    for spk, gender in sorted((dd.spk2gender or {}).items()):
        if gender not in GENDERS:
            problems.at("spk2gender", spk, f"gender of {spk!r} must be m or f, found {gender!r}")
    for name, table in sorted(dd.extra.items()):
        rule, what = _VALUE_RULES.get(name, (None, ""))
        for key, value in sorted(table.items()) if rule else ():
            if not rule(value):
                problems.at(name, key, f"value of {key!r} must be {what}, found {value!r}")


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


def _check_ids(dd: DataDir, problems: _Problems) -> None:
    """Every table covers exactly the utterances, speakers or recordings it is keyed by."""
    utts, speakers, recordings = set(dd.utt2spk), set(dd.utt2spk.values()), set(dd.wav_scp)

    def compare(name: str, keys: Iterable[str], expected: set[str], what: str, source: str) -> None:
        extra, missing = sorted(set(keys) - expected), sorted(expected - set(keys))
        if extra:
            problems.at(name, extra[0], f"{len(extra)} {what} not in {source}: {_examples(extra)}")
        if missing:
            problems.at(name, None, f"no entry for {len(missing)} {what} of {source}: {_examples(missing)}")

    if len(speakers) == 1:
        problems.at("utt2spk", None, "only one speaker; per-speaker steps and speaker probes see one class", warn=True)
    if dd.segments is not None:
        compare("segments", dd.segments, utts, "utterances", "utt2spk")
        for utt, seg in sorted(dd.segments.items()):
            if seg.recording not in recordings:
                problems.at("segments", utt, f"recording {seg.recording!r} of {utt!r} is not in wav.scp")
        unused = sorted(recordings - {s.recording for s in dd.segments.values()})
        if unused:  # validate_data_dir.sh errors; unused audio is harmless, so only warn
            message = f"{len(unused)} recordings have no segments: {_examples(unused)}"
            problems.at("wav.scp", unused[0], message, warn=True)
    else:
        compare("wav.scp", dd.wav_scp, utts, "utterances", "utt2spk")
    for name, table in (("text", dd.text), ("utt2dur", dd.utt2dur)):
        if table is not None:
            compare(name, table, utts, "utterances", "utt2spk")
    if dd.spk2gender is not None:
        compare("spk2gender", dd.spk2gender, speakers, "speakers", "utt2spk")
    expected = {"utt": (utts, "utterances", "utt2spk"), "spk": (speakers, "speakers", "utt2spk"),
                "reco": (recordings, "recordings", "wav.scp")}  # fmt: skip
    for name, table in sorted(dd.extra.items()):
        if table_key_kind(name) is not None:
            compare(name, table, *expected[table_key_kind(name)])


def _check_speaker_order(dd: DataDir, problems: _Problems) -> None:
    """Warn unless utterance ids start with their speaker id, and unless utt2spk sorted by
    utterance is also sorted by speaker (validate_data_dir.sh errors on the latter
    unless --no-spk-sort; speaker-prefixed ids guarantee it)."""
    unprefixed = sorted(u for u, s in dd.utt2spk.items() if not u.startswith(s))
    if unprefixed:
        message = f"{len(unprefixed)} utterance ids do not start with their speaker id: {_examples(unprefixed)}"
        problems.at("utt2spk", unprefixed[0], message, warn=True)
    utts = sorted(dd.utt2spk)
    for prev, utt in zip(utts, utts[1:]):
        if dd.utt2spk[utt] < dd.utt2spk[prev]:
            message = (f"utt2spk is not sorted by speaker as well as by utterance (at {utt!r}); "
                       "Kaldi tools that read spk2utt in order may misbehave")  # fmt: skip
            problems.at("utt2spk", utt, message, warn=True)
            break


def _check_spk2utt(dd: DataDir, problems: _Problems) -> None:
    """spk2utt on disk must be exactly what utt2spk implies (utils/utt2spk_to_spk2utt.pl | cmp)."""
    derived = dd.spk2utt
    records = problems.records["spk2utt"]
    for spk, rec in records.items():
        listed = rec.fields[1:]
        if spk not in derived:
            problems.at("spk2utt", spk, f"speaker {spk!r} is not in utt2spk")
        elif listed != derived[spk]:
            wrong = sorted(set(listed) ^ set(derived[spk]))
            detail = f"differs in {_examples(wrong)}" if wrong else "lists them in a different order"
            problems.at("spk2utt", spk, f"utterances of {spk!r} disagree with utt2spk: {detail}")
    missing = sorted(derived.keys() - records.keys())
    if missing:
        problems.at("spk2utt", None, f"no entry for {len(missing)} speakers of utt2spk: {_examples(missing)}")




def wav_scp_file(value: str) -> str | None:
    """The file a wav.scp value reads, or None for a piped command ("... |")."""
    return None if is_pipe(value) else value.strip()


def _check_audio(dd: DataDir, problems: _Problems, base_dir) -> None:
    """Every wav.scp file exists (relative to base_dir, default the current directory); pipes are not run."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    files = {r: wav_scp_file(v) for r, v in dd.wav_scp.items()}
    missing = sorted(r for r, f in files.items() if f is not None and not (base / f).is_file())
    for rec in missing[:MAX_MISSING_AUDIO]:
        problems.at("wav.scp", rec, f"audio of {rec!r} not found: {files[rec]} (relative to {base})")
    if len(missing) > MAX_MISSING_AUDIO:
        more = len(missing) - MAX_MISSING_AUDIO
        problems.at("wav.scp", None, f"... audio of {more} more recordings not found ({len(missing)} in all)")
    if missing and all((problems.folder / files[r]).is_file() for r in missing):
        hint = f"the missing audio paths exist relative to the data dir: use base_dir (--base-dir) {problems.folder}"
        problems.at("wav.scp", None, hint, warn=True)


def _decode_audio(dd: DataDir, problems: _Problems, base_dir, sample_rate: int, skip_missing: bool) -> None:
    """Open every utterance's audio as `features` would: an error for what it rejects (missing,
    empty, truncated or corrupt file, NaN/Inf samples, shorter than a window, a segment past the end,
    another sample rate), a warning for what it handles (several channels, mixed down). Pipes are
    not run (they are warned about already)."""
    from speechunits.audio import AudioConfig, AudioLoader

    config = AudioConfig(target_sr=sample_rate, resample=False, allow_pipes=False)
    loader = AudioLoader(dd.wav_scp, dd.segments, base_dir=base_dir, config=config)
    table = "segments" if dd.segments is not None else "wav.scp"
    for utt in loader.utts():
        entry = dd.wav_scp.get(dd.segments[utt].recording if dd.segments is not None else utt, "")
        if is_pipe(entry):
            continue
        try:
            audio = loader.load(utt)
        except AudioError as e:
            if not (skip_missing and e.reason.startswith("file not found")):  # reported by the existence check
                problems.at(table, utt, f"audio of {utt!r}: {e.reason} ({e.path})")
            continue
        if audio.num_channels > 1:
            problems.at(table, utt, f"audio of {utt!r} has {audio.num_channels} channels "
                        "(features mixes them down to mono, with a NOTE)", warn=True)


def validate_data_dir(
    path: str | os.PathLike,
    check_audio: bool = False,
    base_dir: str | os.PathLike | None = None,
    decode_audio: bool = False,
    sample_rate: int = 16000,
) -> ValidationResult:
    """Every problem of a data dir (utils/validate_data_dir.sh), without raising.

    check_audio: also check that every wav.scp file exists (relative paths against
    `base_dir`, default the current directory); piped commands are not run.
    decode_audio: also open every utterance's audio and report what `features` would
    reject (empty, truncated, corrupt, NaN, too short, a rate other than
    `sample_rate`) as errors and multi-channel audio as warnings (CLI: --audio).
    """
    problems = _Problems(strict=False, folder=Path(path))
    dd = _load(problems, full=True, check_audio=check_audio, base_dir=base_dir)
    if decode_audio and dd.wav_scp:
        _decode_audio(dd, problems, base_dir, sample_rate, skip_missing=check_audio)
    return problems.result


# ----------------------------------------------------------------------------- durations


def compute_utt2dur(
    datadir: DataDir, base_dir: str | os.PathLike | None = None, report=None, allow_pipes: bool = False
) -> dict[str, float]:
    """Duration of every utterance in seconds: from segments, else from each audio header.

    A segment that runs to the end of its recording (end -1) takes the
    recording's length from the header. Files are not decoded
    (speechunits.audio.audio_duration reads the header); a piped wav.scp command
    is run only with allow_pipes. With a BatchReport, failures are recorded
    against their utterance (and left out); without one, the first failure
    raises AudioError.
    """
    from speechunits.audio import audio_duration

    out: dict[str, float] = {}
    for utt in datadir.utts:
        with report.attempt(utt) if report is not None else contextlib.nullcontext():
            seg = datadir.segments.get(utt) if datadir.segments is not None else None
            if datadir.segments is not None and seg is None:
                raise AudioError("no segments entry", utt=utt)
            if seg is not None and not seg.open_end:
                out[utt] = seg.duration
                continue
            rec = seg.recording if seg is not None else utt
            if rec not in datadir.wav_scp:
                raise AudioError(f"no wav.scp entry for recording {rec!r}", utt=utt)
            entry = datadir.wav_scp[rec]
            total = audio_duration(entry, utt=utt, base_dir=base_dir, allow_pipes=allow_pipes)
            start = seg.start if seg is not None else 0.0
            if total <= start:
                raise AudioError(
                    f"segment starts at {start:.3f} s, at or after the end of the recording ({total:.3f} s)",
                    utt=utt,
                    path=entry,
                )
            out[utt] = total - start
    return out
