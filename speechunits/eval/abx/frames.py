"""From items to frames: which frames an item selects, and loading them (validated).

Frame i of a feature array at shift s is centred at (i + 0.5) * s. An item takes the
frames whose centres lie in [onset, offset] (both ends included; ABXpy and fastabx):

    start = ceil(onset / s - 1/2),   end = floor(offset / s - 1/2) + 1   (exclusive)

libri-light and zrc_abx2 slice features[start:end - 1], dropping the last frame;
`libri_light=True` reproduces that. Times are compared with a tolerance of 1e-6 frame,
so a decimal time lying exactly on a frame centre (0.035 s at 10 ms) is included as
with exact decimal arithmetic (fastabx reads times as Decimal), not lost to float noise.

Items past the end: features are often a frame short of the audio (convolutions
without padding), so an item may end up to `end_tolerance_frames` frames after the
last frame; the missing frames are simply not there. An item reaching further is an
error: the item file and the features do not belong together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from speechunits.data.items import ItemProblems, ItemSet
from speechunits.errors import SpeechUnitsError
from speechunits.eval.abx.options import AbxConfig, SkippedItem

log = logging.getLogger(__name__)

TIME_TOLERANCE = 1e-6  # in frames


def frame_ranges(onset: np.ndarray, offset: np.ndarray, frame_shift: float, libri_light: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Frame ranges [start, end) of items (before clipping to the feature length)."""
    onset = np.asarray(onset, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    start = np.ceil(onset / frame_shift - 0.5 - TIME_TOLERANCE).astype(np.int64)
    end = np.floor(offset / frame_shift - 0.5 + TIME_TOLERANCE).astype(np.int64) + 1
    if libri_light:
        end -= 1
    return np.maximum(start, 0), end


@dataclass
class Tokens:
    """The items that can be scored, with their frames.

    item: index of each token in the ItemSet; start/end: frame range [start, end) in
    its utterance's array; features: utt -> (T, D) float array, or (T,) int64 unit ids
    when `discrete`; dim: D (1 for units).
    """

    item: np.ndarray
    start: np.ndarray
    end: np.ndarray
    features: dict[str, np.ndarray]
    discrete: bool
    dim: int
    skipped: list[SkippedItem]


def _describe(source: Any, utt: str) -> str:
    """'utterance U (path)' when the source can say where the array lives."""
    path = None
    finder = getattr(source, "array_path", None)
    if callable(finder):
        try:
            path = finder(utt)
        except Exception:  # noqa: BLE001 - only for the message
            path = None
    return f"utterance {utt} ({path})" if path else f"utterance {utt}"


def _available(source: Any) -> set[str] | None:
    utts = getattr(source, "utts", None)
    if callable(utts):
        return set(utts())
    if isinstance(source, Mapping):
        return set(source.keys())
    return None


def _load(source: Any, utt: str) -> Any:
    load = getattr(source, "load", None)
    return load(utt) if callable(load) else source[utt]


def check_array(array: Any, what: str) -> tuple[np.ndarray, bool]:
    """Validate one utterance's features; returns (array, discrete).

    Float arrays must be (T, D), finite. Integer arrays are unit ids, (T,) or (T, 1).
    """
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    kind = array.dtype.kind
    if kind in "iu":
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise SpeechUnitsError(f"{what}: integer features are unit ids and must have shape (T,) or (T, 1), found {array.shape}")
        return array.astype(np.int64, copy=False), True
    if kind != "f":
        raise SpeechUnitsError(f"{what}: features must be float (T, D) or integer unit ids, found dtype {array.dtype}")
    if array.ndim != 2:
        raise SpeechUnitsError(f"{what}: float features must have shape (T, D), found {array.shape}")
    if array.shape[1] == 0:
        raise SpeechUnitsError(f"{what}: features have dimension 0")
    if not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array))[0, 0])
        raise SpeechUnitsError(f"{what}: non-finite value (NaN or inf) in frame {bad}")
    return array, False


def _ranges(lines: list[int]) -> str:
    """`3-7, 9` for [3, 4, 5, 6, 7, 9]."""
    out, start = [], lines[0]
    for prev, cur in zip(lines, lines[1:] + [None]):
        if cur != prev + 1 if cur is not None else True:
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = cur
    return ", ".join(out)


