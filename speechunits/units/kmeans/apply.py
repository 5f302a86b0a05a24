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
each atomically; speechunits/units/parts.py); a rerun skips finished utterances,
and the text files are assembled at the end from the part files, sorted. A folder
made with another model or other settings is refused rather than mixed. Every bad
utterance is recorded with its reason and left out of the outputs. Resuming and
reporting are the per-utterance job framework's (speechunits.jobs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from speechunits.batch import BatchReport
from speechunits.data.featdir import FeatureDir, FeatureSource
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import keep_settings, write_text
from speechunits.jobs import UtteranceJob, run_job, utterance_groups
from speechunits.units.formats import UnitSequence, run_length, write_units
from speechunits.units.kmeans.frames import open_features, read_frames, select_utts
from speechunits.units.kmeans.model import KMeans
from speechunits.units.kmeans.regression import check_pairing
from speechunits.units.parts import PARTS_DIR, UnitParts

__all__ = ["ApplyOptions", "apply_kmeans", "SETTINGS_FILE", "PARTS_DIR"]

SETTINGS_FILE = "kmeans.json"


@dataclass
class ApplyOptions:
    """dense: also write dense/<utt>.npy, the squared distances to every centroid;
    model: names the model in kmeans.json (its path); utts: only these utterances;
    penalty: duration-penalised units (KMeans.predict), 0 for the nearest centroid."""

    dense: bool = False
    model: str = ""
    utts: list[str] | None = None
    penalty: float = 0.0


class _ApplyJob(UtteranceJob):
    """An utterance's frames in, its codes (and distances) and part file out."""

    def __init__(self, model: KMeans, source: FeatureSource, out: Path, shift: float, dense: bool, penalty: float):
        self.model, self.source, self.shift, self.dense, self.penalty = model, source, shift, dense, penalty
        self.parts = UnitParts(out)
        self.codes_dir, self.dense_dir = FeatureDir(out / "codes"), FeatureDir(out / "dense")

    def finished(self, utt: str) -> bool:
        return self.parts.has(utt) and self.codes_dir.has(utt) and (not self.dense or self.dense_dir.has(utt))

    def prepare(self, utt: str, report: BatchReport) -> np.ndarray:
        return read_frames(self.source, utt, self.model.frame_dim)

    def process(self, frames: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        return [(self.model.predict(x, penalty=self.penalty), self.model.distances(x) if self.dense else None)
                for x in frames.values()]

    def write(self, utt: str, result: tuple[np.ndarray, np.ndarray | None]) -> None:
        codes, distances = result
        self.codes_dir.save(utt, codes)
        if distances is not None:
            self.dense_dir.save(utt, distances)
        units, durations = run_length(codes)
        self.parts.write(utt, UnitSequence(utt, units, durations, self.shift).to_json())


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
    mapped_by = (getattr(source, "meta", None) or {}).get("readout")  # frames through a centroid regression
    try:
        check_pairing(model, mapped_by)
    except SpeechUnitsError as e:
        raise SpeechUnitsError(f"{where}: {e}") from None
    penalised = model.segment_cost(options.penalty) > 0  # a bad penalty fails here, before any output
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"model": options.model, "model_id": model.model_id(), "k": model.k, "dim": model.dim,
                "features": str(where), "frame_shift": shift, "dense": options.dense}
    if penalised:
        settings["penalty"] = options.penalty
    if model.context:
        settings["context"] = model.context
    if mapped_by:
        settings["readout"] = mapped_by
    keep_settings(out / SETTINGS_FILE, settings, "units")
    job = _ApplyJob(model, source, out, shift, options.dense, options.penalty)
    meta = {"tap": "codes", "model": options.model, "kmeans_k": model.k, "features": str(where),
            **({"readout": mapped_by} if mapped_by else {})}
    job.codes_dir.write_meta(frame_shift=shift, **meta)
    if options.dense:
        job.dense_dir.write_meta(frame_shift=shift, **{**meta, "tap": "kmeans_distances", "feature_dim": model.k})
    write_text(out / "frame_shift", f"{shift!r}\n")

    names, missing = select_utts(source, options.utts)
    report = run_job(job, utterance_groups(names), on_progress=on_progress, report=BatchReport(failures=dict(missing)))
    _, seqs = job.parts.collect(names, report, finished=job.parts.has)
    write_units(out, seqs)
    return report
