"""Which ABX kernels run (C or numba), and starting them early in a background thread.

Two implementations with one interface: the C library (native/, built on first use,
loaded in a millisecond) and the numba kernels (kernels.py). `select_kernels()` picks
by SPEECHUNITS_ABX_KERNELS: "auto" (the default: C when it can be built, else numba;
numba for problems big enough that its faster scoring repays its import), "c" (C or an
error) or "numba".

Loading the numba kernels costs more than scoring a small item file: numba's import, then
(on the first cached call) its typing and lowering registries, whose linear-algebra
module imports scipy.linalg only to check that a BLAS exists. The ABX kernels use no
BLAS, so `preload_in_background` loads the registries with scipy blocked (numba then
records that it has no BLAS: np.dot inside other numba code of the same process
would not compile, which is why only the `abx` command does this), while the main
thread reads the item file and the features.

    future = preload_in_background()
    ...                                 # read items, load features
    future.result()                     # kernels ready (re-raises an import error)
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor

from speechunits.errors import ConfigError, SpeechUnitsError

_BLOCKABLE = ("scipy", "scipy.linalg")
BACKENDS = ("auto", "c", "numba")


# "auto" and a problem this large (frame pairs the DTWs visit): numba. Its kernels score
# ~20 % faster than the C ones (5 ns less per frame pair on a 2-core x86 VM, benchmarks/abx.py),
# which repays its ~0.7 s import beyond ~130 M frame pairs (a few seconds of scoring).
NUMBA_ABOVE_FRAME_PAIRS = 200_000_000


def select_kernels(skip_blas_check: bool = False, frame_pairs: int | None = None):
    """The kernels SPEECHUNITS_ABX_KERNELS asks for: an object or module with
    block_dtw, score_cells, get/set_num_threads, max_threads and the distance codes.
    `frame_pairs`: the size of the problem, when known ("auto" takes numba for big ones)."""
    choice = os.environ.get("SPEECHUNITS_ABX_KERNELS", "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        raise ConfigError(f"SPEECHUNITS_ABX_KERNELS must be one of {', '.join(BACKENDS)}, got {choice!r}")
    if choice == "auto" and frame_pairs is not None and frame_pairs > NUMBA_ABOVE_FRAME_PAIRS:
        try:
            return load_kernels(skip_blas_check)
        except ImportError:  # pragma: no cover - numba is a dependency; C is the fallback
            pass
    if choice != "numba":
        from speechunits.eval.abx import native

        found = native.load(required=choice == "c")
        if found is not None:
            return found
    try:
        return load_kernels(skip_blas_check)
    except ImportError as e:  # pragma: no cover - numba is a dependency
        raise SpeechUnitsError(f"ABX needs numba or a C compiler: {e}") from e


def load_kernels(skip_blas_check: bool = True):
    """Import numba, its CPU registries and the numba kernels module; returns the module."""
    blocked = None
    if skip_blas_check and "numba.np.arraymath" not in sys.modules:
        blocked = next((name for name in _BLOCKABLE if name not in sys.modules), None)
    if blocked:
        sys.modules[blocked] = None  # an import of it raises ImportError: numba's BLAS check says "no BLAS"
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    finally:
        if blocked and sys.modules.get(blocked, 0) is None:
            del sys.modules[blocked]
    from speechunits.eval.abx import kernels

    return kernels


def preload_in_background() -> Future:
    """select_kernels() in a daemon thread (numba's BLAS check skipped); the Future's
    result is the kernels."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="abx-kernels")
    future = pool.submit(select_kernels, True)
    pool.shutdown(wait=False)
    return future
