"""Jobs in local worker processes.

    report = run_parts(work, 4, count_finished=lambda: ..., on_progress=bar.update)
    with worker_pool(nj, init, args) as pool: pool.map(fn, items)

`run_parts` runs parts 1..n of a job side by side (`--nj N` as n `--job K/N` runs)
and merges their reports; `worker_pool` is the process pool of corpus preparation
(each worker with its own engine, set up by `initializer`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator

from speechunits.batch import BatchReport
from speechunits.errors import SpeechUnitsError

__all__ = ["run_parts", "worker_pool"]


def run_parts(
    work: Callable[[int, int], BatchReport],
    n: int,
    *,
    what: str = "job",
    count_finished: Callable[[], int] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """`work(k, n)` for k = 1..n in n spawned processes (no fork of a process with
    torch threads), their reports merged. `work` must be picklable (a module-level
    function or functools.partial of one). Progress is read off `count_finished()`
    (e.g. the part files on disk) while the processes run. A process that dies raises
    SpeechUnitsError naming its part (`what`: the job's name)."""
    seen = count_finished() if count_finished else 0
    report = BatchReport()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(n, mp_context=context) as pool:
        jobs = [pool.submit(work, k, n) for k in range(1, n + 1)]
        pending = set(jobs)
        while pending:
            _, pending = wait(pending, timeout=0.5)
            if count_finished:
                now = count_finished()
                if on_progress and now > seen:
                    on_progress(now - seen)
                seen = now
        for k, job in enumerate(jobs, 1):
            try:
                part = job.result()
            except BrokenProcessPool as e:
                raise SpeechUnitsError(f"{what}: job {k}/{n} died ({e}); rerun to resume") from None
            report.merge(part)
    return report


@contextlib.contextmanager
def worker_pool(n: int, initializer: Callable, initargs: tuple) -> Iterator["multiprocessing.pool.Pool"]:
    """A multiprocessing pool of n workers (fork where the platform has it), each set up
    by `initializer(*initargs)`; closed and joined on exit."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = multiprocessing.get_context(method).Pool(n, initializer, initargs)
    try:
        yield pool
    finally:
        pool.close()
        pool.join()
