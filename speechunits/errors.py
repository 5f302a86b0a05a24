"""Exceptions that name what went wrong and where (file, line, utterance)."""

from __future__ import annotations


class SpeechUnitsError(Exception):
    """Base class of every error the toolkit raises on bad input."""


class ConfigError(SpeechUnitsError, ValueError):
    """A config is invalid: a YAML file, a key=value override, a value. Also a ValueError."""


class UnknownNameError(ConfigError, KeyError):
    """An unknown config key or registry name. Also a KeyError (the lookup that failed)."""

    def __str__(self) -> str:  # the message, not KeyError's repr of it
        return str(self.args[0]) if self.args else ""


class AudioError(SpeechUnitsError):
    """An utterance's audio could not be used. Names the utterance and the path."""

    def __init__(self, message: str, utt: str | None = None, path: str | None = None):
        self.utt, self.path, self.reason = utt, path, message
        where = ", ".join(p for p in (f"utterance {utt}" if utt else "", f"{path}" if path else "") if p)
        super().__init__(f"{where}: {message}" if where else message)


class DataFormatError(SpeechUnitsError):
    """A text file (data dir file, item file, CTM, unit file) is malformed.

    Names the file and, when known, the 1-based line number.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path, self.line, self.reason = path, line, message
        where = f"{path}:{line}" if (path and line) else (path or "")
        super().__init__(f"{where}: {message}" if where else message)


class OutputError(SpeechUnitsError):
    """An output could not be written (read-only folder, a path in the way, a full disk). Names the path."""

    def __init__(self, message: str, path: str | None = None):
        self.path, self.reason = path, message
        super().__init__(f"{path}: {message}" if path else message)


def describe_os_error(error: OSError) -> str:
    """`path: reason` of an OSError, for one-line messages."""
    reason = error.strerror or str(error)
    paths = [p for p in (error.filename, error.filename2) if p is not None]
    return f"{' -> '.join(map(str, paths))}: {reason}" if paths else reason
