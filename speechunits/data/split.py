"""Split a data dir into parts for parallel jobs, and combine data dirs (Kaldi's
utils/split_data.sh and utils/combine_data.sh).

Split by speaker keeps every speaker whole, so per-speaker steps (CMVN, speaker
adaptation) see all of a speaker in one job. Parts are contiguous runs of the
C-sorted speakers (or utterances), so each part's files are slices of the
originals; part boundaries are placed where the running utterance count is
closest to k/n of the total, which balances the parts to within one speaker's
utterances of the mean. Splitting is deterministic: no randomness, no seed.

On disk, parts go to `<data>/split<N>/<k>` (by utterance: `split<N>utt/<k>`),
k = 1..N, as Kaldi names them.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from speechunits.data.datadir import DataDir, Segment
from speechunits.data.tables import examples, table_key_kind
from speechunits.errors import ConfigError, DataFormatError

log = logging.getLogger(__name__)

BY = ("speaker", "utterance")


def split_dir_name(n: int, by: str = "speaker") -> str:
    """`split<N>` by speaker, `split<N>utt` by utterance."""
    return f"split{n}" + ("utt" if by == "utterance" else "")


def _boundaries(counts: Sequence[int], n: int) -> list[int]:
    """End indices (exclusive) of n contiguous non-empty blocks of `counts`.

    Block k ends where the cumulative count is closest to (k+1)/n of the total,
    leaving room for at least one item in each later block.
    """
    cum = list(itertools.accumulate(counts))
    total, m = cum[-1], len(counts)
    ends, lo = [], 1
    for k in range(1, n):
        hi = m - (n - k)  # largest allowed end for block k
        target = total * k / n
        j = bisect.bisect_left(cum, target, lo - 1, hi)  # first end-1 with cum >= target
        candidates = [e for e in (j, j + 1) if lo <= e <= hi]
        end = min(candidates, key=lambda e: (abs(cum[e - 1] - target), e)) if candidates else lo
        ends.append(end)
        lo = end + 1
    ends.append(m)
    return ends


def split_data_dir(datadir: DataDir, n: int, by: str = "speaker") -> list[DataDir]:
    """n parts of `datadir`, each a subset with its tables filtered to match."""
    if by not in BY:
        raise ConfigError(f"split by must be one of {BY}, got {by!r}")
    if n < 1:
        raise ConfigError(f"number of parts must be at least 1, got {n}")
    if by == "speaker":
        spk2utt = datadir.spk2utt
        if n > len(spk2utt):
            raise ConfigError(
                f"cannot split {len(spk2utt)} speakers into {n} parts keeping speakers whole; "
                "use fewer parts or split by utterance"
            )
        groups = list(spk2utt.values())
    else:
        if n > len(datadir.utt2spk):
            raise ConfigError(f"cannot split {len(datadir.utt2spk)} utterances into {n} parts")
        groups = [[u] for u in datadir.utts]
    return [datadir.subset(utts) for utts in split_groups(groups, n)]


def split_groups(groups: Sequence[Sequence[str]], n: int) -> list[list[str]]:
    """n contiguous parts of `groups` (lists of utterances kept together, e.g. one per
    speaker), each the concatenation of its groups, balanced by utterance count;
    needs 1 <= n <= len(groups)."""
    if not 1 <= n <= len(groups):
        raise ConfigError(f"cannot split {len(groups)} groups into {n} parts")
    parts, start = [], 0
    for end in _boundaries([len(g) for g in groups], n):
        parts.append([u for g in groups[start:end] for u in g])
        start = end
    return parts


def write_splits(datadir: DataDir, data_path: str | os.PathLike, n: int, by: str = "speaker") -> list[Path]:
    """Split and write the parts to `<data_path>/split<N>[utt]/<k>`; returns the part folders.

    The whole split folder is built under a temporary name and renamed into place,
    so a folder that exists is complete; an existing one is replaced.
    """
    parts = split_data_dir(datadir, n, by)
    root = Path(data_path)
    root.mkdir(parents=True, exist_ok=True)
    final = root / split_dir_name(n, by)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        for k, part in enumerate(parts, 1):
            part.write(tmp / str(k))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [final / str(k) for k in range(1, n + 1)]


def _merge(tables: list[dict], name: str, what: str) -> dict:
    """Union of tables whose keys may repeat only with equal values."""
    out: dict = {}
    for table in tables:
        for key, value in table.items():
            if key in out and out[key] != value:
                message = f"combine: {what} {key!r} has two different values: {out[key]!r} and {value!r}"
                raise DataFormatError(message, name)
            out[key] = value
    return out


def combine_data_dirs(dirs: Iterable[DataDir | str | os.PathLike]) -> DataDir:
    """One data dir holding the utterances of all `dirs` (paths are read first).

    Utterance ids must be unique across dirs. Recordings and speakers may repeat
    only with identical wav.scp entries and genders. A table missing from some
    dir is left out of the result (logged), as combine_data.sh does. If only some
    dirs have segments, the others get whole-recording segments: [0, utt2dur]
    when they have utt2dur, else [0, -1] (to the end of the recording).
    """
    dds = [d if isinstance(d, DataDir) else DataDir.read(d) for d in dirs]
    if not dds:
        raise ConfigError("combine: no data dirs given")
    seen: dict[str, int] = {}
    duplicates = []
    for i, dd in enumerate(dds):
        for utt in dd.utt2spk:
            if utt in seen:
                duplicates.append(utt)
            seen[utt] = i
    if duplicates:
        names = ", ".join(str(d.path) for d in dds if d.path is not None)
        raise DataFormatError(
            f"combine: {len(duplicates)} utterance ids occur in more than one data dir: {examples(sorted(duplicates))}"
            + (f" (dirs: {names})" if names else "")
        )

    segments = None
    if any(dd.segments is not None for dd in dds):
        segments = {}
        for dd in dds:
            if dd.segments is not None:
                segments.update(dd.segments)
            else:
                utt2dur = dd.utt2dur or {}
                segments.update({u: Segment(u, 0.0, utt2dur.get(u)) for u in dd.utt2spk})

    def union(attr: str, what: str) -> dict | None:
        tables = [getattr(dd, attr) for dd in dds]
        if any(t is None for t in tables):
            if any(t is not None for t in tables):
                log.warning("combine: leaving out %s, which not every data dir has", attr)
            return None
        return _merge(tables, attr, what)

    extra = {}
    for name in sorted(set().union(*(dd.extra for dd in dds))):
        tables = [dd.extra.get(name) for dd in dds]
        if any(t is None for t in tables):
            log.warning("combine: leaving out %s, which not every data dir has", name)
            continue
        what = {"utt": "utterance", "spk": "speaker", "reco": "recording"}.get(table_key_kind(name), "key")
        extra[name] = _merge(tables, name, what)
    return DataDir(
        wav_scp=_merge([dd.wav_scp for dd in dds], "wav.scp", "recording"),
        utt2spk=_merge([dd.utt2spk for dd in dds], "utt2spk", "utterance"),
        segments=segments,
        text=union("text", "utterance"),
        spk2gender=union("spk2gender", "speaker"),
        utt2dur=union("utt2dur", "utterance"),
        extra=extra,
    )
