"""The ABX kernels in C (abx_kernels.c), built on first use and loaded with ctypes.

A second implementation of `speechunits.eval.abx.kernels` (numba) with the same
functions, arguments and results, for one reason: start-up. Importing numba and
loading its cached kernels takes most of a second; a shared library loads in a
millisecond, so `speechunits abx` on a small item file spends its time scoring.

    from speechunits.eval.abx import native
    kernels = native.load()          # None when no C compiler could build it
    kernels.block_dtw(...)           # as kernels.block_dtw
    kernels.score_cells(...)

The library is compiled once per source, compiler flags and CPU (`cc -O3
-march=native -fopenmp`) into the cache folder ($SPEECHUNITS_CACHE, else
$XDG_CACHE_HOME/speechunits, else ~/.cache/speechunits), atomically, so concurrent
first uses do not clash; later processes only load it. `build()` does it ahead of
time (tools/setup.sh calls it). Set SPEECHUNITS_ABX_KERNELS=numba to use the numba
kernels instead (compute.py), =c to fail loudly when the library cannot be built.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from speechunits.errors import SpeechUnitsError

__all__ = ["load", "build", "library_path", "NativeKernels", "ANGULAR", "EUCLIDEAN", "KL_SYMMETRIC", "DISCRETE"]

ANGULAR, EUCLIDEAN, KL_SYMMETRIC, DISCRETE = 0, 1, 2, 3  # as kernels.py
SOURCE = Path(__file__).with_name("abx_kernels.c")
# -ffp-contract=fast: fused multiply-adds where the compiler likes, as numba's "contract";
# no -ffast-math: sums keep their written order (d(p, q) == d(q, p) exactly)
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-fno-math-errno", "-fopenmp", "-fPIC", "-shared")

_loaded: "NativeKernels | None | bool" = False  # False: not tried yet


def cache_dir() -> Path:
    if os.environ.get("SPEECHUNITS_CACHE"):
        return Path(os.environ["SPEECHUNITS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "speechunits"


def _cpu_signature() -> str:
    """What -march=native depends on: the machine and its CPU flags (a cache shared by
    different nodes must not hand one node another's instructions)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features", "model name")):
                    flags += line
    except OSError:
        pass
    return f"{platform.machine()} {flags}"


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def library_path() -> Path:
    """Where the library for this source, these flags and this CPU lives."""
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _cpu_signature().encode()).hexdigest()[:16]
    return cache_dir() / f"abx_kernels-{key}.so"


