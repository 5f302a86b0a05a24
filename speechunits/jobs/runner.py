"""Run a per-utterance job: skip what is finished, batch, isolate failures, write, report.

A job says only what is its own, by overriding UtteranceJob's methods:

    finished(utt)         its outputs are all there (resume); default: never
    start(todo, report)   before any batch, with the utterances to do (e.g. speaker
                          statistics); a failure it records drops the utterance
    prepare(utt, report)  the utterance's input (audio, frames); a SpeechUnitsError
                          fails that utterance only; may add report.notes[utt]
    seconds(item)         how much a prepared input weighs against max_batch_seconds
    process(items)        {utt: input} -> results in the same order, for a batch; when
                          it raises SpeechUnitsError, each utterance is processed alone
                          so that the failing one is named and the others kept
    write(utt, result)    the utterance's outputs, each written atomically
                          (speechunits.fileio), its part file last if it has one

`run_job(job, groups, schedule)` takes the utterances in groups: a group is skipped
only when all of it is finished, else all of it is redone (a speaker normalised with
its own statistics is rewritten whole), and a batch holds whole groups. Every
utterance ends done, skipped (finished by an earlier run) or failed, with its reason,
in the returned BatchReport; `on_progress(n)` is called as utterances end.

Schedule says where the work runs: in the calling thread (threads=0; torch ops run
slower in a pool thread on CPU), in `threads` threads that each take whole batches,
or pipelined: the calling thread processes one batch while a second thread prepares
the next and writes the last.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from speechunits.batch import BatchReport
from speechunits.errors import SpeechUnitsError

__all__ = ["UNNAMEABLE", "Schedule", "UtteranceJob", "run_job"]

UNNAMEABLE = "utterance id contains '/' or starts with '.': cannot name its output files"


class UtteranceJob:
    """What one kind of job does with an utterance (see the module docstring)."""

    def finished(self, utt: str) -> bool:
        return False

    def start(self, todo: list[str], report: BatchReport) -> None:
        pass

    def prepare(self, utt: str, report: BatchReport) -> Any:
        return utt

    def seconds(self, item: Any) -> float:
        return 0.0

    def process(self, items: dict[str, Any]) -> Sequence[Any]:
        raise NotImplementedError

    def write(self, utt: str, result: Any) -> None:
        raise NotImplementedError


@dataclass
class Schedule:
    """batch_size: utterances per batch (batches hold whole groups, so a group larger
    than this is one batch); max_batch_seconds: a batch also ends when its prepared
    inputs weigh this much (job.seconds); threads: 0 runs everything in the calling
    thread, n >= 1 runs whole batches in n threads; pipelined: prepare the next batch
    and write the last in a second thread while the calling thread processes."""

    batch_size: int = 1
    max_batch_seconds: float = math.inf
    threads: int = 0
    pipelined: bool = False

    def __post_init__(self):
        if self.batch_size < 1:
            raise SpeechUnitsError("batch_size must be >= 1")
        if self.threads and self.pipelined:
            raise SpeechUnitsError("a schedule is either threaded or pipelined")


def run_job(
    job: UtteranceJob,
    groups: Sequence[Sequence[str]],
    schedule: Schedule | None = None,
    on_progress: Callable[[int], None] | None = None,
    report: BatchReport | None = None,
) -> BatchReport:
    """Run `job` on the utterances of `groups` (see the module docstring). `report`
    may hold failures found before (e.g. utterances missing from the input); the
    same report is returned with this run's counts added."""
    schedule = schedule or Schedule()
    report = report if report is not None else BatchReport()
    progress = on_progress or (lambda n: None)
    known = set(report.failures)
    todo = _plan(job, groups, report)
    progress(report.skipped + len(set(report.failures) - known))
    if todo:
        known = set(report.failures)
        job.start([u for g in todo for u in g], report)
        dropped = set(report.failures) - known
        if dropped:
            progress(len(dropped))
            todo = [kept for g in todo if (kept := [u for u in g if u not in dropped])]
    run = _Runner(job, schedule)
    if schedule.pipelined:
        run.pipelined(todo, report, progress)
    elif schedule.threads:
        run.threaded(todo, report, progress)
    else:
        run.serial(todo, report, progress)
    return report


