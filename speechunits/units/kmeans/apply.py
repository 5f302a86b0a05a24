"""The `speechunits kmeans apply` job: units for every utterance of a feature dir.

    report = apply_kmeans(KMeans.load("kmeans.pt"), "feats/dev", "units/kmeans_dev")

Output folder OUT, as `speechunits extract` writes it for units (job.py):

    units.txt, durations.txt, units.jsonl   unit files (formats.py): the frame codes with
                                            repeats merged, durations in frames
    frame_shift                             the features' frame shift (seconds)
    codes/<utt>.npy                         frame-level codes (T,) int64, with codes/frame_shift
                                            and codes/meta.json: `speechunits abx ITEM OUT/codes`
                                            scores them as one-hot vectors
    dense/<utt>.npy                         with dense=True: squared distances to every
                                            centroid (T, K) float32, a feature dir as well
    kmeans.json                             the settings (model, its id, features)
    .parts/<utt>.json                       per-utterance units (the resume state)

An utterance is finished when its part file exists (written after its arrays,
each atomically); a rerun skips finished utterances, and the text files are
assembled at the end from the part files, sorted. A folder made with another
model or other settings is refused rather than mixed. Every bad utterance is
recorded with its reason and left out of the outputs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from speechunits.batch import BatchReport
from speechunits.data.featdir import FeatureDir, FeatureSource
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import keep_settings, write_text
from speechunits.units.formats import UnitSequence, run_length, write_units
from speechunits.units.kmeans.frames import open_features, read_frames, select_utts
from speechunits.units.kmeans.model import KMeans

__all__ = ["ApplyOptions", "apply_kmeans", "SETTINGS_FILE"]

SETTINGS_FILE = "kmeans.json"
PARTS_DIR = ".parts"


@dataclass
class ApplyOptions:
    """dense: also write dense/<utt>.npy, the squared distances to every centroid;
    model: names the model in kmeans.json (its path); utts: only these utterances."""

    dense: bool = False
    model: str = ""
    utts: list[str] | None = None


def _read_part(path: Path, utt: str) -> UnitSequence:
    try:
        obj = json.loads(path.read_text())
        return UnitSequence(utt, np.asarray(obj["units"], dtype=np.int64),
                            np.asarray(obj["durations"], dtype=np.int64), float(obj["shift"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SpeechUnitsError(f"{path}: unreadable part file ({e}); delete it to redo utterance {utt}") from None


def apply_kmeans(model: KMeans, features: str | os.PathLike | FeatureSource, out_dir: str | os.PathLike,
                 options: ApplyOptions | None = None, frame_shift: float | None = None,
                 on_progress: Callable[[int], None] | None = None) -> BatchReport:
    """Units of every utterance of `features` into `out_dir` (see the module docstring).
    `frame_shift` overrides the one recorded beside the features (one is needed);
    `on_progress(n)` is called as utterances finish. Returns the per-utterance report."""
    options = options or ApplyOptions()
    source = open_features(features, frame_shift)
    shift = source.frame_shift
    where = getattr(source, "path", features)
    if shift is None:
        raise SpeechUnitsError(f"{where}: no frame shift recorded (no frame_shift file or meta.json beside the "
                               "features); give one (--frame-shift)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"model": options.model, "model_id": model.model_id(), "k": model.k, "dim": model.dim,
                "features": str(where), "frame_shift": shift, "dense": options.dense}
    keep_settings(out / SETTINGS_FILE, settings, "units")
    parts = out / PARTS_DIR
    codes_dir, dense_dir = FeatureDir(out / "codes"), FeatureDir(out / "dense")
    meta = {"tap": "codes", "model": options.model, "kmeans_k": model.k, "features": str(where)}
    codes_dir.write_meta(frame_shift=shift, **meta)
    if options.dense:
        dense_dir.write_meta(frame_shift=shift, **{**meta, "tap": "kmeans_distances", "feature_dim": model.k})
    write_text(out / "frame_shift", f"{shift!r}\n")

    names, missing = select_utts(source, options.utts)
    report = BatchReport(failures=dict(missing))
    progress = on_progress or (lambda n: None)
    part = lambda utt: parts / f"{utt}.json"  # noqa: E731
    for utt in names:
        if "/" in utt or utt.startswith("."):
            report.failures[utt] = "utterance id contains '/' or starts with '.': cannot name its output files"
        elif part(utt).is_file() and codes_dir.has(utt) and (not options.dense or dense_dir.has(utt)):
            report.skipped += 1
        else:
            with report.attempt(utt):
                x = read_frames(source, utt, model.dim)
                codes = model.predict(x)
                codes_dir.save(utt, codes)
                if options.dense:
                    dense_dir.save(utt, model.distances(x))
                units, durations = run_length(codes)
                record = UnitSequence(utt, units, durations, shift).to_json()
                write_text(part(utt), json.dumps(record) + "\n")
        progress(1)

    seqs = []
    for utt in names:
        if utt in report.failures or not part(utt).is_file():
            continue
        try:
            seqs.append(_read_part(part(utt), utt))
        except SpeechUnitsError as e:
            report.failures[utt] = str(e)
    write_units(out, seqs)
    return report
