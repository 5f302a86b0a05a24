"""Unit sequences and their files: run-length coding, units.txt / durations.txt / units.jsonl.

A unit sequence is what `speechunits extract` writes per utterance: the codes with
repeats removed (`units`), how many latent frames each one lasts (`durations`),
and the latent frame shift in seconds. Frame i of the latent sequence covers
[i * shift, (i + 1) * shift) (docs/design.md section 4), so unit k starts at
sum(durations[:k]) * shift seconds.

Files (every one keyed by utterance id, sorted, Kaldi text style):

    units.txt       utt u1 u2 u3 ...          codes, repeats removed
    durations.txt   utt d1 d2 d3 ...          latent frames per unit (same shape)
    units.jsonl     {"utt": ..., "units": [...], "durations": [...],
                     "start": [...], "shift": 0.02}   one object per line

In units.jsonl "start" is the list of unit start times in seconds (rounded to the
microsecond), "shift" the latent frame shift. `read_units` reads either form (or
an extract output folder, through its units.jsonl) back into `UnitSequence`s.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from speechunits.errors import DataFormatError, SpeechUnitsError
from speechunits.fileio import atomic_open

__all__ = [
    "UnitSequence",
    "run_length",
    "expand_runs",
    "unit_starts",
    "read_units",
    "write_units",
    "UNITS_TXT",
    "DURATIONS_TXT",
    "UNITS_JSONL",
]

UNITS_TXT = "units.txt"
DURATIONS_TXT = "durations.txt"
UNITS_JSONL = "units.jsonl"


def run_length(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame codes (T,) -> (units (U,), durations (U,)): consecutive repeats merged.

    >>> run_length(np.array([3, 3, 1, 1, 1, 3]))
    (array([3, 1, 3]), array([2, 3, 1]))
    """
    codes = np.asarray(codes).reshape(-1)
    if codes.size == 0:
        return codes.astype(np.int64), np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [codes.size]])
    return codes[starts].astype(np.int64), (ends - starts).astype(np.int64)


def expand_runs(units: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """(units (U,), durations (U,)) -> frame codes (sum(durations),): the inverse of run_length."""
    return np.repeat(np.asarray(units, dtype=np.int64), np.asarray(durations, dtype=np.int64))


def unit_starts(durations: np.ndarray, shift: float) -> np.ndarray:
    """Start time in seconds of every unit: cumulative durations before it, times the shift."""
    d = np.asarray(durations, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(d)[:-1]]).astype(np.float64) * float(shift) if d.size else np.zeros(0)


@dataclass
class UnitSequence:
    """One utterance's units. units, durations: (U,) int64; shift: seconds per latent frame
    (None when the file did not say, e.g. units.txt)."""

    utt: str
    units: np.ndarray
    durations: np.ndarray
    shift: float | None = None

    @property
    def num_frames(self) -> int:
        return int(self.durations.sum())

    @property
    def starts(self) -> np.ndarray:
        if self.shift is None:
            raise SpeechUnitsError(f"utterance {self.utt}: unit times need the frame shift")
        return unit_starts(self.durations, self.shift)

    def frame_codes(self) -> np.ndarray:
        """(num_frames,) the code of every latent frame."""
        return expand_runs(self.units, self.durations)

    def to_json(self) -> dict:
        return {
            "utt": self.utt,
            "units": self.units.tolist(),
            "durations": self.durations.tolist(),
            "start": np.round(self.starts, 6).tolist(),
            "shift": self.shift,
        }


def _int_list(items: list, path: str, line: int, what: str) -> np.ndarray:
    try:
        out = np.array([int(x) for x in items], dtype=np.int64)
    except (TypeError, ValueError):
        raise DataFormatError(f"{what} must be integers", path, line) from None
    return out


