"""A feature store never describes what it does not hold.

`prepare_store` runs before a features job writes anything to OUT:

- OUT's meta.json says which settings made the arrays there. A run with other
  settings (feature type, dimension, CMVN, any option, the format) is refused with a
  StoreMismatch naming what differs, unless `overwrite`; arrays without a meta.json
  (settings unknown) are refused likewise.
- `overwrite` removes the arrays of the utterances this run computes (all of OUT's
  arrays when it computes the whole data dir) so they are made again; with job parts,
  each part removes only its own, so parts run side by side safely.
- Temporary files a killed run left (`.<name>.XXXX.tmp`) for this run's utterances
  are removed.
- Then meta.json is written for the arrays this run makes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

from speechunits.data.featdir import ARRAY_SUFFIXES, META_FILE, FeatureDir
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import check_writable

_TMP = re.compile(r"^\.(?P<name>.+)\.[^.]*\.tmp$|^\.(?P<plain>.+)\.tmp$")


class StoreMismatch(SpeechUnitsError):
    """OUT holds features made with other settings."""


def _flatten(obj, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def differences(old: dict, new: dict, limit: int = 6) -> list[str]:
    """`key: old -> new` for every setting that differs (dotted keys, first `limit`)."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = [f"{k}: {a.get(k, '(none)')} -> {b.get(k, '(none)')}" for k in keys[:limit]]
    return shown + ([f"... {len(keys) - limit} more"] if len(keys) > limit else [])


def _own_files(folder: Path, utts: set[str] | None, ark_parts: set[int] | None) -> list[Path]:
    """Arrays and ark/scp parts in `folder` that belong to `utts` / `ark_parts` (None: all)."""
    out = []
    for entry in os.scandir(folder):
        name = entry.name
        if not entry.is_file() or name.startswith("."):
            continue
        stem, _, suffix = name.rpartition(".")
        if f".{suffix}" in ARRAY_SUFFIXES and (utts is None or stem in utts):
            out.append(Path(entry.path))
        match = re.fullmatch(r"feats\.(\d+)\.(ark|scp|failed)", name)
        if match and (ark_parts is None or int(match[1]) in ark_parts):
            out.append(Path(entry.path))
        if name == "feats.scp" and ark_parts is None:
            out.append(Path(entry.path))
    return out


def stale_temporaries(folder: Path, names: set[str] | None) -> list[Path]:
    """Temporary files of atomic writes (`.<name>.XXXX.tmp`) for the given final names (None: all)."""
    out = []
    for entry in os.scandir(folder):
        match = _TMP.match(entry.name)
        if match and entry.is_file():
            name = match["name"] or match["plain"]
            if names is None or name in names:
                out.append(Path(entry.path))
    return out


def prepare_store(
    out_dir: str | os.PathLike,
    settings: dict,
    utts: Iterable[str],
    *,
    overwrite: bool = False,
    whole: bool = True,
    ark_part: int | None = None,
) -> FeatureDir:
    """Check OUT against `settings` (what meta.json records), clean up, write meta.json.

    utts: the utterances this run computes; whole: whether they are the whole data dir
    (no job part); ark_part: the ark part this run writes (format ark).
    """
    out = Path(out_dir)
    check_writable(out, folder=True)
    store = FeatureDir(out)
    settings = json.loads(json.dumps(settings))  # compare as stored (tuples become lists)
    utts = set(utts)
    mine_utts = None if whole else utts
    mine_parts = None if whole else ({ark_part} if ark_part is not None else set())
    meta_path = out / META_FILE
    if overwrite:
        for path in _own_files(out, mine_utts, mine_parts):
            path.unlink(missing_ok=True)
    else:
        existing = _own_files(out, None, None)
        if meta_path.is_file():
            try:
                old = json.loads(meta_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                old = None
            if old is None:
                if existing:
                    raise StoreMismatch(f"{meta_path}: unreadable, so the settings of the {len(existing)} array file(s) "
                                        "in this folder are unknown: use --overwrite to compute them again, or another "
                                        "output folder")
            else:
                old = {k: v for k, v in old.items() if k in settings or k == "format"}
                old.setdefault("format", settings.get("format"))  # stores from before the format was recorded
                diff = differences(old, settings)
                if diff:
                    raise StoreMismatch(
                        f"{out} holds features made with other settings ({'; '.join(diff)}; see {meta_path}): "
                        "use --overwrite to replace them, or another output folder"
                    )
        elif existing:
            raise StoreMismatch(f"{out} holds {len(existing)} array file(s) but no {META_FILE}, so their settings are "
                                "unknown: use --overwrite to compute them again, or another output folder")
    names = {f"{u}{s}" for u in utts for s in ARRAY_SUFFIXES} if not whole else None
    if names is not None and ark_part is not None:
        names |= {f"feats.{ark_part}.ark", f"feats.{ark_part}.scp"}
    for path in stale_temporaries(out, names):
        path.unlink(missing_ok=True)
    store.write_meta(**settings)
    return store
