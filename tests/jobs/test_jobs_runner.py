"""The per-utterance job runner against a brute-force expectation (each utterance done
on its own): every schedule gives the same outputs; a batch with one bad utterance
keeps every good one and names the bad one; a run killed midway resumes and ends with
the outputs of an uninterrupted run; every failure is reported, and every utterance
ends done, skipped or failed exactly once."""

import itertools

import numpy as np
import pytest

from speechunits.errors import OutputError, SpeechUnitsError
from speechunits.fileio import save_npy
from speechunits.jobs import UNNAMEABLE, BatchReport, Schedule, UtteranceJob, run_job, utterance_groups

SCHEDULES = [Schedule(batch_size=b, threads=t, pipelined=p)
             for b in (1, 2, 5) for t, p in ((0, False), (2, False), (0, True))]


class Killed(Exception):
    """Not a SpeechUnitsError: stands for the process dying."""


class Squares(UtteranceJob):
    """x -> x**2 per utterance into OUT/<utt>.npy. Bad inputs: 'unreadable' fails in
    prepare, a negative value fails the whole batch in process, 'unwritable' fails in
    write; `kill_after` writes raise Killed."""

    def __init__(self, inputs, out, kill_after=None):
        self.inputs, self.out, self.kill_after = inputs, out, kill_after
        self.batches, self.writes = [], 0

    def finished(self, utt):
        return (self.out / f"{utt}.npy").is_file()

    def prepare(self, utt, report):
        x = self.inputs[utt]
        if isinstance(x, str) and x == "unreadable":
            raise SpeechUnitsError(f"utterance {utt}: unreadable")
        if isinstance(x, str) and x == "noted":
            report.notes[utt] = "resampled"
            return 3
        return x

    def seconds(self, item):
        return 1.0

    def process(self, items):
        self.batches.append(list(items))
        bad = [u for u, x in items.items() if isinstance(x, int) and x < 0]
        if bad:
            raise SpeechUnitsError(f"utterance {bad[0]}: negative")
        return [np.array([x, x], dtype=np.int64) ** 2 if x != "unwritable" else None for x in items.values()]

    def write(self, utt, result):
        if self.kill_after is not None and self.writes >= self.kill_after:
            raise Killed()
        if result is None:
            raise OutputError("cannot write: read-only", str(self.out / f"{utt}.npy"))
        save_npy(self.out / f"{utt}.npy", result)
        self.writes += 1


INPUTS = {
    "a-1": 1, "a-2": 2, "a-3": -1, "a-4": 4,
    "b-1": 5, "b-2": "unreadable", "b-3": 7,
    "c-1": 8, "c-2": "unwritable", "c-3": "noted",
    "c/4": 9, ".c5": 10,
}
UTT2SPK = {u: u[0] for u in INPUTS}
EXPECTED_FAILED = {"a-3": "negative", "b-2": "unreadable", "c-2": "read-only", "c/4": UNNAMEABLE, ".c5": UNNAMEABLE}


def brute_force(inputs):
    """What each utterance gives on its own."""
    out = {}
    for utt, x in inputs.items():
        if isinstance(x, str) and x != "noted" or (isinstance(x, int) and x < 0) or "/" in utt or utt.startswith("."):
            continue
        x = 3 if x == "noted" else x
        out[utt] = np.array([x, x], dtype=np.int64) ** 2
    return out


def outputs(folder):
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.npy"))}


def check_report(report, total):
    assert set(report.failures) == set(EXPECTED_FAILED)
    for utt, reason in EXPECTED_FAILED.items():
        assert reason in report.failures[utt]
        assert utt in report.failures[utt] or reason == UNNAMEABLE
    assert report.done + report.skipped + len(report.failures) == total


@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
def test_every_schedule_gives_the_brute_force_outputs_and_names_every_failure(tmp_path, schedule):
    ticks = []
    job = Squares(INPUTS, tmp_path)
    report = run_job(job, utterance_groups(INPUTS), schedule, on_progress=ticks.append)
    check_report(report, len(INPUTS))
    assert report.done == len(brute_force(INPUTS)) and report.skipped == 0
    assert report.notes == {"c-3": "resampled"}
    assert sum(ticks) == len(INPUTS)
    expected = brute_force(INPUTS)
    assert sorted(outputs(tmp_path)) == sorted(expected)
    for utt, x in expected.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{utt}.npy"), x)
    assert all(len(b) <= schedule.batch_size for b in job.batches)


