"""Probe targets at a tap's frame rate: phone labels, per-utterance labels, filterbank frames.

Every tap travels with its frame shift s; frame j covers [j s, (j + 1) s) and is
centred at (j + 0.5) s (docs/design.md section 4). Targets are put on that grid:

- phones: the label of the aligned segment that holds the frame centre
  (speechunits.data.labels.frame_labels); frames in no segment get -1 and are
  left out;
- speaker, gender: one label for every frame of an utterance;
- filterbank: the mean of the log-mel frames whose centres fall in [j s, (j + 1) s)
  ("the fbank frames the tap frame covers"). A 50 Hz tap frame covers two 100 Hz
  frames, a 25 Hz one four, a 100 Hz one exactly one. The mean rather than the
  concatenation keeps the target 80-dimensional at every rate, so R^2 compares
  across taps of different rates (at the cost of the detail inside the frame).
  At the end of an utterance a tap frame averages the covered frames that exist;
  one that covers none (past the end) gets a NaN row and is left out.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from speechunits.data.ctm import LabelledSegment
from speechunits.data.labels import first_frame_centred_at_or_after, frame_labels

__all__ = ["covered_frames", "covered_mean", "phone_targets", "constant_targets", "IGNORE"]

IGNORE = -1  # label of frames without a target


def covered_frames(num_frames: int, frame_shift: float, source_shift: float, num_source: int) -> tuple[np.ndarray, np.ndarray]:
    """For tap frames j < num_frames: the source frames [lo[j], hi[j]) whose centres lie in
    [j s, (j + 1) s), clipped to the num_source frames there are (lo == hi: none)."""
    j = np.arange(int(num_frames) + 1)
    edges = np.array([first_frame_centred_at_or_after(t, source_shift) for t in j * frame_shift], dtype=np.int64)
    edges = np.clip(edges, 0, int(num_source))
    return edges[:-1], edges[1:]


def covered_mean(source: np.ndarray, num_frames: int, frame_shift: float, source_shift: float) -> np.ndarray:
    """(num_frames, D) means of the source frames (T_src, D) each tap frame covers; NaN rows where none."""
    source = np.asarray(source, dtype=np.float64)
    lo, hi = covered_frames(num_frames, frame_shift, source_shift, source.shape[0])
    cums = np.concatenate([np.zeros((1, source.shape[1])), np.cumsum(source, axis=0)])
    count = (hi - lo)[:, None].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (cums[hi] - cums[lo]) / count
    out[count[:, 0] == 0] = np.nan
    return out


def phone_targets(
    segments: Sequence[LabelledSegment], num_frames: int, frame_shift: float, phone_to_id: Mapping[str, int]
) -> np.ndarray:
    """(num_frames,) phone ids at the tap's rate (frame-centre convention); IGNORE outside segments."""
    return frame_labels(segments, num_frames, frame_shift, phone_to_id, fill=IGNORE)


def constant_targets(label: int, num_frames: int) -> np.ndarray:
    """(num_frames,) copies of one label (speaker or gender of the utterance)."""
    return np.full(int(num_frames), int(label), dtype=np.int64)
