"""Atomic file output: write to a temporary name in the same folder, then rename.

An interrupted job therefore never leaves a file that looks finished, and a rerun
can trust that every file it finds is complete.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from speechunits.errors import OutputError


# errno values that mean "this output cannot be written", whatever the writer was doing
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def _output_error(path: Path, e: OSError) -> OutputError:
    reason = e.strerror or str(e)
    if isinstance(e, (FileExistsError, NotADirectoryError)) or e.errno == errno.ENOTDIR:
        reason = f"{reason} (a file stands where a folder is needed: {e.filename})" if e.filename else reason
    elif isinstance(e, IsADirectoryError):
        reason = "is a folder, not a file"
    return OutputError(f"cannot write: {reason}", str(path))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside `path`; on clean exit rename it onto `path`.

    An output that cannot be written (a read-only folder, a file where a folder
    should be, a folder where the file should be, a full disk) raises OutputError
    naming `path`; the temporary file is removed.
    """
    path = Path(path)
    binary = "b" in mode
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _output_error(path, e) from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and (e.errno in _WRITE_ERRNOS or isinstance(e, IsADirectoryError)):
            raise _output_error(path, e) from None
        raise


def check_writable(path: str | os.PathLike, folder: bool = False) -> None:
    """Fail early (OutputError naming `path`) when an output cannot be written there:
    its folder cannot be created or written, or a file/folder of the wrong kind is in
    the way. Creates the folder(s), and probes the folder with a temporary file.
    A full disk can only show when writing."""
    path = Path(path)
    target = path if folder else path.parent
    try:
        if folder and path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path))
        if not folder and path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise _output_error(path, e) from None


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


def keep_settings(path: str | os.PathLike, settings: dict, what: str) -> None:
    """Record `settings` (JSON) at `path`, or check that the ones recorded there are the same.

    A job whose outputs depend on its settings calls this before writing into a folder
    that may hold an earlier run's outputs: a rerun with the same settings resumes, one
    with other settings raises SpeechUnitsError naming the keys that differ (`what`
    says what the folder holds, e.g. "units"), so outputs are never mixed."""
    from speechunits.errors import SpeechUnitsError

    path = Path(path)
    settings = json.loads(json.dumps(settings))  # compare as stored (tuples become lists)
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = None
        if old != settings:
            diff = [k for k in sorted(set(settings) | set(old or {})) if (old or {}).get(k) != settings.get(k)]
            reason = "the record is unreadable" if not isinstance(old, dict) else f"{', '.join(diff)} differ"
            raise SpeechUnitsError(
                f"{path.parent} holds {what} made with other settings ({reason}, see {path}): "
                "use another output folder or delete this one"
            )
    write_json(path, settings)


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