def _nature(discrete: bool, dim: int) -> str:
    return "unit ids" if discrete else f"dimension {dim}"


def load_tokens(items: ItemSet, source: Any, frame_shift: float, config: AbxConfig) -> Tokens:
    """Load the features of every item's utterance and compute the item frame ranges.

    source: an object with .load(utt) (and optionally .utts(), .array_path(utt)), or a
    mapping utt -> array. Bad input raises ItemProblems (a DataFormatError) naming every
    bad item line and every utterance without usable features (item file and line);
    with config.skip_bad_items the items concerned are skipped and listed instead.
    A feature dimension that differs between utterances is always an error.
    """
    if not frame_shift or not frame_shift > 0:
        raise SpeechUnitsError(f"frame shift must be a positive number of seconds, not {frame_shift!r}")
    n = len(items)
    start, end = frame_ranges(items.onset, items.offset, frame_shift, config.libri_light_slicing)
    ok = np.ones(n, dtype=bool)
    skipped: list[SkippedItem] = []
    problems: list[tuple[int, str]] = []  # without skip_bad_items: all of them, raised at the end

    def bad(i: int, reason: str) -> None:
        ok[i] = False
        skipped.append(SkippedItem(int(items.lines[i]), items.file[i], reason))
        if not config.skip_bad_items:
            problems.append((int(items.lines[i]), reason))

    def bad_utterance(rows: list[int], reason: str) -> None:
        """Every item of an utterance fails for one reason: one problem, its items counted."""
        for i in rows:
            ok[i] = False
            skipped.append(SkippedItem(int(items.lines[i]), items.file[i], reason))
        if not config.skip_bad_items:
            lines = [int(items.lines[i]) for i in rows]
            count = f" ({len(lines)} items, lines {_ranges(lines)})" if len(lines) > 1 else ""
            problems.append((lines[0], reason + count))

    by_file: dict[str, list[int]] = {}
    for i, f in enumerate(items.file):
        by_file.setdefault(f, []).append(i)
    available = _available(source)
    features: dict[str, np.ndarray] = {}
    discrete: bool | None = None
    dim: int | None = None
    first: str | None = None
    for utt in sorted(by_file):
        rows = by_file[utt]
        what = _describe(source, utt)
        if available is not None and utt not in available:
            bad_utterance(rows, f"no features for {what}")
            continue
        try:
            array, is_discrete = check_array(_load(source, utt), what)
        except KeyError:
            bad_utterance(rows, f"no features for {what}")
            continue
        except (SpeechUnitsError, OSError, ValueError) as e:
            bad_utterance(rows, str(e) if isinstance(e, SpeechUnitsError) else f"{what}: {e}")
            continue
        this_dim = 1 if is_discrete else array.shape[1]
        if discrete is None:
            discrete, dim, first = is_discrete, this_dim, utt
        elif (is_discrete, this_dim) != (discrete, dim):
            raise SpeechUnitsError(
                f"{what} has {_nature(is_discrete, this_dim)} but utterance {first} has {_nature(discrete, dim)}"
            )
        T = array.shape[0]
        limit = (T + config.end_tolerance_frames) * frame_shift * (1 + 1e-9) + TIME_TOLERANCE * frame_shift
        used = False
        for i in rows:
            if items.offset[i] > limit:
                bad(i, f"item {items.onset[i]:g}-{items.offset[i]:g} s ends after the features of {what} "
                       f"({T} frames = {T * frame_shift:g} s at shift {frame_shift:g} s; tolerance "
                       f"{config.end_tolerance_frames} frame)")
                continue
            end[i] = min(end[i], T)
            if end[i] <= start[i]:
                bad(i, f"item {items.onset[i]:g}-{items.offset[i]:g} s of {what} selects no frame at shift "
                       f"{frame_shift:g} s{' (libri-light slicing drops the last frame)' if config.libri_light_slicing else ''}; "
                       "skip_bad_items (--skip-bad-items) leaves such items out")
                continue
            used = True
        if used:
            features[utt] = array
    if problems:
        raise ItemProblems(items.path, problems)
    if skipped:
        log.info("skipped %d bad item(s); first: line %d: %s", len(skipped), skipped[0].line, skipped[0].reason)
    keep = np.flatnonzero(ok)
    return Tokens(keep, start[keep], end[keep], features, bool(discrete), int(dim or 0), skipped)