def _read_table(path: Path) -> dict[str, tuple[list[str], int]]:
    """utt -> (fields, line number) of a Kaldi-style text table; duplicates are errors."""
    out: dict[str, tuple[list[str], int]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            utt = fields[0]
            if utt in out:
                raise DataFormatError(f"utterance {utt} appears twice (first on line {out[utt][1]})", str(path), n)
            out[utt] = (fields[1:], n)
    return out


def _read_txt(units_path: Path, durations_path: Path | None, shift: float | None) -> dict[str, UnitSequence]:
    units = _read_table(units_path)
    durs = _read_table(durations_path) if durations_path is not None else None
    out: dict[str, UnitSequence] = {}
    for utt, (fields, n) in units.items():
        u = _int_list(fields, str(units_path), n, "units")
        if durs is None:
            d = np.ones_like(u)
        else:
            if utt not in durs:
                raise DataFormatError(f"utterance {utt} has units but no durations in {durations_path}",
                                      str(units_path), n)
            dfields, dn = durs[utt]
            d = _int_list(dfields, str(durations_path), dn, "durations")
            if d.shape != u.shape:
                raise DataFormatError(
                    f"utterance {utt}: {d.size} durations for {u.size} units in {units_path}", str(durations_path), dn
                )
            if (d < 1).any():
                raise DataFormatError(f"utterance {utt}: durations must be >= 1 frame", str(durations_path), dn)
        out[utt] = UnitSequence(utt, u, d, shift)
    if durs is not None:
        extra = sorted(set(durs) - set(units))
        if extra:
            raise DataFormatError(f"durations for utterances without units, e.g. {extra[0]}", str(durations_path))
    return out


def _read_jsonl(path: Path) -> dict[str, UnitSequence]:
    out: dict[str, UnitSequence] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"not JSON: {e.msg}", str(path), n) from None
            if not isinstance(obj, dict) or "utt" not in obj or "units" not in obj:
                raise DataFormatError('expected an object with "utt" and "units"', str(path), n)
            utt = str(obj["utt"])
            if utt in out:
                raise DataFormatError(f"utterance {utt} appears twice", str(path), n)
            u = _int_list(obj["units"], str(path), n, "units")
            d = _int_list(obj.get("durations") or [1] * u.size, str(path), n, "durations")
            if d.shape != u.shape or (d < 1).any():
                raise DataFormatError(f"utterance {utt}: durations must be one positive count per unit", str(path), n)
            shift = obj.get("shift")
            out[utt] = UnitSequence(utt, u, d, float(shift) if shift is not None else None)
    return out


def read_units(path: str | os.PathLike, durations: str | os.PathLike | None = None) -> dict[str, UnitSequence]:
    """Unit sequences by utterance from units.jsonl, units.txt (+ durations.txt), or a
    `speechunits extract` output folder (its units.jsonl).

    For units.txt, `durations` defaults to a durations.txt beside it; when there is
    none, every unit counts as one frame (frame-level units, as `extract --no-dedup`
    writes them) and a warning is logged. The frame shift comes from the JSONL, or
    from a `frame_shift` file beside units.txt (else None).
    """
    import logging

    path = Path(path)
    if path.is_dir():
        if (path / UNITS_JSONL).is_file():
            return _read_jsonl(path / UNITS_JSONL)
        if (path / UNITS_TXT).is_file():
            path = path / UNITS_TXT
        else:
            raise SpeechUnitsError(f"{path}: no {UNITS_JSONL} or {UNITS_TXT} in this folder")
    if not path.is_file():
        raise SpeechUnitsError(f"{path}: unit file not found")
    if path.suffix == ".jsonl":
        return _read_jsonl(path)
    dur_path = Path(durations) if durations is not None else path.with_name(DURATIONS_TXT)
    if not dur_path.is_file():
        if durations is not None:
            raise SpeechUnitsError(f"{dur_path}: durations file not found")
        logging.getLogger(__name__).warning("%s: no %s beside it: every unit counts as one frame", path, DURATIONS_TXT)
        dur_path = None
    shift = None
    shift_file = path.with_name("frame_shift")
    if shift_file.is_file():
        shift = float(shift_file.read_text().strip())
    return _read_txt(path, dur_path, shift)


def write_units(out_dir: str | os.PathLike, seqs: Iterable[UnitSequence] | Mapping[str, UnitSequence]) -> None:
    """Write units.txt, durations.txt and units.jsonl (sorted by utterance id, atomically)."""
    if isinstance(seqs, Mapping):
        seqs = seqs.values()
    items = sorted(seqs, key=lambda s: s.utt)
    out_dir = Path(out_dir)
    with atomic_open(out_dir / UNITS_TXT) as fu, atomic_open(out_dir / DURATIONS_TXT) as fd, \
            atomic_open(out_dir / UNITS_JSONL) as fj:
        for s in items:
            fu.write(" ".join([s.utt, *map(str, s.units.tolist())]) + "\n")
            fd.write(" ".join([s.utt, *map(str, s.durations.tolist())]) + "\n")
            fj.write(json.dumps(s.to_json()) + "\n")
