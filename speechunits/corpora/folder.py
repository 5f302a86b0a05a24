"""Import a folder of audio files as a Kaldi data dir, with optional transcripts and alignments.

Why: most audio a user has is a folder tree, not a corpus with a recipe. This
turns it into the data dir every other stage reads, keeping the checks of a
corpus preparation: each bad file is reported by name, never skipped silently.

Audio: files under AUDIO_DIR (any depth) whose extension is one of
``extensions`` (wav, flac, ogg, mp3 by default; whatever libsndfile reads),
sorted. Each file's header is read (duration, and that it is audio at all).

Speakers (``speaker_from``):
    "dir"      the first folder level under AUDIO_DIR (``AUDIO_DIR/<spk>/.../x.wav``);
               files directly in AUDIO_DIR have no speaker and fail;
    "pattern"  a regular expression with a named group ``(?P<spk>...)``, searched
               in the file name (e.g. ``^(?P<spk>[a-z]+\\d+)_``); no match fails;
    "file"     every file its own speaker (when speakers are unknown).

Utterance ids: ``<spk>-<stem>``, or the stem alone when it already starts with
``<spk>-`` (LibriSpeech's 19-198-0001 stays so); characters other than letters,
digits, ``.``, ``_`` and ``-`` become ``_`` in ids and speakers. Two files with the
same id both fail (rename one).

Transcripts (optional): a Kaldi-style ``text`` file whose keys are utterance ids,
paths relative to AUDIO_DIR without the extension, or unique stems; or
"sidecar": a ``<stem>.txt`` or ``<stem>.lab`` beside each audio file.

Alignments (optional): a folder of Praat TextGrids (one per audio file, matched by
relative path or unique stem; the interval tier ``tier``, "phones" by default;
empty intervals are silence, ``sil``), or a CTM file keyed like the transcripts.
Times are seconds from the start of the file; an alignment may overrun the audio
by ``max_overshoot`` (clipped), not more. With alignments, ABX item files are made.

Output (OUT is the data dir; tables, CTM and items through :mod:`speechunits.corpora.writer`)::

    OUT/wav.scp utt2spk spk2utt utt2dur [text] [spk2gender]
    OUT/alignments.ctm OUT/phone.item OUT/triphone.item      (with alignments)
    OUT/failed.txt    `<file relative to AUDIO_DIR>: <reason>`, one line per bad file (empty if none)
    OUT/links/        symbolic links to files whose path holds whitespace (wav.scp cannot)

A file that fails any step (unreadable audio, no speaker, duplicate id, missing
transcript or alignment, a TextGrid without the tier, times past the audio) is
left out of the data dir and listed in failed.txt. The data dir is validated
after it is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

from speechunits.batch import BatchReport
from speechunits.data.ctm import LabelledSegment
from speechunits.errors import AudioError, DataFormatError, SpeechUnitsError

log = logging.getLogger(__name__)

SPEAKER_FROM = ("dir", "pattern", "file")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclasses.dataclass
class FolderConfig:
    """How to read the folder (see the module doc).

    transcripts: path of a ``text`` file, "sidecar", or None.
    alignments: a folder of TextGrids, a CTM file, or None.
    tier: the TextGrid tier holding phones. strip_stress: drop a trailing stress
        digit from phone labels (MFA's AH0 -> AH).
    spk2gender: a ``<speaker> m|f`` file (speaker ids as written in OUT) or None.
    """

    speaker_from: str = "dir"
    pattern: str | None = None
    transcripts: str | None = None
    alignments: str | None = None
    tier: str = "phones"
    strip_stress: bool = False
    spk2gender: str | None = None
    extensions: tuple[str, ...] = ("wav", "flac", "ogg", "mp3")
    max_overshoot: float = 0.01

    def check(self) -> None:
        if self.speaker_from not in SPEAKER_FROM:
            raise SpeechUnitsError(f"speaker_from must be one of {', '.join(SPEAKER_FROM)}, got {self.speaker_from!r}")
        if self.speaker_from == "pattern":
            if not self.pattern:
                raise SpeechUnitsError("speaker_from='pattern' needs a pattern with a group (?P<spk>...)")
            try:
                compiled = re.compile(self.pattern)
            except re.error as e:
                raise SpeechUnitsError(f"bad speaker pattern {self.pattern!r}: {e}") from None
            if "spk" not in compiled.groupindex:
                raise SpeechUnitsError(f"speaker pattern {self.pattern!r} has no named group (?P<spk>...)")


@dataclasses.dataclass(frozen=True)
class AudioFile:
    """One audio file: its path, its path relative to AUDIO_DIR, and the ids it gets."""

    path: Path
    rel: str  # relative to AUDIO_DIR, "/"-separated
    speaker: str
    utt: str

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def rel_stem(self) -> str:
        return self.rel.rsplit(".", 1)[0]


@dataclasses.dataclass
class ImportedFolder:
    """What :func:`import_folder` made; failures are keyed by file path relative to AUDIO_DIR."""

    datadir: object  # speechunits.data.datadir.DataDir
    alignments: dict[str, list[LabelledSegment]] | None
    report: BatchReport
    num_files: int


def sanitise(name: str) -> str:
    """An id made of letters, digits, ``.``, ``_`` and ``-`` only."""
    return _UNSAFE.sub("_", name)


def find_audio(audio_dir: Path, extensions: tuple[str, ...]) -> list[Path]:
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    return sorted(p for p in audio_dir.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def assign_ids(audio_dir: Path, paths: list[Path], cfg: FolderConfig, report: BatchReport) -> list[AudioFile]:
    """Speaker and utterance id of each file; files without one, or sharing one, fail."""
    pattern = re.compile(cfg.pattern) if cfg.speaker_from == "pattern" else None
    files: list[AudioFile] = []
    for path in paths:
        rel = path.relative_to(audio_dir).as_posix()
        stem = sanitise(path.stem)
        if cfg.speaker_from == "dir":
            parts = rel.split("/")
            if len(parts) < 2:
                report.failures[rel] = f"{rel}: not inside a speaker folder (speaker from dir)"
                continue
            spk = sanitise(parts[0])
        elif cfg.speaker_from == "pattern":
            m = pattern.search(path.name)
            if not m or not m.group("spk"):
                report.failures[rel] = f"{rel}: file name does not match the speaker pattern {cfg.pattern!r}"
                continue
            spk = sanitise(m.group("spk"))
        else:
            spk = stem
        utt = stem if stem == spk or stem.startswith(spk + "-") else f"{spk}-{stem}"
        files.append(AudioFile(path, rel, spk, utt))
    by_utt: dict[str, list[AudioFile]] = {}
    for f in files:
        by_utt.setdefault(f.utt, []).append(f)
    keep = []
    for utt, group in sorted(by_utt.items()):
        if len(group) > 1:
            names = ", ".join(g.rel for g in group)
            for g in group:
                report.failures[g.rel] = f"{g.rel}: utterance id {utt} is shared by {names}"
        else:
            keep.append(group[0])
    return keep


def _keyed(
    table: dict, files: list[AudioFile], what: str, report: BatchReport, aliases: dict[str, str] | None = None
) -> dict[str, object]:
    """Match table keys (utterance id, relative path without extension, or unique stem) to files.

    aliases: other names of table keys (a TextGrid's stem for its relative path), tried after the keys.
    """
    stems: dict[str, int] = {}
    for f in files:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    aliases = aliases or {}
    out: dict[str, object] = {}
    used: set[str] = set()
    for f in files:
        keys = [k for k in (f.utt, f.rel_stem, f.stem if stems[f.stem] == 1 else None) if k is not None]
        key = next((k for k in keys if k in table), None)
        if key is None:
            key = next((aliases[k] for k in keys if k in aliases), None)
        if key is None:
            report.failures[f.rel] = f"{f.rel}: no {what} (looked for keys {', '.join(keys)}" + (
                ")" if stems[f.stem] == 1 else f"; stem {f.stem} is not unique)"
            )
            continue
        out[f.utt] = table[key]
        used.add(key)
    unused = sorted(set(table) - used)
    if unused:
        log.warning("%d %s entries match no audio file, e.g. %s", len(unused), what, ", ".join(unused[:5]))
    return out


def read_transcripts(source: str, files: list[AudioFile], report: BatchReport) -> dict[str, str]:
    """utt -> transcript from a text file or sidecar .txt/.lab files."""
    if source == "sidecar":
        out = {}
        for f in files:
            side = next((f.path.with_suffix(s) for s in (".txt", ".lab") if f.path.with_suffix(s).is_file()), None)
            if side is None:
                report.failures[f.rel] = f"{f.rel}: no transcript {f.path.with_suffix('.txt').name} or .lab beside it"
                continue
            try:
                out[f.utt] = " ".join(side.read_text(encoding="utf-8").split())
            except (OSError, UnicodeDecodeError) as e:
                report.failures[f.rel] = f"{f.rel}: cannot read transcript {side}: {e}"
        return out
    from speechunits.data.datadir import read_table

    path = Path(source)
    if not path.is_file():
        raise SpeechUnitsError(f"transcripts: no such file {path} (give a text file or 'sidecar')")
    table = read_table(path, check_order=False)
    return {u: " ".join(str(t).split()) for u, t in _keyed(table, files, "transcript", report).items()}


def read_alignments(source: str, files: list[AudioFile], cfg: FolderConfig, report: BatchReport) -> dict[str, list]:
    """utt -> (start, end, phone) segments from a TextGrid folder or a CTM file."""
    from speechunits.data import textgrid
    from speechunits.data.ctm import read_ctm

    path = Path(source)
    if path.is_file():
        return _keyed(read_ctm(path), files, "alignment in the CTM", report)
    if not path.is_dir():
        raise SpeechUnitsError(f"alignments: no such TextGrid folder or CTM file {path}")
    grids: dict[str, Path] = {}
    stems: dict[str, list[str]] = {}
    for p in textgrid.iter_textgrids(path):
        key = p.relative_to(path).as_posix().rsplit(".", 1)[0]
        grids[key] = p
        stems.setdefault(p.stem, []).append(key)
    aliases = {stem: keys[0] for stem, keys in stems.items() if len(keys) == 1}  # unique TextGrid stems
    found = _keyed(grids, files, "TextGrid", report, aliases)
    out = {}
    for f in files:
        if f.utt not in found:
            continue
        grid_path = found[f.utt]
        try:
            tier = textgrid.read_textgrid(grid_path).tier(cfg.tier)
            out[f.utt] = textgrid.tier_alignment(tier, strip_stress=cfg.strip_stress)
        except DataFormatError as e:
            report.failures[f.rel] = f"{f.rel}: TextGrid {grid_path}: {e.reason}"
    return out


def fit_alignment(segments: list, duration: float, max_overshoot: float) -> list:
    """Check an alignment against its audio: clip an overrun of at most max_overshoot, else raise."""
    from speechunits.data.ctm import check_alignment

    if not segments:
        raise DataFormatError("empty alignment")
    end = max(e for _, e, _ in segments)
    if end > duration + max_overshoot:
        raise DataFormatError(f"alignment ends at {end:.4f} s, past the end of the audio ({duration:.4f} s)")
    clipped = [(s, min(e, duration), p) for s, e, p in segments if s < duration - 1e-6]
    check_alignment("?", clipped)
    return clipped


def _scp_path(f: AudioFile, out: Path) -> str:
    """The file's absolute path, or, when it holds whitespace (which wav.scp cannot), a
    symbolic link OUT/links/<utt><ext> to it."""
    path = str(f.path)
    if not re.search(r"\s", path):
        return path
    link = out / "links" / f"{f.utt}{f.path.suffix}"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(f.path)
    return str(link)


def import_folder(audio_dir: str | os.PathLike, out: str | os.PathLike, cfg: FolderConfig) -> ImportedFolder:
    """Scan, check and write the data dir (see the module doc). Bad input files go to the report."""
    from speechunits.audio import audio_duration
    from speechunits.corpora import writer
    from speechunits.data.datadir import DataDir, read_table
    from speechunits.fileio import write_lines

    cfg.check()
    root = Path(audio_dir).absolute()
    if not root.is_dir():
        raise SpeechUnitsError(f"no such audio folder {root}")
    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    writer.clear_split(out, extra=("failed.txt",))
    paths = find_audio(root, cfg.extensions)
    if not paths:
        raise SpeechUnitsError(f"no audio files ({', '.join(cfg.extensions)}) under {root}")
    report = BatchReport()
    files = assign_ids(root, paths, cfg, report)

    durations: dict[str, float] = {}
    for f in files:
        try:
            durations[f.utt] = audio_duration(str(f.path), utt=f.utt)
        except AudioError as e:
            report.failures[f.rel] = f"{f.rel}: {e.reason}"
            continue
        if durations[f.utt] <= 0:
            report.failures[f.rel] = f"{f.rel}: no audio samples"
    files = [f for f in files if f.rel not in report.failures]
    text = read_transcripts(cfg.transcripts, files, report) if cfg.transcripts else None
    alignments = read_alignments(cfg.alignments, files, cfg, report) if cfg.alignments else None
    if alignments is not None:
        for f in files:
            if f.utt in alignments and f.rel not in report.failures:
                try:
                    alignments[f.utt] = fit_alignment(alignments[f.utt], durations[f.utt], cfg.max_overshoot)
                except DataFormatError as e:
                    report.failures[f.rel] = f"{f.rel}: alignment: {e.reason}"
    good = [f for f in files if f.rel not in report.failures]
    report.done = len(good)
    if not good:
        first = "; ".join(list(report.failures.values())[:3])
        raise SpeechUnitsError(f"none of the {len(paths)} audio files could be imported, e.g. {first}")

    dd = DataDir(
        wav_scp={f.utt: _scp_path(f, out) for f in good},
        utt2spk={f.utt: f.speaker for f in good},
        utt2dur={f.utt: durations[f.utt] for f in good},
        text=None if text is None else {f.utt: text[f.utt] for f in good},
    )
    if cfg.spk2gender:
        genders = {k: v.lower() for k, v in read_table(cfg.spk2gender, check_order=False).items()}
        missing = sorted(set(dd.speakers) - set(genders))
        if missing:
            raise SpeechUnitsError(f"spk2gender {cfg.spk2gender} has no gender for speakers {', '.join(missing[:10])}")
        dd.spk2gender = {s: genders[s] for s in dd.speakers}
    aligned = None if alignments is None else {f.utt: alignments[f.utt] for f in good}
    writer.write_split(out, dd, aligned)
    write_lines(out / "failed.txt", (report.failures[k] for k in sorted(report.failures)))
    writer.validate_split(out, "imported")
    return ImportedFolder(dd, aligned, report, len(paths))


__all__ = ["FolderConfig", "AudioFile", "ImportedFolder", "import_folder", "assign_ids", "sanitise", "fit_alignment"]