def test_a_failed_batch_is_retried_one_utterance_at_a_time(tmp_path):
    inputs = {"u1": 1, "u2": 2, "u3": -3, "u4": 4}
    job = Squares(inputs, tmp_path)
    report = run_job(job, utterance_groups(inputs), Schedule(batch_size=4))
    assert report.failures == {"u3": "utterance u3: negative"}
    assert report.done == 3 and sorted(outputs(tmp_path)) == ["u1", "u2", "u4"]
    assert job.batches == [["u1", "u2", "u3", "u4"], ["u1"], ["u2"], ["u3"], ["u4"]]


def test_batches_hold_whole_groups_and_end_at_max_seconds(tmp_path):
    inputs = {f"{s}-{i}": i + 1 for s in "ab" for i in range(3)}
    job = Squares(inputs, tmp_path)
    run_job(job, utterance_groups(inputs, {u: u[0] for u in inputs}), Schedule(batch_size=2))
    assert job.batches == [["a-0", "a-1", "a-2"], ["b-0", "b-1", "b-2"]]  # a speaker is never split
    job = Squares(inputs, tmp_path / "s")
    run_job(job, utterance_groups(inputs), Schedule(batch_size=10, max_batch_seconds=4))
    assert [len(b) for b in job.batches] == [4, 2]


@pytest.mark.parametrize("schedule", [Schedule(batch_size=2), Schedule(batch_size=2, pipelined=True),
                                      Schedule(threads=2)], ids=str)
@pytest.mark.parametrize("kill_after", [0, 1, 3, 5])
def test_a_killed_run_resumes_to_the_outputs_of_an_uninterrupted_run(tmp_path, schedule, kill_after):
    groups = utterance_groups(INPUTS)
    whole = tmp_path / "whole"
    run_job(Squares(INPUTS, whole), groups, schedule)

    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        run_job(Squares(INPUTS, out, kill_after=kill_after), groups, schedule)
    written = outputs(out)
    assert len(written) <= kill_after + (1 if schedule.threads else 0)  # nothing half-written counts
    assert not list(out.glob(".*.tmp"))
    report = run_job(Squares(INPUTS, out), groups, schedule)
    check_report(report, len(INPUTS))
    assert report.skipped == len(written) and report.done == len(brute_force(INPUTS)) - len(written)
    assert outputs(out) == outputs(whole)


def test_a_group_is_skipped_only_when_all_of_it_is_finished(tmp_path):
    inputs = {f"{s}-{i}": i + 1 for s in "abc" for i in range(2)}
    groups = utterance_groups(inputs, {u: u[0] for u in inputs})
    run_job(Squares(inputs, tmp_path), groups)
    (tmp_path / "b-1.npy").unlink()
    job = Squares(inputs, tmp_path)
    report = run_job(job, groups)
    assert report.skipped == 4 and report.done == 2  # speaker b redone whole
    assert job.batches == [["b-0", "b-1"]]


def test_failures_of_start_and_of_earlier_checks_are_kept(tmp_path):
    class WithStats(Squares):
        def start(self, todo, report):
            self.todo = list(todo)
            report.failures["u2"] = "utterance u2: no speaker statistics"

    inputs = {"u1": 1, "u2": 2, "u3": 3}
    job = WithStats(inputs, tmp_path)
    ticks = []
    report = run_job(job, utterance_groups(inputs), on_progress=ticks.append,
                     report=BatchReport(failures={"u0": "not in the input"}))
    assert job.todo == ["u1", "u2", "u3"] and list(itertools.chain(*job.batches)) == ["u1", "u3"]
    assert report.failures == {"u0": "not in the input", "u2": "utterance u2: no speaker statistics"}
    assert report.done == 2 and sum(ticks) == 3


def test_schedule_checks():
    with pytest.raises(SpeechUnitsError):
        Schedule(batch_size=0)
    with pytest.raises(SpeechUnitsError):
        Schedule(threads=2, pipelined=True)
