"""Atomic file output: write to a temporary name in the same folder, then rename.

An interrupted job therefore never leaves a file that looks finished, and a rerun
can trust that every file it finds is complete.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside `path`; on clean exit rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_umask() -> int:
    """The process umask, read once at import: os.umask can only be read by setting
    it, which is not safe while other threads create files."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def write_lines(path: str | os.PathLike, lines) -> None:
    """Write one line per item, newline-terminated."""
    with atomic_open(path, "w") as f:
        for line in lines:
            f.write(line)
            f.write("\n")


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())


def save_torch(path: str | os.PathLike, obj) -> None:
    """torch.save through a temporary file (checkpoints, tensors)."""
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
