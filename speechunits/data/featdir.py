"""Feature stores keyed by utterance id.

A feature directory holds one array per utterance, `<utt>.npy` (or `<utt>.pt`),
shape (T, D) (or (T,) for discrete units), plus two small files beside them:

    frame_shift   the frame shift in seconds, one number (as Kaldi's data/frame_shift)
    meta.json     what made the features: type, dimension, config, frame shift

Kaldi ark/scp stores are read and written through kaldiio (optional extra). A scp's
frame shift is read from a `frame_shift` file in the same folder. The scp written
here names its arks by absolute path (as Kaldi does); a relative ark path in an scp
is read against the current directory, else against the scp's folder. Every scp
entry and ark specifier passes the pipe gate of speechunits.data.pipes: `cmd |` is
refused unless allowed.

Frame i of every array is centred at (i + 0.5) * frame_shift seconds.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np

from speechunits.data.pipes import HINT as PIPE_HINT
from speechunits.data.pipes import PipeRefused, check_entry, is_pipe, pipes_allowed
from speechunits.data.torchfile import NotPlainTensor, read_tensor
from speechunits.errors import DataFormatError, SpeechUnitsError
from speechunits.fileio import save_npy, write_json, write_text

FRAME_SHIFT_FILE = "frame_shift"
META_FILE = "meta.json"
ARRAY_SUFFIXES = (".npy", ".pt")


class FeatureSource(Protocol):
    """What readers of features (ABX, probes, training) need."""

    frame_shift: float | None

    def utts(self) -> list[str]: ...

    def load(self, utt: str) -> np.ndarray: ...


def read_frame_shift(folder: str | os.PathLike) -> float | None:
    """The frame shift recorded in `folder` (frame_shift file, else meta.json), or None."""
    folder = Path(folder)
    path = folder / FRAME_SHIFT_FILE
    if path.is_file():
        text = path.read_text().strip()
        try:
            value = float(text)
        except ValueError:
            raise DataFormatError(f"expected a frame shift in seconds, found {text!r}", str(path), 1) from None
        if not value > 0:
            raise DataFormatError(f"frame shift must be positive, found {value}", str(path), 1)
        return value
    meta = folder / META_FILE
    if meta.is_file():
        value = json.loads(meta.read_text()).get("frame_shift")
        return float(value) if value is not None else None
    return None


def _load_array(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".pt":
            try:
                return read_tensor(path)  # without importing torch (start-up time)
            except NotPlainTensor:
                pass
            import torch

            array = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(array, torch.Tensor):
                raise SpeechUnitsError(f"{path}: expected a tensor, found {type(array).__name__}")
            return array.numpy()
        return np.load(path, allow_pickle=False)
    except SpeechUnitsError:
        raise
    except Exception as e:  # corrupt or truncated file
        raise SpeechUnitsError(f"{path}: cannot read array: {e}") from e


class FeatureDir:
    """A folder of per-utterance arrays. Reading and (atomic) writing."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def frame_shift(self) -> float | None:
        return read_frame_shift(self.path)

    @property
    def meta(self) -> dict:
        path = self.path / META_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    def array_path(self, utt: str) -> Path | None:
        for suffix in ARRAY_SUFFIXES:
            path = self.path / f"{utt}{suffix}"
            if path.is_file():
                return path
        return None

    def utts(self) -> list[str]:
        if not self.path.is_dir():
            raise SpeechUnitsError(f"{self.path}: feature directory does not exist")
        names = {
            entry.name.rsplit(".", 1)[0]
            for entry in os.scandir(self.path)
            if entry.is_file() and not entry.name.startswith(".") and entry.name.endswith(ARRAY_SUFFIXES)
        }
        return sorted(names)

    def has(self, utt: str) -> bool:
        return self.array_path(utt) is not None

    def load(self, utt: str) -> np.ndarray:
        path = self.array_path(utt)
        if path is None:
            raise SpeechUnitsError(f"{self.path}: no features for utterance {utt} ({utt}.npy or {utt}.pt)")
        return _load_array(path)

    def save(self, utt: str, array: np.ndarray) -> None:
        save_npy(self.path / f"{utt}.npy", np.asarray(array))

    def write_meta(self, frame_shift: float, **extra) -> None:
        """Record the frame shift (and what made the features) beside the arrays."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.path / FRAME_SHIFT_FILE, f"{frame_shift!r}\n")
        write_json(self.path / META_FILE, {"frame_shift": frame_shift, **extra})


_OFFSET = re.compile(r"^(?P<file>.*?):(?P<offset>\d+)(?P<slices>\[[^\]]*\])?$")
MAX_LISTED = 20  # problems listed one by one in an error; the rest are counted


def _resolve_ark(value: str, folder: Path) -> str:
    """An scp value `file.ark:offset[slices]` with a relative file resolved: against the
    current directory (Kaldi's rule), else against the scp's own folder, so that a
    store written with relative paths still reads from any folder."""
    match = _OFFSET.match(value)
    file, rest = (match["file"], value[len(match["file"]):]) if match else (value, "")
    if os.path.isabs(file) or os.path.exists(file) or not (folder / file).exists():
        return value
    return f"{folder / file}{rest}"


def _listing(head: str, lines: list[str]) -> str:
    shown = lines[:MAX_LISTED]
    more = f"\n  ... and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED else ""
    return head + ":\n  " + "\n  ".join(shown) + more


def read_scp_entries(path: str | os.PathLike, allow_pipes: bool = False) -> dict[str, str]:
    """{utt: value} of a Kaldi scp, every value checked by the pipe gate (speechunits.data.pipes).

    Every malformed line, duplicate key and refused pipe entry is named (file:line,
    utterance; the first MAX_LISTED, then a count) in one DataFormatError or PipeRefused.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpeechUnitsError(f"{path}: cannot read scp: {e}") from None
    table: dict[str, str] = {}
    malformed: list[str] = []
    pipes: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.strip().split(maxsplit=1)
        if not fields:
            continue
        if len(fields) < 2:
            malformed.append(f"{path}:{n}: expected `<utt> <value>`, found {line.strip()!r}")
            continue
        utt, value = fields[0], fields[1].strip()
        if utt in table:
            malformed.append(f"{path}:{n}: duplicate utterance {utt}")
            continue
        if is_pipe(value) and not pipes_allowed(allow_pipes):
            pipes.append(f"{path}:{n}: utterance {utt}: {value}")
        table[utt] = value
    if pipes:
        raise PipeRefused(_listing(f"{path}: {len(pipes)} entry(ies) are shell commands (`cmd |`); "
                                   f"running commands from data files is off: {PIPE_HINT}", pipes))
    if malformed:
        raise DataFormatError(_listing(f"{len(malformed)} malformed line(s)", malformed), str(path))
    return table


class KaldiScp:
    """Read features from a Kaldi scp (arrays through kaldiio); frame shift from a file beside it.

    Every entry goes through the pipe gate when the scp is opened: a `cmd |` entry is
    refused (PipeRefused, naming each such line) unless `allow_pipes` or
    speechunits.data.pipes.allowing_pipes(). Relative ark paths are resolved against
    the current directory, else against the scp's folder.
    """

    def __init__(self, path: str | os.PathLike, frame_shift: float | None = None, allow_pipes: bool = False):
        self.path = Path(path)
        if not self.path.is_file():
            raise SpeechUnitsError(f"{self.path}: scp file does not exist")
        self._table = read_scp_entries(self.path, allow_pipes)
        self._allow_pipes = allow_pipes
        self.frame_shift = frame_shift if frame_shift is not None else read_frame_shift(self.path.parent)

    def utts(self) -> list[str]:
        return sorted(self._table)

    def load(self, utt: str) -> np.ndarray:
        if utt not in self._table:
            raise SpeechUnitsError(f"{self.path}: no entry for utterance {utt}")
        value = self._table[utt]
        check_entry(value, self._allow_pipes, f"{self.path}: utterance {utt}: entry")
        try:
            import kaldiio
        except ImportError as e:
            raise SpeechUnitsError("reading Kaldi scp files needs kaldiio: pip install 'speechunits[kaldi]'") from e
        try:
            return np.asarray(kaldiio.load_mat(_resolve_ark(value, self.path.parent)))
        except Exception as e:
            raise SpeechUnitsError(f"{self.path}: cannot read utterance {utt} ({value}): {e}") from e


class KaldiArk:
    """Every array of a Kaldi ark: a file, or `cmd |` only when pipes are allowed."""

    def __init__(self, spec: str, frame_shift: float | None = None, allow_pipes: bool = False):
        check_entry(spec, allow_pipes, f"ark specifier {spec!r}")
        try:
            import kaldiio
        except ImportError as e:
            raise SpeechUnitsError("reading Kaldi ark files needs kaldiio: pip install 'speechunits[kaldi]'") from e
        if not is_pipe(spec) and not Path(spec).is_file():
            raise SpeechUnitsError(f"{spec}: ark file does not exist")
        from kaldiio.utils import open_like_kaldi

        try:
            with open_like_kaldi(spec, "rb") as f:  # a file, or the command's output (allowed above)
                self._arrays = {utt: np.asarray(a) for utt, a in kaldiio.load_ark(f)}
        except Exception as e:
            raise SpeechUnitsError(f"{spec}: cannot read ark: {e}") from e
        folder = Path(spec).parent if not is_pipe(spec) else Path(".")
        self.frame_shift = frame_shift if frame_shift is not None else read_frame_shift(folder)

    def utts(self) -> list[str]:
        return sorted(self._arrays)

    def load(self, utt: str) -> np.ndarray:
        if utt not in self._arrays:
            raise SpeechUnitsError(f"no array for utterance {utt} in the ark")
        return self._arrays[utt]


_SPECIFIER = re.compile(r"^(?P<kind>ark|scp)(?:,[a-z]+)*:(?P<target>.+)$")


def open_feature_source(
    path: str | os.PathLike, frame_shift: float | None = None, allow_pipes: bool = False
) -> FeatureSource:
    """A folder of arrays, a Kaldi `.scp`, or a Kaldi specifier (`scp:feats.scp`, `ark:feats.ark`,
    `ark:cmd |`); `frame_shift` overrides what is recorded. Pipes anywhere (the specifier or an
    scp entry) are refused unless `allow_pipes` (see speechunits.data.pipes)."""
    text = os.fspath(path)
    spec = _SPECIFIER.match(text)
    if spec:
        target = spec["target"].strip()
        if spec["kind"] == "ark":
            return KaldiArk(target, frame_shift, allow_pipes)
        check_entry(target, allow_pipes, f"scp specifier {text!r}")
        return KaldiScp(target, frame_shift, allow_pipes)
    path = Path(path)
    if path.suffix == ".scp":
        return KaldiScp(path, frame_shift, allow_pipes)
    if not path.is_dir():
        raise SpeechUnitsError(f"{path}: not a feature directory or .scp file")
    source = FeatureDir(path)
    if frame_shift is not None:
        return _WithFrameShift(source, frame_shift)
    return source


class _WithFrameShift:
    """A source whose frame shift was given explicitly (e.g. --frame-shift)."""

    def __init__(self, source: FeatureSource, frame_shift: float):
        self._source, self.frame_shift = source, frame_shift

    def utts(self) -> list[str]:
        return self._source.utts()

    def load(self, utt: str) -> np.ndarray:
        return self._source.load(utt)


def write_kaldi_ark(ark_path: str | os.PathLike, scp_path: str | os.PathLike, arrays: Iterable[tuple[str, np.ndarray]]) -> None:
    """Write (utt, array) pairs to an ark + scp, atomically (tmp names, then rename both)."""
    import kaldiio

    ark_path, scp_path = Path(ark_path).absolute(), Path(scp_path)  # absolute in the scp, as Kaldi writes them
    tmp_ark = ark_path.with_name(f".{ark_path.name}.tmp")
    tmp_scp = scp_path.with_name(f".{scp_path.name}.tmp")
    with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
        for utt, array in arrays:
            writer(utt, np.asarray(array))
    # the scp names the temporary ark: point it at the final name
    text = tmp_scp.read_text().replace(str(tmp_ark), str(ark_path))
    os.replace(tmp_ark, ark_path)
    write_text(scp_path, text)
    tmp_scp.unlink()
