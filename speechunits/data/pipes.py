"""The one gate for shell commands in Kaldi tables.

A Kaldi table entry may be a pipe: `cmd args |` (read the command's output) or
`| cmd` (Kaldi's output pipes, which kaldiio also opens for reading). Reading such
an entry runs an arbitrary shell command, so every reader of a Kaldi table (wav.scp,
feats.scp, an `ark:`/`scp:` specifier) asks this module first, and a pipe is refused
unless the caller opted in:

    check_entry(value, allow_pipes=False, what="feats.scp entry")   # raises PipeRefused

The opt-in is either the reader's own `allow_pipes=True`, or `allowing_pipes()`
around the call (what the CLI's `--allow-pipes` does, so that readers deep inside a
command need no extra argument):

    with allowing_pipes():
        source = open_feature_source("feats/feats.scp")
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from speechunits.errors import SpeechUnitsError

HINT = "use --allow-pipes (Python: allow_pipes=True) only if you trust this file"

_allowed_here = False  # set by allowing_pipes(); a module flag, so worker threads and forked processes see it


class PipeRefused(SpeechUnitsError):
    """A table entry is a shell command and running commands was not allowed."""


def is_pipe(value: str) -> bool:
    """True when a table value runs a shell command: `cmd |` or `| cmd`."""
    text = value.strip()
    return bool(text) and (text.endswith("|") or text.startswith("|"))


def pipes_allowed(allow_pipes: bool = False) -> bool:
    """Whether a reader may run pipes: its own flag, or an enclosing allowing_pipes()."""
    return bool(allow_pipes) or _allowed_here


@contextlib.contextmanager
def allowing_pipes(allow: bool = True) -> Iterator[None]:
    """Within this block, every table reader may run pipe entries (when `allow`)."""
    global _allowed_here
    previous = _allowed_here
    _allowed_here = previous or bool(allow)
    try:
        yield
    finally:
        _allowed_here = previous


def refusal(what: str = "table entry") -> str:
    """The message of a refused pipe entry."""
    return f"{what} is a shell command ('cmd |'); running commands from data files is off: {HINT}"


def check_entry(value: str, allow_pipes: bool = False, what: str = "table entry") -> bool:
    """Whether `value` is a pipe that may run (True) or a plain path (False); a refused
    pipe raises PipeRefused."""
    if not is_pipe(value):
        return False
    if not pipes_allowed(allow_pipes):
        raise PipeRefused(f"{refusal(what)}: {value.strip()}")
    return True
