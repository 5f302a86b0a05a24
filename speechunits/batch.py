"""Per-utterance batch jobs that report every failure and never drop data silently.

    report = BatchReport()
    for utt in utts:
        with report.attempt(utt):
            ...                       # raise SpeechUnitsError on bad input
    report.failures  -> {utt: message}; the CLI prints them and sets the exit status
"""

from __future__ import annotations

import contextlib
import dataclasses

from speechunits.errors import SpeechUnitsError


@dataclasses.dataclass
class BatchReport:
    done: int = 0
    skipped: int = 0  # already finished by an earlier run (resume)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)  # handled, but worth saying (e.g. resampled)

    @contextlib.contextmanager
    def attempt(self, utt: str):
        """Count the block as done, or record its SpeechUnitsError against `utt`."""
        try:
            yield
        except SpeechUnitsError as e:
            self.failures[utt] = str(e)
        else:
            self.done += 1

    def merge(self, other: "BatchReport") -> None:
        self.done += other.done
        self.skipped += other.skipped
        self.failures.update(other.failures)
        self.notes.update(other.notes)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        return f"{self.done} done, {self.skipped} already done, {len(self.failures)} failed"
