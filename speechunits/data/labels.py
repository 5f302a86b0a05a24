"""Alignments <-> per-frame labels, at any frame shift.

The shared time convention: at frame shift s, frame i covers [i*s, (i+1)*s) and is
centred at (i + 0.5)*s. A frame takes the label of the segment [start, end) that
contains its centre; frames whose centre lies in no segment take `fill`. Segments
are half-open, so a boundary that falls exactly on a frame centre gives that frame
to the later segment. Times are compared in frame units with a tolerance of 1e-6
frame, so that 0.015 s written in a file and 1.5 * 0.01 computed in floating
point count as the same instant.
"""

from __future__ import annotations

import math
from typing import Hashable, Iterable, Mapping, Sequence

import numpy as np

from speechunits.data.ctm import LabelledSegment
from speechunits.errors import ConfigError, DataFormatError

_EPS = 1e-6  # in frames


def first_frame_centred_at_or_after(t: float, frame_shift: float) -> int:
    """The smallest i with (i + 0.5) * frame_shift >= t (may be negative or past the end)."""
    return math.ceil(t / frame_shift - 0.5 - _EPS)


def frame_labels(
    segments: Iterable[LabelledSegment],
    num_frames: int,
    frame_shift: float,
    phone_to_id: Mapping[str, int],
    fill: int | str = -1,
) -> np.ndarray:
    """Label ids of `num_frames` frames: segments (start, end, phone) -> (num_frames,) int64.

    fill: the id of frames in no segment, or a phone name looked up in `phone_to_id`
    (e.g. "sil"). If segments overlap (they should not), the later-starting one wins.
    Segments past the last frame are clipped.
    """
    if frame_shift <= 0:
        raise ConfigError(f"frame shift must be positive, got {frame_shift}")
    if isinstance(fill, str):
        if fill not in phone_to_id:
            raise DataFormatError(f"fill label {fill!r} is not in the phone inventory")
        fill = phone_to_id[fill]
    out = np.full(int(num_frames), fill, dtype=np.int64)
    for start, end, phone in sorted(segments, key=lambda s: (s[0], s[1])):
        if phone not in phone_to_id:
            raise DataFormatError(f"phone {phone!r} is not in the phone inventory")
        lo = max(0, first_frame_centred_at_or_after(start, frame_shift))
        hi = min(int(num_frames), first_frame_centred_at_or_after(end, frame_shift))
        if hi > lo:
            out[lo:hi] = phone_to_id[phone]
    return out


def alignment_frame_labels(
    alignments: Mapping[str, Sequence[LabelledSegment]],
    num_frames: Mapping[str, int],
    frame_shift: float,
    phone_to_id: Mapping[str, int],
    fill: int | str = -1,
) -> dict[str, np.ndarray]:
    """frame_labels for every utterance of `num_frames`; an utterance with no alignment is an error."""
    missing = sorted(set(num_frames) - set(alignments))
    if missing:
        raise DataFormatError(f"no alignment for {len(missing)} utterances: {', '.join(missing[:5])}")
    return {u: frame_labels(alignments[u], n, frame_shift, phone_to_id, fill) for u, n in sorted(num_frames.items())}


def phone_map(alignments: Mapping[str, Sequence[LabelledSegment]]) -> dict[str, int]:
    """Every phone of the alignments -> an id, in C order of the phone names."""
    phones = sorted({p for segs in alignments.values() for _, _, p in segs})
    return {p: i for i, p in enumerate(phones)}


def labels_to_segments(
    labels: Sequence[Hashable] | np.ndarray, frame_shift: float, skip: Hashable | None = None
) -> list[tuple[float, float, Hashable]]:
    """Runs of equal labels -> (start, end, label), start = first frame * s, end = (last + 1) * s.

    Runs of `skip` (e.g. the fill label -1) are left out. Labels come back as plain
    Python values (int, str), not numpy scalars.
    """
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1:
            raise ConfigError(f"labels must be one-dimensional, got shape {labels.shape}")
        values = labels.tolist()
    else:
        values = [v.item() if isinstance(v, np.generic) else v for v in labels]
    out = []
    i = 0
    while i < len(values):
        j = i + 1
        while j < len(values) and values[j] == values[i]:
            j += 1
        if skip is None or values[i] != skip:
            out.append((i * frame_shift, j * frame_shift, values[i]))
        i = j
    return out
