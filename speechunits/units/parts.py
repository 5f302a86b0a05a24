"""The resume state of the unit jobs (extract, kmeans apply): one part file per utterance.

    parts = UnitParts(out)                      # OUT/.parts/<utt>.json
    parts.write(utt, sequence.to_json())        # after the utterance's arrays
    finished, sequences = parts.collect(utts, report, finished=parts.has)
    write_units(out, sequences)                 # units.txt, durations.txt, units.jsonl

An utterance's arrays are written first and its part file last, each atomically, so
the utterance is finished exactly when its part file exists; the unit files are
assembled at the end, sorted, from the part files of the finished utterances.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from speechunits.batch import BatchReport
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import write_text
from speechunits.units.formats import UnitSequence

__all__ = ["PARTS_DIR", "UnitParts"]

PARTS_DIR = ".parts"


class UnitParts:
    def __init__(self, out_dir: str | Path):
        self.folder = Path(out_dir) / PARTS_DIR

    def path(self, utt: str) -> Path:
        return self.folder / f"{utt}.json"

    def has(self, utt: str) -> bool:
        return self.path(utt).is_file()

    def count(self) -> int:
        """Part files on disk (the progress of worker processes)."""
        return sum(1 for _ in self.folder.glob("*.json")) if self.folder.is_dir() else 0

    def write(self, utt: str, record: dict) -> None:
        write_text(self.path(utt), json.dumps(record) + "\n")

    def read(self, utt: str) -> UnitSequence | None:
        """The utterance's units (None for a record without units: a continuous tap)."""
        path = self.path(utt)
        try:
            obj = json.loads(path.read_text())
            if obj.get("units") is None:
                return None
            return UnitSequence(utt, np.asarray(obj["units"], dtype=np.int64),
                                np.asarray(obj["durations"], dtype=np.int64), float(obj["shift"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise SpeechUnitsError(f"{path}: unreadable part file ({e}); delete it to redo utterance {utt}") from None

    def collect(self, utts: Iterable[str], report: BatchReport, finished: Callable[[str], bool]
                ) -> tuple[list[str], list[UnitSequence]]:
        """The finished utterances of `utts` that did not fail, and their unit sequences;
        an unreadable part file fails its utterance (recorded in `report`)."""
        done, sequences = [], []
        for utt in utts:
            if utt in report.failures or not finished(utt):
                continue
            try:
                seq = self.read(utt)
            except SpeechUnitsError as e:
                report.failures[utt] = str(e)
                continue
            done.append(utt)
            if seq is not None:
                sequences.append(seq)
        return done, sequences