def _plan(job: UtteranceJob, groups: Sequence[Sequence[str]], report: BatchReport) -> list[list[str]]:
    """The groups to do; ids that cannot name a file fail, finished groups count as skipped."""
    todo = []
    for group in groups:
        ok = []
        for utt in group:
            if "/" in utt or utt.startswith("."):
                report.failures[utt] = UNNAMEABLE
            else:
                ok.append(utt)
        if ok and all(job.finished(u) for u in ok):
            report.skipped += len(ok)
        elif ok:
            todo.append(ok)
    return todo


class _Runner:
    def __init__(self, job: UtteranceJob, schedule: Schedule):
        self.job, self.schedule = job, schedule

    def batches(self, groups: Sequence[Sequence[str]]) -> Iterator[tuple[dict[str, Any], BatchReport]]:
        """Prepared inputs, a batch at a time, with the failures and notes of preparing
        them (a report of their own: this may run in another thread)."""
        items: dict[str, Any] = {}
        rep, seconds = BatchReport(), 0.0
        for group in groups:
            for utt in group:
                try:
                    items[utt] = self.job.prepare(utt, rep)
                except SpeechUnitsError as e:
                    rep.failures[utt] = str(e)
                    continue
                seconds += self.job.seconds(items[utt])
            if len(items) >= self.schedule.batch_size or seconds >= self.schedule.max_batch_seconds:
                yield items, rep
                items, rep, seconds = {}, BatchReport(), 0.0
        if items or rep.failures or rep.notes:
            yield items, rep

    def process(self, items: dict[str, Any], report: BatchReport, progress) -> list[tuple[str, Any]]:
        """Results of a batch; if the batch fails, of each utterance alone (failures recorded)."""
        if not items:
            return []
        try:
            return list(zip(items, self.job.process(items)))
        except SpeechUnitsError:  # find out which utterance it was
            results = []
            for utt, item in items.items():
                try:
                    results.append((utt, self.job.process({utt: item})[0]))
                except SpeechUnitsError as e:
                    report.failures[utt] = str(e)
                    progress(1)
            return results

    def write(self, results: list[tuple[str, Any]], report: BatchReport, progress) -> None:
        for utt, result in results:
            with report.attempt(utt):
                self.job.write(utt, result)
            progress(1)

    def serial(self, groups, report: BatchReport, progress) -> None:
        for items, prepared in self.batches(groups):
            report.merge(prepared)
            progress(len(prepared.failures))
            self.write(self.process(items, report, progress), report, progress)

    def threaded(self, groups, report: BatchReport, progress) -> None:
        """Chunks of whole groups, batch_size utterances each, `threads` at a time; each
        chunk keeps its own report, merged (and progress told) in the calling thread."""
        chunks, chunk = [], []
        for group in groups:
            chunk.append(group)
            if sum(map(len, chunk)) >= self.schedule.batch_size:
                chunks.append(chunk)
                chunk = []
        if chunk:
            chunks.append(chunk)

        def run(chunk) -> BatchReport:
            rep = BatchReport()
            self.serial(chunk, rep, lambda n: None)
            return rep

        with ThreadPoolExecutor(self.schedule.threads) as pool:
            for rep in pool.map(run, chunks):
                report.merge(rep)
                progress(rep.done + len(rep.failures))

    def pipelined(self, groups, report: BatchReport, progress) -> None:
        """The calling thread processes batch i while one thread prepares batch i+1 and
        writes batch i-1."""

        def settle(writes: list[tuple[str, Future]]) -> None:
            for utt, written in writes:
                with report.attempt(utt):
                    written.result()
                progress(1)

        with ThreadPoolExecutor(1, thread_name_prefix="job-io") as io:
            batches = self.batches(groups)
            loading = io.submit(next, batches, None)
            writes: list[tuple[str, Future]] = []
            while (batch := loading.result()) is not None:
                loading = io.submit(next, batches, None)
                items, prepared = batch
                report.merge(prepared)
                progress(len(prepared.failures))
                results = self.process(items, report, progress)
                settle(writes)  # the previous batch's outputs
                writes = [(utt, io.submit(self.job.write, utt, result)) for utt, result in results]
            settle(writes)
