"""Best-of-N timing, shared by the benchmark scripts (`from timing import best_of`)."""

from __future__ import annotations

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeats: int = 1, warmup: bool = False) -> tuple[float, float]:
    """(best wall seconds, process CPU seconds of that run, all threads) over `repeats`
    runs of `fn`; `warmup` runs it once first, untimed (compilation, caches). On a busy
    machine the CPU time says what the work costs: wall / CPU below the thread count
    means the run waited for cores."""
    if warmup:
        fn()
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best[0]:
            best = (wall, cpu)
    return best
