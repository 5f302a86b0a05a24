"""ZeroSpeech ABX item files: reading (validated), writing (atomic, sorted), making.

An item file is a header line and one token per line, times in seconds:

    #file onset offset #phone prev-phone next-phone speaker
    6295-244435-0009 0.2925 0.4725 IH L NG 6295

`make_items` builds the rows from phone alignments (utt -> [LabelledSegment], see
speechunits.data.ctm) and utt2spk:

- level "phone":    onset/offset span the central phone (ZeroSpeech 2021 phoneme items);
- level "triphone": onset/offset span prev + central + next phone (ZeroSpeech 2021
  triphone items; the reference generator in abx-synthetic does the same).

Items follow ZeroSpeech practice (2017 and 2021 item files): the central phone and
both context phones are real phones of the same utterance. A phone is skipped when it
is silence, when it is the first or last phone of its utterance, or when a neighbour
is silence or separated from it by a gap (a gap is unaligned time, i.e. silence).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from speechunits.data.ctm import LabelledSegment
from speechunits.errors import ConfigError, DataFormatError
from speechunits.fileio import atomic_open

ITEM_HEADER = "#file onset offset #phone prev-phone next-phone speaker"
_HEADER_FIELDS = ITEM_HEADER.split()
DEFAULT_SILENCES = frozenset({"", "sil", "SIL", "sp", "SP", "spn", "SPN", "<sil>", "<eps>", "nsn", "NSN", "h#", "pau"})
GAP_TOLERANCE = 1e-3  # seconds; a larger hole between two aligned phones counts as silence


class ItemRow(NamedTuple):
    """One token of an item file."""

    file: str
    onset: float
    offset: float
    phone: str
    prev: str
    next: str
    speaker: str


@dataclass(frozen=True)
class ItemSet:
    """The columns of an item file. `lines` are 1-based line numbers in `path` (for errors)."""

    file: list[str]
    onset: np.ndarray  # (N,) float64 seconds
    offset: np.ndarray  # (N,) float64 seconds
    phone: list[str]
    prev: list[str]
    next: list[str]
    speaker: list[str]
    lines: np.ndarray = field(default=None)  # (N,) int64
    path: str | None = None

    def __post_init__(self):
        n = len(self.file)
        if self.lines is None:
            object.__setattr__(self, "lines", np.arange(2, n + 2, dtype=np.int64))
        for name in ("onset", "offset", "phone", "prev", "next", "speaker", "lines"):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"ItemSet column {name} has {len(getattr(self, name))} entries, expected {n}")

    def __len__(self) -> int:
        return len(self.file)

    def __getitem__(self, i: int) -> ItemRow:
        return ItemRow(
            self.file[i], float(self.onset[i]), float(self.offset[i]), self.phone[i], self.prev[i], self.next[i], self.speaker[i]
        )

    def __iter__(self) -> Iterator[ItemRow]:
        return (self[i] for i in range(len(self)))

    def where(self, i: int) -> str:
        """`path:line` of item i, for messages."""
        return f"{self.path or '<items>'}:{int(self.lines[i])}"

    def take(self, indices: Sequence[int]) -> "ItemSet":
        """The items at `indices`, in that order (line numbers kept)."""
        idx = np.asarray(indices, dtype=np.int64)
        pick = lambda col: [col[i] for i in idx]  # noqa: E731
        return ItemSet(
            pick(self.file), self.onset[idx], self.offset[idx], pick(self.phone), pick(self.prev), pick(self.next),
            pick(self.speaker), self.lines[idx], self.path,
        )

    @classmethod
    def from_rows(cls, rows: Iterable[ItemRow | tuple], path: str | None = None) -> "ItemSet":
        rows = [ItemRow(*r) for r in rows]
        return cls(
            [r.file for r in rows],
            np.array([r.onset for r in rows], dtype=np.float64),
            np.array([r.offset for r in rows], dtype=np.float64),
            [r.phone for r in rows], [r.prev for r in rows], [r.next for r in rows], [r.speaker for r in rows],
            path=path,
        )


MAX_LISTED = 20  # problems listed one by one in an error or summary; the rest are counted


class ItemProblems(DataFormatError):
    """Every bad line of an item file (or every item that cannot be scored).

    `problems` is [(line, message)] in line order; `line` is the first one's, so a
    single problem reads like any DataFormatError (`path:line: message`).
    """

    def __init__(self, path: str | None, problems: list[tuple[int, str]]):
        self.problems = sorted(problems)
        line, message = self.problems[0]
        super().__init__(message, path, line)
        if len(self.problems) > 1:
            Exception.__init__(self, list_problems(path, self.problems, "bad item line(s)"))


def list_problems(path: str | None, problems: list[tuple[int, str]], what: str, limit: int = MAX_LISTED) -> str:
    """`path: N <what>:` then one `path:line: message` line per problem (the first `limit`), then a count."""
    where = path or "<items>"
    lines = [f"{where}:{line}: {message}" for line, message in problems[:limit]]
    more = [f"... and {len(problems) - limit} more"] if len(problems) > limit else []
    return f"{where}: {len(problems)} {what}:\n  " + "\n  ".join(lines + more)


def _time(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what} {text!r} is not finite")
    if value < 0:
        raise ConfigError(f"{what} {text} is negative")
    return value


def read_items_lenient(path: str | os.PathLike) -> tuple[ItemSet, list[tuple[int, str]]]:
    """The good lines of an item file, and every bad one as (line, message).

    A missing or wrong header is still an error (DataFormatError, line 1): without
    it the file is not an item file. Bad lines: not exactly 7 fields, a time that is
    not a finite non-negative number, offset <= onset. Blank lines are ignored.
    """
    where = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise DataFormatError(f"not UTF-8 text: {e}", where) from None
    lines = text.split("\n")
    if not lines or not lines[0].strip():
        raise DataFormatError(f"missing header line {ITEM_HEADER!r}", where, 1)
    if lines[0].split() != _HEADER_FIELDS:
        raise DataFormatError(f"expected header {ITEM_HEADER!r}, found {lines[0].strip()!r}", where, 1)
    cols: list[list] = [[] for _ in range(7)]
    numbers: list[int] = []
    bad: list[tuple[int, str]] = []
    for n, line in enumerate(lines[1:], 2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 7:
            bad.append((n, f"expected 7 fields ({ITEM_HEADER}), found {len(fields)}"))
            continue
        try:
            onset = _time(fields[1], "onset")
            offset = _time(fields[2], "offset")
        except ValueError as e:
            bad.append((n, str(e)))
            continue
        if offset <= onset:
            bad.append((n, f"offset {fields[2]} is not after onset {fields[1]}"))
            continue
        for c, value in zip(cols, (fields[0], onset, offset, *fields[3:])):
            c.append(value)
        numbers.append(n)
    items = ItemSet(
        cols[0], np.array(cols[1], dtype=np.float64), np.array(cols[2], dtype=np.float64), cols[3], cols[4], cols[5],
        cols[6], np.array(numbers, dtype=np.int64), where,
    )
    return items, bad


def read_items(path: str | os.PathLike) -> ItemSet:
    """Read and validate an item file.

    Raises DataFormatError (file and 1-based line) on a missing or wrong header, and
    ItemProblems (a DataFormatError) naming every bad line (see read_items_lenient)
    otherwise. An empty item list is allowed here (ABX itself refuses it).
    """
    items, bad = read_items_lenient(path)
    if bad:
        raise ItemProblems(str(path), bad)
    return items


def _seconds(x: float) -> str:
    """Four decimals as in ZeroSpeech files (0.2925), more only when needed (µs resolution)."""
    text = f"{x:.4f}"
    if abs(float(text) - x) > 5e-7:
        text = f"{x:.6f}".rstrip("0")
    return text


def sort_key(row: ItemRow) -> tuple:
    """File (C order), then onset, offset and labels: the order item files are written in."""
    return (row.file, row.onset, row.offset, row.phone, row.prev, row.next, row.speaker)


def write_items(path: str | os.PathLike, rows: Iterable[ItemRow | tuple] | ItemSet) -> None:
    """Write an item file atomically, sorted by file then onset; rows are validated first."""
    rows = sorted((ItemRow(*r) for r in rows), key=sort_key)
    for k, r in enumerate(rows):
        for name in ("file", "phone", "prev", "next", "speaker"):
            value = getattr(r, name)
            if not value or any(ch.isspace() for ch in value):
                raise DataFormatError(f"item {k} ({r.file}): {name} {value!r} is empty or contains whitespace", str(path))
        if not (math.isfinite(r.onset) and math.isfinite(r.offset) and 0 <= r.onset < r.offset):
            raise DataFormatError(f"item {k} ({r.file}): bad times onset={r.onset} offset={r.offset}", str(path))
    with atomic_open(path, "w") as f:
        f.write(ITEM_HEADER + "\n")
        for r in rows:
            f.write(f"{r.file} {_seconds(r.onset)} {_seconds(r.offset)} {r.phone} {r.prev} {r.next} {r.speaker}\n")


def make_items(
    alignments: Mapping[str, Sequence[LabelledSegment]],
    utt2spk: Mapping[str, str],
    level: str = "phone",
    silences: Iterable[str] = DEFAULT_SILENCES,
) -> list[ItemRow]:
    """Item rows from phone alignments, sorted by file then onset.

    alignments: utt -> [(start, end, phone)] sorted by start (seconds).
    level: "phone" (span of the central phone) or "triphone" (prev + central + next).
    A phone becomes an item only when it and both neighbours are non-silence phones of
    the same utterance with no gap (> GAP_TOLERANCE) between them; see the module doc.
    """
    if level not in ("phone", "triphone"):
        raise ConfigError(f"level must be 'phone' or 'triphone', not {level!r}")
    silences = frozenset(silences)
    rows: list[ItemRow] = []
    for utt in sorted(alignments):
        if utt not in utt2spk:
            raise DataFormatError(f"utterance {utt} has an alignment but no speaker in utt2spk")
        speaker = utt2spk[utt]
        segs = list(alignments[utt])
        for k in range(1, len(segs) - 1):
            (ps, pe, prev), (cs, ce, cur), (ns, ne, nxt) = segs[k - 1], segs[k], segs[k + 1]
            if cur in silences or prev in silences or nxt in silences:
                continue
            if cs - pe > GAP_TOLERANCE or ns - ce > GAP_TOLERANCE:
                continue
            if level == "phone":
                onset, offset = cs, ce
            else:
                onset, offset = ps, ne
            if not offset > onset:
                raise DataFormatError(f"utterance {utt}: phone {cur} at {cs} s has no duration")
            rows.append(ItemRow(utt, float(onset), float(offset), cur, prev, nxt, speaker))
    rows.sort(key=sort_key)
    return rows


__all__ = [
    "ITEM_HEADER", "DEFAULT_SILENCES", "ItemProblems", "ItemRow", "ItemSet", "list_problems", "read_items",
    "read_items_lenient", "write_items", "make_items", "sort_key",
]
