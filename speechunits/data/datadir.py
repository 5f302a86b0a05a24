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

Reading raises one DataFormatError naming the first problem (file and line) and listing the rest.
`validate_data_dir` instead collects every problem, split into errors and warnings.
Warnings are what Kaldi tolerates or what is harmless here: utterance ids not
prefixed by their speaker id, utt2spk not also sorted by speaker (Kaldi errors
unless --no-spk-sort), a single speaker, recordings that no segment uses.

The line parser of every table, `Segment`, `read_table`, `write_table`, and
`read_wav_scp` / `read_segments` (one of those two files on its own, for
speechunits.audio.AudioLoader, with the same parser and checks as `DataDir.read`)
live in speechunits/data/tables.py, which opens no audio, and are re-exported here;
the consistency rules (and the audio checks of `validate_data_dir`) are in
speechunits/data/validation.py. The audio checks and `compute_utt2dur` import
speechunits.audio (lazily: it pulls in torch).

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
from pathlib import Path
from typing import Iterable, Mapping

from speechunits.data.tables import (
    _EXTRA_LAYOUT,
    _LAYOUTS,
    _NUMBER,
    Segment,
    ValidationResult,
    _parse_segments,
    _Problems,
    _read_records,
    examples,
    format_seconds,
    read_segments,
    read_table,
    read_wav_scp,
    table_key_kind,
    write_table,
)
from speechunits.data.validation import check_audio_decodes, check_audio_files, check_spk2utt, check_tables
from speechunits.errors import AudioError, DataFormatError, SpeechUnitsError

__all__ = [  # with the table readers and writer of speechunits/data/tables.py, re-exported
    "DataDir",
    "Segment",
    "ValidationResult",
    "validate_data_dir",
    "compute_utt2dur",
    "utt2spk_to_spk2utt",
    "spk2utt_to_utt2spk",
    "format_seconds",
    "read_table",
    "read_wav_scp",
    "read_segments",
    "write_table",
    "table_key_kind",
]

log = logging.getLogger(__name__)

REQUIRED_FILES = ("wav.scp", "utt2spk")
STANDARD_FILES = ("wav.scp", "segments", "utt2spk", "spk2utt", "text", "spk2gender", "utt2dur")


_EXTRA_NAME = re.compile(r"(?:utt2|spk2|reco2)\w+|feats\.scp|cmvn\.scp|vad\.scp")


# ----------------------------------------------------------------------------- tables


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
        """Read a data dir; raise DataFormatError if anything is wrong, naming the first
        problem (its file and line) and listing the others after it.

        check=False skips sort order and cross-file consistency (to read a broken dir
        in order to repair it); malformed lines still raise.
        """
        problems = _Problems(strict=False, folder=Path(path))
        dd = _load(problems, full=check)
        if problems.exceptions:
            raise _all_problems(problems.exceptions)
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
        check_tables(self, problems)
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
            raise SpeechUnitsError(f"subset: {len(unknown)} utterances not in the data dir: {examples(unknown)}")
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
        check_tables(dd, problems)
        if "spk2utt" in records:
            check_spk2utt(dd, problems)
        if check_audio:
            check_audio_files(dd, problems, base_dir)
    return dd


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
        check_audio_decodes(dd, problems, base_dir, sample_rate, skip_missing=check_audio)
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


def _all_problems(errors: list[DataFormatError], shown: int = 10) -> DataFormatError:
    """One error for all of `errors`: the first (by file order of discovery) with its file
    and line, then the next `shown - 1`, then how many more."""
    first, rest = errors[0], errors[1:]
    if not rest:
        return first
    listed = "; ".join(str(e) for e in rest[: shown - 1])
    more = f"; and {len(rest) - (shown - 1)} more" if len(rest) > shown - 1 else ""
    return DataFormatError(f"{first.reason} (and {len(rest)} more problem(s): {listed}{more})", first.path, first.line)
