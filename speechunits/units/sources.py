"""Where the audio to extract units from comes from: a data dir, a folder, a list file.

    src = open_audio_source("data/test")          # Kaldi data dir (wav.scp [+ segments], utt2spk)
    src = open_audio_source("corpus/wavs")        # every audio file below the folder
    src = open_audio_source("files.txt")          # one path per line, or `utt path` lines
    for utt in src.utts(): audio = src.load(utt)  # speechunits.audio.Audio, resampled

Utterance ids:
- data dir: its own ids (segment ids when there is a segments file);
- folder: the path relative to the folder without its suffix, with "/" (and any
  whitespace) replaced by "_": `spk1/ch2/a.wav` -> `spk1_ch2_a`;
- list file: lines are `utt path` (two fields: the id, then the path, which may
  contain spaces) or a bare path without spaces (id: the file name without its
  suffix); blank lines and lines starting with "#" are skipped.
Two files that would get the same id are an error naming both.

Speakers are known only for data dirs (utt2spk); per-speaker CMVN needs them.
Relative paths in wav.scp and in list files are relative to `base_dir` (default:
the current directory, as in Kaldi).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from speechunits.audio import Audio, AudioConfig, AudioLoader
from speechunits.errors import AudioError, DataFormatError, SpeechUnitsError

__all__ = ["AudioSource", "open_audio_source", "AUDIO_SUFFIXES", "folder_utt_id"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".sph", ".aif", ".aiff", ".au", ".caf", ".w64")

_SPACE = re.compile(r"\s+")


def folder_utt_id(relative: str | os.PathLike) -> str:
    """`spk1/ch2/a.wav` -> `spk1_ch2_a` (see the module docstring)."""
    rel = Path(relative)
    stem = rel.with_suffix("").as_posix()
    return _SPACE.sub("_", stem.replace("/", "_"))


@dataclass
class AudioSource:
    """Utterances by id with their audio; `utt2spk` when speakers are known.

    kind: "data dir" | "folder" | "list"; problems: lines/files left out, as messages."""

    loader: AudioLoader
    kind: str
    path: str
    utt2spk: dict[str, str] | None = None
    problems: list[str] = field(default_factory=list)
    without_audio: list[str] = field(default_factory=list)  # utterances of utt2spk with no usable wav.scp line

    def utts(self) -> list[str]:
        return sorted(self.loader.utts() + self.without_audio)

    def __len__(self) -> int:
        return len(self.loader) + len(self.without_audio)

    def load(self, utt: str) -> Audio:
        if utt in self.without_audio:  # failed and counted, as `features` does
            raise AudioError("no entry in wav.scp (or segments) for this utterance", utt=utt)
        return self.loader.load(utt)

    def spk2utt(self) -> dict[str, list[str]] | None:
        if self.utt2spk is None:
            return None
        out: dict[str, list[str]] = {}
        for utt in self.utts():
            if utt in self.utt2spk:
                out.setdefault(self.utt2spk[utt], []).append(utt)
        return out


def _add(table: dict[str, str], utt: str, path: str, where: str) -> None:
    if utt in table:
        raise SpeechUnitsError(f"{where}: two files map to utterance id {utt!r}: {table[utt]} and {path}")
    table[utt] = path


def _folder_table(folder: Path) -> dict[str, str]:
    table: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(AUDIO_SUFFIXES):
                continue
            full = Path(root) / name
            _add(table, folder_utt_id(full.relative_to(folder)), str(full), str(folder))
    if not table:
        raise SpeechUnitsError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
    return table


def _list_table(path: Path) -> dict[str, str]:
    table: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.split(maxsplit=1)
            if len(fields) == 2:
                utt, file = fields[0], fields[1].strip()
            else:
                utt, file = Path(text).stem, text
            if utt in table:
                raise DataFormatError(f"utterance id {utt!r} appears twice ({table[utt]} and {file})", str(path), n)
            table[utt] = file
    if not table:
        raise DataFormatError("no audio files listed", str(path))
    return table


def open_audio_source(
    path: str | os.PathLike,
    *,
    sample_rate: int = 16000,
    base_dir: str | os.PathLike | None = None,
    allow_pipes: bool = False,
) -> AudioSource:
    """A data dir (a folder with wav.scp), a folder of audio files (recursive), or a
    list file; audio is delivered at `sample_rate` (resampled when needed)."""
    path = Path(path)
    config = AudioConfig(target_sr=sample_rate, resample=True, allow_pipes=allow_pipes)
    if path.is_dir() and (path / "wav.scp").is_file():
        from speechunits.data.datadir import DataDir

        datadir, result = DataDir.read_lenient(path)
        loader = AudioLoader(datadir.wav_scp, datadir.segments, base_dir=base_dir, config=config)
        without_audio = sorted(u for u in datadir.utt2spk if u not in loader)
        return AudioSource(loader, "data dir", str(path), dict(datadir.utt2spk) or None, list(result.errors),
                           without_audio)
    if path.is_dir():
        loader = AudioLoader(_folder_table(path), base_dir=None, config=config)
        return AudioSource(loader, "folder", str(path))
    if path.is_file():
        loader = AudioLoader(_list_table(path), base_dir=base_dir, config=config)
        return AudioSource(loader, "list", str(path))
    raise SpeechUnitsError(f"{path}: no such data dir, folder or list file")
