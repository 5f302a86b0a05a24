"""The consistency rules of a Kaldi data dir (utils/validate_data_dir.sh), as checks that
add each problem they find to a `_Problems` collector (speechunits/data/tables.py).

    check_tables(dd, problems)          values, ids and speaker order of the in-memory tables
    check_spk2utt(dd, problems)         spk2utt on disk is what utt2spk implies
    check_audio_files(dd, problems, base_dir)    every wav.scp file exists
    check_audio_decodes(dd, problems, base_dir, sample_rate, skip_missing)
                                        every utterance's audio opens as `features` would

speechunits/data/datadir.py runs them when it reads a data dir (`DataDir.read`,
`read_lenient`, `check`, `write`) and in `validate_data_dir`. Errors are what
Kaldi's script rejects; warnings (`warn=True`) what it tolerates or what is harmless
here. The audio checks import speechunits.audio lazily (it pulls in torch).
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from speechunits.data.pipes import is_pipe
from speechunits.data.tables import (
    _NUMBER,
    WHITESPACE,
    _check_segments,
    _check_wav_scp,
    _Problems,
    examples,
    table_key_kind,
)
from speechunits.errors import AudioError

if TYPE_CHECKING:
    from speechunits.data.datadir import DataDir

__all__ = ["check_tables", "check_spk2utt", "check_audio_files", "check_audio_decodes", "wav_scp_file"]

MAX_MISSING_AUDIO = 20  # listed one by one; the rest are counted
GENDERS = ("m", "f")
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


def check_tables(dd: "DataDir", problems: _Problems) -> None:
    """The rules of validate_data_dir.sh that hold for in-memory tables too."""
    check_values(dd, problems)
    check_ids(dd, problems)
    check_speaker_order(dd, problems)


def check_values(dd: "DataDir", problems: _Problems) -> None:
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


def check_ids(dd: "DataDir", problems: _Problems) -> None:
    """Every table covers exactly the utterances, speakers or recordings it is keyed by."""
    utts, speakers, recordings = set(dd.utt2spk), set(dd.utt2spk.values()), set(dd.wav_scp)

    def compare(name: str, keys: Iterable[str], expected: set[str], what: str, source: str) -> None:
        extra, missing = sorted(set(keys) - expected), sorted(expected - set(keys))
        if extra:
            problems.at(name, extra[0], f"{len(extra)} {what} not in {source}: {examples(extra)}")
        if missing:
            problems.at(name, None, f"no entry for {len(missing)} {what} of {source}: {examples(missing)}")

    if len(speakers) == 1:
        problems.at("utt2spk", None, "only one speaker; per-speaker steps and speaker probes see one class", warn=True)
    if dd.segments is not None:
        compare("segments", dd.segments, utts, "utterances", "utt2spk")
        for utt, seg in sorted(dd.segments.items()):
            if seg.recording not in recordings:
                problems.at("segments", utt, f"recording {seg.recording!r} of {utt!r} is not in wav.scp")
        unused = sorted(recordings - {s.recording for s in dd.segments.values()})
        if unused:  # validate_data_dir.sh errors; unused audio is harmless, so only warn
            message = f"{len(unused)} recordings have no segments: {examples(unused)}"
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


def check_speaker_order(dd: "DataDir", problems: _Problems) -> None:
    """Warn unless utterance ids start with their speaker id, and unless utt2spk sorted by
    utterance is also sorted by speaker (validate_data_dir.sh errors on the latter
    unless --no-spk-sort; speaker-prefixed ids guarantee it)."""
    unprefixed = sorted(u for u, s in dd.utt2spk.items() if not u.startswith(s))
    if unprefixed:
        message = f"{len(unprefixed)} utterance ids do not start with their speaker id: {examples(unprefixed)}"
        problems.at("utt2spk", unprefixed[0], message, warn=True)
    utts = sorted(dd.utt2spk)
    for prev, utt in zip(utts, utts[1:]):
        if dd.utt2spk[utt] < dd.utt2spk[prev]:
            message = (f"utt2spk is not sorted by speaker as well as by utterance (at {utt!r}); "
                       "Kaldi tools that read spk2utt in order may misbehave")  # fmt: skip
            problems.at("utt2spk", utt, message, warn=True)
            break


def check_spk2utt(dd: "DataDir", problems: _Problems) -> None:
    """spk2utt on disk must be exactly what utt2spk implies (utils/utt2spk_to_spk2utt.pl | cmp)."""
    derived = dd.spk2utt
    records = problems.records["spk2utt"]
    for spk, rec in records.items():
        listed = rec.fields[1:]
        if spk not in derived:
            problems.at("spk2utt", spk, f"speaker {spk!r} is not in utt2spk")
        elif listed != derived[spk]:
            wrong = sorted(set(listed) ^ set(derived[spk]))
            detail = f"differs in {examples(wrong)}" if wrong else "lists them in a different order"
            problems.at("spk2utt", spk, f"utterances of {spk!r} disagree with utt2spk: {detail}")
    missing = sorted(derived.keys() - records.keys())
    if missing:
        problems.at("spk2utt", None, f"no entry for {len(missing)} speakers of utt2spk: {examples(missing)}")


def wav_scp_file(value: str) -> str | None:
    """The file a wav.scp value reads, or None for a piped command ("... |")."""
    return None if is_pipe(value) else value.strip()


def check_audio_files(dd: "DataDir", problems: _Problems, base_dir) -> None:
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


def check_audio_decodes(dd: "DataDir", problems: _Problems, base_dir, sample_rate: int, skip_missing: bool) -> None:
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
