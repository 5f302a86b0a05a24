"""Praat TextGrid files (text formats): read the tiers, turn a phone tier into an alignment.

Why our own reader: aligners (Montreal Forced Aligner, WebMAUS, Praat itself)
hand out TextGrids, and a reader is a page of code, not a dependency.

Praat writes two text formats with the same content in the same order:

long ("normal")::

    File type = "ooTextFile"
    Object class = "TextGrid"
    xmin = 0
    xmax = 2.3
    tiers? <exists>
    size = 1
    item []:
        item [1]:
            class = "IntervalTier"
            name = "phones"
            xmin = 0
            xmax = 2.3
            intervals: size = 2
            intervals [1]:
                xmin = 0
                xmax = 0.5
                text = ""
            ...

short: the same values, one per line, without the labels::

    File type = "ooTextFile"
    Object class = "TextGrid"
    0
    2.3
    <exists>
    1
    "IntervalTier"
    "phones"
    0
    2.3
    2
    0
    0.5
    ""

So both are read as one stream of values, as Praat reads them: quoted strings
(``""`` inside is a literal quote), numbers, and ``<flags>``; labels (``xmin =``,
``intervals: size =``), bracketed indices (``[1]``) and ``!`` comments are
skipped. Point tiers (``"TextTier"``) are read too. Files in UTF-8 or UTF-16
(with a byte-order mark, as Praat writes non-ASCII text) are accepted; Praat's
binary format is not.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Iterator

from speechunits.data.ctm import LabelledSegment
from speechunits.errors import DataFormatError

_TOKEN = re.compile(r'"(?:[^"]|"")*"|<[^>\s]*>|\[[^\]\n]*\]|![^\n]*|[^\s"]+')
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
SILENCE_LABELS = frozenset({"", "sil", "sp", "spn", "<sil>", "<p:>", "#"})


@dataclasses.dataclass(frozen=True)
class Interval:
    start: float
    end: float
    text: str


@dataclasses.dataclass(frozen=True)
class Point:
    time: float
    text: str


@dataclasses.dataclass
class Tier:
    """An interval tier (``intervals``) or a point tier (``points``)."""

    name: str
    kind: str  # "interval" or "point"
    xmin: float
    xmax: float
    intervals: list[Interval] = dataclasses.field(default_factory=list)
    points: list[Point] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TextGrid:
    xmin: float
    xmax: float
    tiers: list[Tier]
    path: str | None = None

    def tier(self, name: str) -> Tier:
        """The tier called ``name`` (case-insensitive); a DataFormatError naming the tiers there are."""
        for t in self.tiers:
            if t.name.lower() == name.lower():
                return t
        have = ", ".join(repr(t.name) for t in self.tiers) or "none"
        raise DataFormatError(f"no tier named {name!r} (tiers: {have})", self.path)


class _Values:
    """The value stream of a TextGrid file, with the line of each value for messages."""

    def __init__(self, text: str, path: str | None):
        self.path = path
        self._items: list[tuple[str, str, int]] = []  # (kind, value, line)
        for m in _TOKEN.finditer(text):
            tok = m.group()
            line = text.count("\n", 0, m.start()) + 1
            if tok.startswith('"'):
                self._items.append(("str", tok[1:-1].replace('""', '"'), line))
            elif tok.startswith("<"):
                self._items.append(("flag", tok, line))
            elif _NUMBER.fullmatch(tok):
                self._items.append(("num", tok, line))
            # labels, [indices] and ! comments are skipped
        self._pos = 0

    def _next(self, kind: str, what: str) -> tuple[str, int]:
        if self._pos >= len(self._items):
            last = self._items[-1][2] if self._items else None
            raise DataFormatError(f"file ends where {what} was expected", self.path, last)
        k, value, line = self._items[self._pos]
        if k != kind:
            raise DataFormatError(f"expected {what}, found {value!r}", self.path, line)
        self._pos += 1
        return value, line

    def string(self, what: str) -> str:
        return self._next("str", what)[0]

    def number(self, what: str) -> float:
        value, line = self._next("num", what)
        x = float(value)
        if not math.isfinite(x):
            raise DataFormatError(f"{what} is not finite: {value}", self.path, line)
        return x

    def count(self, what: str) -> int:
        value, line = self._next("num", what)
        if not value.isdigit():
            raise DataFormatError(f"{what} must be a non-negative integer, found {value}", self.path, line)
        return int(value)

    def flag(self) -> str | None:
        if self._pos < len(self._items) and self._items[self._pos][0] == "flag":
            self._pos += 1
            return self._items[self._pos - 1][1]
        return None

    @property
    def line(self) -> int | None:
        return self._items[min(self._pos, len(self._items) - 1)][2] if self._items else None


def _decode(data: bytes, path: str | None) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"ooBinaryFile"):
        raise DataFormatError("Praat binary TextGrid files are not supported; save as a text file", path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataFormatError("not UTF-8 or UTF-16 text", path) from None


def parse_textgrid(text: str, path: str | None = None) -> TextGrid:
    """Parse the long or the short text format (see the module doc)."""
    v = _Values(text, path)
    if v.string("file type") != "ooTextFile":
        raise DataFormatError('not a Praat text file (File type = "ooTextFile" missing)', path, 1)
    if v.string("object class") != "TextGrid":
        raise DataFormatError('not a TextGrid (Object class = "TextGrid" missing)', path, 2)
    xmin, xmax = v.number("xmin"), v.number("xmax")
    flag = v.flag()
    if flag is not None and flag != "<exists>":
        return TextGrid(xmin, xmax, [], path)
    tiers = []
    for _ in range(v.count("number of tiers")):
        cls, name = v.string("tier class"), v.string("tier name")
        txmin, txmax = v.number("tier xmin"), v.number("tier xmax")
        n = v.count("number of intervals")
        if cls == "IntervalTier":
            tier = Tier(name, "interval", txmin, txmax)
            for _ in range(n):
                line = v.line
                start, end, label = v.number("interval xmin"), v.number("interval xmax"), v.string("interval text")
                if end < start:
                    raise DataFormatError(f"tier {name!r}: interval ends ({end}) before it starts ({start})", path, line)
                tier.intervals.append(Interval(start, end, label))
        elif cls == "TextTier":
            tier = Tier(name, "point", txmin, txmax)
            for _ in range(n):
                tier.points.append(Point(v.number("point time"), v.string("point mark")))
        else:
            raise DataFormatError(f"unknown tier class {cls!r}", path, v.line)
        tiers.append(tier)
    return TextGrid(xmin, xmax, tiers, path)


def read_textgrid(path: str | os.PathLike) -> TextGrid:
    """Read a TextGrid file; DataFormatError (with the file and line) if it is malformed."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataFormatError(f"cannot read: {e.strerror}", where) from None
    return parse_textgrid(_decode(data, where), where)


