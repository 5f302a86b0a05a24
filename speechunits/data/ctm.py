"""Phone alignments as CTM files: `utt channel start dur phone [confidence]`.

In memory an alignment is

    dict[str, list[LabelledSegment]]     # utt -> [(start, end, label)], label a phone (or word)

with each list sorted by start, times in seconds from the start of the utterance.
LabelledSegment is a named tuple, so plain (start, end, label) tuples do as well.
Consumers (ABX item files, frame labels for probes, unit metrics) take this type.

A CTM need not be sorted on disk; write_ctm writes it sorted by utterance (C order)
then start time. The channel and confidence columns are read and dropped.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

from speechunits.errors import DataFormatError
from speechunits.fileio import write_lines

OVERLAP_TOLERANCE = 1e-4  # seconds; absorbs the rounding of start + dur on disk
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WHITESPACE = re.compile(r"[ \t]+")


class LabelledSegment(NamedTuple):
    """A labelled stretch of one utterance, ``[start, end)`` in seconds from its start
    (not a Kaldi `segments` entry: that is speechunits.data.tables.Segment)."""

    start: float
    end: float
    label: str


def _seconds(x: float) -> str:
    """Microsecond resolution, trailing zeros dropped: 0.25 -> "0.25", 1.0 -> "1"."""
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def read_ctm(path: str | os.PathLike, check_overlap: bool = True) -> dict[str, list[LabelledSegment]]:
    """Per utterance, its (start, end, phone) segments sorted by start.

    Raises DataFormatError naming the file and line for a malformed line (field
    count, a time that is not a number, start < 0, dur <= 0) and, with
    check_overlap, for two segments of one utterance that overlap by more than
    OVERLAP_TOLERANCE.
    """
    path = Path(path)
    where = str(path)
    found: dict[str, list[tuple[float, float, str, int]]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if "\r" in line:
                raise DataFormatError("carriage return in line (Windows line endings?)", where, n)
            text = line.strip(" \t")
            if not text:
                raise DataFormatError("empty line", where, n)
            if text.startswith(";;"):  # a comment in NIST CTM
                continue
            fields = _WHITESPACE.split(text)
            if len(fields) not in (5, 6):
                message = f"expected 5 or 6 fields (utt channel start dur phone [conf]), found {len(fields)}"
                raise DataFormatError(message, where, n)
            utt, _channel, start_text, dur_text, phone = fields[:5]
            if not (_NUMBER.fullmatch(start_text) and _NUMBER.fullmatch(dur_text)):
                message = f"start and duration must be numbers, found {start_text!r} {dur_text!r}"
                raise DataFormatError(message, where, n)
            start, dur = float(start_text), float(dur_text)
            if not (math.isfinite(start) and math.isfinite(dur)) or start < 0 or dur <= 0:
                raise DataFormatError(f"need start >= 0 and duration > 0, found {start_text} {dur_text}", where, n)
            found.setdefault(utt, []).append((start, start + dur, phone, n))
    out: dict[str, list[LabelledSegment]] = {}
    for utt in sorted(found):
        segs = sorted(found[utt], key=lambda s: (s[0], s[1]))
        if check_overlap:
            for a, b in zip(segs, segs[1:]):
                if b[0] < a[1] - OVERLAP_TOLERANCE:
                    raise DataFormatError(
                        f"segments of {utt!r} overlap: {a[2]} [{a[0]:g}, {a[1]:g}) on line {a[3]} "
                        f"and {b[2]} [{b[0]:g}, {b[1]:g})",
                        where,
                        b[3],
                    )
        out[utt] = [LabelledSegment(s, e, p) for s, e, p, _ in segs]
    return out


def check_alignment(utt: str, segments: Sequence[LabelledSegment]) -> None:
    """Raise DataFormatError unless every segment has 0 <= start < end, none overlap,
    and phones are single whitespace-free tokens."""
    prev = None
    for start, end, phone in sorted(segments, key=lambda s: (s[0], s[1])):
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end - start < 1e-6:
            raise DataFormatError(
                f"alignment of {utt!r}: need 0 <= start < end (by 1 us at least), found {start} {end} {phone}"
            )
        if not phone or _WHITESPACE.search(phone) or "\n" in phone:
            raise DataFormatError(f"alignment of {utt!r}: phone {phone!r} is empty or contains whitespace")
        if prev is not None and start < prev[1] - OVERLAP_TOLERANCE:
            raise DataFormatError(
                f"alignment of {utt!r}: {prev[2]} [{prev[0]}, {prev[1]}) overlaps {phone} [{start}, {end})"
            )
        prev = (start, end, phone)


def write_ctm(
    path: str | os.PathLike, alignments: Mapping[str, Sequence[LabelledSegment]], channel: str = "1"
) -> None:
    """Write `utt channel start dur phone` lines, sorted by utterance then start, atomically.

    Times keep microsecond resolution. Alignments are checked first (as read_ctm
    would check them), so a file written is a file that reads back.
    """
    lines = []
    for utt in sorted(alignments):
        if not utt or _WHITESPACE.search(utt):
            raise DataFormatError(f"utterance id {utt!r} is empty or contains whitespace")
        check_alignment(utt, alignments[utt])
        for start, end, phone in sorted(alignments[utt], key=lambda s: (s[0], s[1])):
            lines.append(f"{utt} {channel} {_seconds(start)} {_seconds(end - start)} {phone}")
    write_lines(path, lines)
