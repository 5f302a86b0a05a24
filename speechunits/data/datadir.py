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
the audio checks of `validate_data_dir` and `compute_utt2dur` import
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
import unicodedata
from pathlib import Path
from typing import Callable, Iterable, Mapping

from speechunits.data.pipes import is_pipe
from speechunits.data.tables import (  # noqa: F401 (Segment, ValidationResult, read_*, write_table: re-exported)
    _EXTRA_LAYOUT,
    _LAYOUTS,
    _NUMBER,
    WHITESPACE,
    Segment,
    ValidationResult,
    _check_segments,
    _check_wav_scp,
    _parse_segments,
    _Problems,
    _read_records,
    format_seconds,
    read_segments,
    read_table,
    read_wav_scp,
    write_table,
)
from speechunits.errors import AudioError, DataFormatError, SpeechUnitsError

log = logging.getLogger(__name__)

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


def table_key_kind(name: str) -> str | None:
    """What a table's keys are: "utt", "spk", "reco", or None when unknown."""
    if name in ("text", "segments", "feats.scp", "vad.scp") or name.startswith("utt2"):
        return "utt"
    if name == "cmvn.scp" or name.startswith("spk2"):
        return "spk"
    if name == "wav.scp" or name.startswith("reco2"):
        return "reco"
    return None


def _examples(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_EXAMPLES])
    return shown + (f", ... ({len(keys) - MAX_EXAMPLES} more)" if len(keys) > MAX_EXAMPLES else "")


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


def _all_problems(errors: list[DataFormatError], shown: int = 10) -> DataFormatError:
    """One error for all of `errors`: the first (by file order of discovery) with its file
    and line, then the next `shown - 1`, then how many more."""
    first, rest = errors[0], errors[1:]
    if not rest:
        return first
    listed = "; ".join(str(e) for e in rest[: shown - 1])
    more = f"; and {len(rest) - (shown - 1)} more" if len(rest) > shown - 1 else ""
    return DataFormatError(f"{first.reason} (and {len(rest)} more problem(s): {listed}{more})", first.path, first.line)