def tier_alignment(
    tier: Tier, silence: str = "sil", silence_labels: frozenset[str] = SILENCE_LABELS, strip_stress: bool = False
) -> list[LabelledSegment]:
    """An interval tier as (start, end, phone) segments: empty or silence labels become ``silence``
    (adjacent ones merged), zero-length intervals are dropped, and with
    ``strip_stress`` a trailing stress digit goes (MFA's ``AH0`` -> ``AH``)."""
    if tier.kind != "interval":
        raise DataFormatError(f"tier {tier.name!r} is a point tier, not an interval tier")
    out: list[LabelledSegment] = []
    for iv in tier.intervals:
        if iv.end <= iv.start:
            continue
        label = iv.text.strip()
        if label in silence_labels or label.lower() in silence_labels:
            label = silence
        elif strip_stress:
            label = re.sub(r"[012]$", "", label)
        if any(ch.isspace() for ch in label):
            raise DataFormatError(f"tier {tier.name!r}: label {label!r} at {iv.start} s contains whitespace")
        if out and label == silence and out[-1].label == silence and abs(out[-1].end - iv.start) < 1e-9:
            out[-1] = out[-1]._replace(end=iv.end)
        else:
            out.append(LabelledSegment(iv.start, iv.end, label))
    return out


def iter_textgrids(folder: str | os.PathLike) -> Iterator[Path]:
    """TextGrid files under a folder (any depth; .TextGrid or .textgrid), sorted."""
    return iter(sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() == ".textgrid"))


__all__ = ["Interval", "Point", "Tier", "TextGrid", "parse_textgrid", "read_textgrid", "tier_alignment", "iter_textgrids"]