def build(force: bool = False) -> Path:
    """Compile the library into the cache (atomic; nothing to do when it exists).
    Raises SpeechUnitsError with the compiler's message when it cannot."""
    target = library_path()
    if target.exists() and not force:
        return target
    cc = _compiler()
    if cc is None:
        raise SpeechUnitsError("no C compiler (cc, gcc or clang) to build the ABX kernels")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as e:
        raise SpeechUnitsError(f"cannot write the ABX kernels' library to {target.parent}: {e}") from None
    try:
        proc = subprocess.run([cc, *FLAGS, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SpeechUnitsError(f"{cc} could not build {SOURCE.name}: {proc.stderr.strip()[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


_D = ctypes.POINTER(ctypes.c_double)
_I = ctypes.POINTER(ctypes.c_int64)
_B = ctypes.POINTER(ctypes.c_uint8)
_i64, _int, _dbl = ctypes.c_int64, ctypes.c_int, ctypes.c_double


def _ptr(array: np.ndarray, dtype, ctype):
    """A pointer to a C-contiguous array of `dtype` (the array must outlive the call)."""
    if array.dtype != dtype or not array.flags.c_contiguous:
        raise SpeechUnitsError(f"ABX kernels need C-contiguous {np.dtype(dtype)} arrays, got {array.dtype}")
    return array.ctypes.data_as(ctype)


class NativeKernels:
    """The C library behind kernels.py's interface (block_dtw, score_cells, threads)."""

    ANGULAR, EUCLIDEAN, KL_SYMMETRIC, DISCRETE = ANGULAR, EUCLIDEAN, KL_SYMMETRIC, DISCRETE
    backend = "c"

    def __init__(self, path: Path):
        lib = ctypes.CDLL(str(path))
        lib.su_block_dtw.restype = ctypes.c_int
        lib.su_block_dtw.argtypes = [_int, _D, _D, _i64, _i64, _D, _B, _int, _dbl, _I, _I, _I, _i64, _I, _I, _I, _I,
                                     _I, _i64, _i64, _D, _int]
        lib.su_score_cells.restype = ctypes.c_int
        lib.su_score_cells.argtypes = [_D, _I, _I, _I, _I, _I, _I, _I, _I, _I, _I, _int, _I, _i64, _i64, _D, _I, _int]
        lib.su_acos_over_pi_array.restype = None
        lib.su_acos_over_pi_array.argtypes = [_D, _D, _i64]
        lib.su_max_threads.restype = ctypes.c_int
        self._lib, self.path = lib, path
        self._max = max(1, int(lib.su_max_threads()))
        self._threads = self._max

    # threads, as numba's get/set_num_threads
    def max_threads(self) -> int:
        return self._max

    def get_num_threads(self) -> int:
        return self._threads

    def set_num_threads(self, n: int) -> None:
        self._threads = max(1, min(int(n), self._max))

    def acos_over_pi_array(self, x: np.ndarray, out: np.ndarray) -> None:
        self._lib.su_acos_over_pi_array(_ptr(x, np.float64, _D), _ptr(out, np.float64, _D), x.size)

    def block_dtw(self, kind, FT, LT, inv, zero, has_zero, const, tok_start, tok_len, tok_rank, grp_lo,
                  blk_g1, blk_g2, blk_off, order, cmax, out) -> None:
        """As kernels.block_dtw."""
        D, F = FT.shape
        LT = LT if kind == KL_SYMMETRIC else np.zeros(1)
        inv = inv if inv.size else np.zeros(1)
        zero = (zero if zero.size else np.zeros(1, dtype=np.bool_)).view(np.uint8)
        rc = self._lib.su_block_dtw(
            int(kind), _ptr(FT, np.float64, _D), _ptr(LT, np.float64, _D), D, F, _ptr(inv, np.float64, _D),
            _ptr(zero, np.uint8, _B), int(bool(has_zero)), float(const), _ptr(tok_start, np.int64, _I),
            _ptr(tok_len, np.int64, _I), _ptr(tok_rank, np.int64, _I), tok_len.size, _ptr(grp_lo, np.int64, _I),
            _ptr(blk_g1, np.int64, _I), _ptr(blk_g2, np.int64, _I), _ptr(blk_off, np.int64, _I),
            _ptr(order, np.int64, _I), order.size, int(cmax), _ptr(out, np.float64, _D), self._threads,
        )
        if rc != 0:
            raise MemoryError("ABX kernels: a thread could not allocate its DTW buffers")

    def score_cells(self, dist, grp_size, ga, gb, gx, xa_off, xa_rs, xa_cs, xb_off, xb_rs, xb_cs, within, order,
                    correct, total) -> None:
        """As kernels.score_cells."""
        max_group = int(grp_size.max()) if grp_size.size else 1
        rc = self._lib.su_score_cells(
            _ptr(dist, np.float64, _D), _ptr(grp_size, np.int64, _I), _ptr(ga, np.int64, _I),
            _ptr(gb, np.int64, _I), _ptr(gx, np.int64, _I), _ptr(xa_off, np.int64, _I),
            _ptr(xa_rs, np.int64, _I), _ptr(xa_cs, np.int64, _I), _ptr(xb_off, np.int64, _I),
            _ptr(xb_rs, np.int64, _I), _ptr(xb_cs, np.int64, _I), int(bool(within)), _ptr(order, np.int64, _I),
            order.size, max_group, _ptr(correct, np.float64, _D), _ptr(total, np.int64, _I), self._threads,
        )
        if rc != 0:
            raise MemoryError("ABX kernels: a thread could not allocate its scoring buffer")


def load(required: bool = False) -> NativeKernels | None:
    """The C kernels (built on first use), or None when they cannot be built or loaded
    (no compiler, no writable cache): the caller falls back to numba. With `required`
    the reason is raised instead. Cached per process."""
    global _loaded
    if isinstance(_loaded, NativeKernels):
        return _loaded
    if _loaded is None and not required:
        return None
    try:
        _loaded = NativeKernels(build())
    except (SpeechUnitsError, OSError) as e:
        _loaded = None
        if required:
            raise SpeechUnitsError(f"the C ABX kernels are unavailable: {e}") from None
    return _loaded
