"""Start numba and the compiled ABX kernels early, in a background thread.

Loading the kernels costs more than scoring a small item file: numba's import, then
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

import sys
from concurrent.futures import Future, ThreadPoolExecutor

_BLOCKABLE = ("scipy", "scipy.linalg")


def load_kernels(skip_blas_check: bool = True):
    """Import numba, its CPU registries and the kernels module; returns the module."""
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
    """load_kernels() in a daemon thread; the Future's result is the kernels module."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="abx-kernels")
    future = pool.submit(load_kernels)
    pool.shutdown(wait=False)
    return future
