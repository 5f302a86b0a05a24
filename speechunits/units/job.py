"""The `speechunits extract` job: units for every utterance of a source, resumably.

    report = extract_units(extractor, open_audio_source("data/test"), "units/test")

Output folder OUT:

    units.txt, durations.txt, units.jsonl   unit files (speechunits/units/formats.py);
                                            discrete bottlenecks only
    frame_shift                             the latent frame shift (seconds)
    dense/<utt>.npy                         the tap's values (T', C), with dense/frame_shift
                                            and dense/meta.json: a feature dir that
                                            `speechunits abx ITEM OUT/dense` reads as is
    dense/feats.ark, dense/feats.scp        instead of the .npy files with format="ark"
    codes/<utt>.npy                         frame-level codes (T',) int64, with codes/frame_shift
                                            (discrete bottlenecks): `speechunits abx ITEM OUT/codes`
                                            scores the units as one-hot vectors
    extract.json                            the settings (model, tap, dedup, format, ...)
    .parts/<utt>.json                       per-utterance results (the resume state)
    .parts/cmvn/<spk>.npy                   per-speaker CMVN statistics (cmvn=speaker)

The unit of work is the utterance: its dense array is written first, then its
part file, each atomically, so an utterance is finished exactly when its part file
exists. A rerun skips finished utterances and redoes the rest; the text files are
assembled at the end, sorted, from the part files. Rerunning into a folder made
with different settings (another model, tap, ...) is refused rather than mixed.
With format="ark" the per-utterance arrays live in .parts/dense/ and the ark is
written from them at the end (delete .parts afterwards to save the space; a rerun
then starts over).

Every failure (unreadable audio, ...) is recorded against its utterance and the
job carries on; failed utterances are left out of the outputs.

Per-speaker CMVN: when the model's input features use cmvn=speaker and the source
knows speakers (a data dir), each speaker's statistics are accumulated over all of
its utterances first (as `speechunits features` does) and kept in .parts/cmvn/
(a rerun reuses them: delete .parts/cmvn after adding utterances to a speaker);
without speakers (a folder or list) each utterance gets per-utterance CMVN and a
warning is logged.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from speechunits.batch import BatchReport
from speechunits.data.featdir import FeatureDir, write_kaldi_ark
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import save_npy, write_json, write_text
from speechunits.frontends.cmvn import CmvnStats
from speechunits.units.extractor import UnitExtractor, Units
from speechunits.units.formats import UnitSequence, write_units
from speechunits.units.sources import AudioSource

log = logging.getLogger(__name__)

__all__ = ["ExtractOptions", "extract_units", "FORMATS", "PARTS_DIR", "SETTINGS_FILE"]

FORMATS = ("npy", "ark")
PARTS_DIR = ".parts"
SETTINGS_FILE = "extract.json"


@dataclass
class ExtractOptions:
    """How the job runs (what is extracted is the extractor's business).

    format: dense store, "npy" (one file per utterance) or "ark" (Kaldi ark/scp);
    batch_size: utterances loaded and encoded together (fewer when they add up to more
    than max_batch_seconds of audio); num_workers: batches in flight at once (threads);
    model: names the model in extract.json (its path)."""

    format: str = "npy"
    batch_size: int = 16
    num_workers: int = 1
    model: str = ""
    max_batch_seconds: float = 600.0  # audio held in memory per worker before it is encoded

    def __post_init__(self):
        if self.format not in FORMATS:
            raise SpeechUnitsError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.batch_size < 1 or self.num_workers < 1:
            raise SpeechUnitsError("batch_size and num_workers must be >= 1")


class _Layout:
    def __init__(self, out_dir: Path, fmt: str):
        self.out = out_dir
        self.parts = out_dir / PARTS_DIR
        self.cmvn = self.parts / "cmvn"
        self.dense = FeatureDir(out_dir / "dense")
        self.codes = FeatureDir(out_dir / "codes")
        self.arrays = FeatureDir(self.parts / "dense") if fmt == "ark" else self.dense

    def part(self, utt: str) -> Path:
        return self.parts / f"{utt}.json"

    def finished(self, utt: str) -> bool:
        return self.part(utt).is_file() and self.arrays.has(utt)


def _settings(extractor: UnitExtractor, options: ExtractOptions) -> dict:
    return {"model": options.model, "format": options.format, **extractor.describe()}


def _check_settings(layout: _Layout, settings: dict) -> None:
    settings = json.loads(json.dumps(settings))  # compare as stored (tuples become lists)
    path = layout.out / SETTINGS_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = None
        if old != settings:
            diff = [k for k in sorted(set(settings) | set(old or {})) if (old or {}).get(k) != settings.get(k)]
            raise SpeechUnitsError(
                f"{layout.out} holds an extraction made with other settings ({', '.join(diff) or 'unreadable'} "
                f"differ, see {path}): use another output folder or delete this one"
            )
    write_json(path, settings)


def _speaker_stats(
    extractor: UnitExtractor, source: AudioSource, layout: _Layout, todo: set[str], report: BatchReport
) -> dict[str, CmvnStats]:
    """Statistics of every speaker with an utterance to do (from .parts/cmvn/ when saved)."""
    out: dict[str, CmvnStats] = {}
    for spk, utts in sorted((source.spk2utt() or {}).items()):
        if not todo.intersection(utts):
            continue
        path = layout.cmvn / f"{spk}.npy"
        if path.is_file():
            out[spk] = CmvnStats.from_kaldi(np.load(path))
            continue
        stats = None
        for utt in utts:
            try:
                static = extractor.static_features(source.load(utt))
            except SpeechUnitsError as e:
                if utt in todo:
                    report.failures[utt] = str(e)
                continue
            stats = stats or CmvnStats(static.shape[1])
            stats.accumulate(static)
        if stats is not None:
            save_npy(path, stats.to_kaldi())
            out[spk] = stats
    return out


def _write(layout: _Layout, utt: str, units: Units) -> None:
    layout.arrays.save(utt, units.dense)
    if units.frame_codes is not None:
        layout.codes.save(utt, np.asarray(units.frame_codes, dtype=np.int64))
    seq = units.sequence(utt)
    record = seq.to_json() if seq is not None else {"utt": utt, "units": None, "shift": units.frame_shift}
    record["frames"] = units.num_frames
    write_text(layout.part(utt), json.dumps(record) + "\n")


def _read_part(layout: _Layout, utt: str) -> UnitSequence | None:
    path = layout.part(utt)
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SpeechUnitsError(f"{path}: unreadable part file ({e}); delete it to redo utterance {utt}") from None
    if obj.get("units") is None:
        return None
    return UnitSequence(utt, np.asarray(obj["units"], dtype=np.int64), np.asarray(obj["durations"], dtype=np.int64),
                        float(obj["shift"]))


def extract_units(
    extractor: UnitExtractor,
    source: AudioSource,
    out_dir: str | os.PathLike,
    options: ExtractOptions | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Extract every utterance of `source` into `out_dir` (see the module docstring).
    `on_progress(n)` is called as utterances finish. Returns the per-utterance report."""
    options = options or ExtractOptions()
    layout = _Layout(Path(out_dir), options.format)
    layout.out.mkdir(parents=True, exist_ok=True)
    _check_settings(layout, _settings(extractor, options))
    meta = {"tap": extractor.tap, "model": options.model, "input_features": extractor.describe()["input_features"]}
    layout.dense.write_meta(frame_shift=extractor.frame_shift, **meta)
    if extractor.discrete:
        layout.codes.write_meta(frame_shift=extractor.frame_shift, **{**meta, "tap": "codes"})
    write_text(layout.out / "frame_shift", f"{extractor.frame_shift!r}\n")

    report = BatchReport()
    utts = source.utts()
    bad = [u for u in utts if "/" in u or u.startswith(".")]
    for utt in bad:
        report.failures[utt] = "utterance id contains '/' or starts with '.': cannot name its output files"
    todo = [u for u in utts if u not in report.failures and not layout.finished(u)]
    report.skipped = len(utts) - len(todo) - len(bad)
    if on_progress and report.skipped:
        on_progress(report.skipped)

    stats: dict[str, CmvnStats] = {}
    utt2spk = source.utt2spk or {}
    if extractor.needs_speaker_stats and todo:
        if source.utt2spk:
            stats = _speaker_stats(extractor, source, layout, set(todo), report)
            todo = [u for u in todo if u not in report.failures]
        else:
            log.warning(
                "%s: the model's input features use per-speaker CMVN but a %s has no speakers: "
                "using per-utterance CMVN", source.path, source.kind,
            )

    def stats_of(utt: str) -> CmvnStats | None:
        if not extractor.needs_speaker_stats:
            return None
        return stats.get(utt2spk.get(utt, ""), None)

    def encode(audios: dict, rep: BatchReport) -> None:
        names = list(audios)
        try:
            results = extractor.extract_batch([audios[u] for u in names], cmvn_stats=[stats_of(u) for u in names])
        except SpeechUnitsError:  # find out which utterance it was
            results = []
            for utt in list(names):
                try:
                    results.append(extractor(audios[utt], cmvn_stats=stats_of(utt)))
                except SpeechUnitsError as e:
                    rep.failures[utt] = str(e)
                    names.remove(utt)
        for utt, units in zip(names, results):
            with rep.attempt(utt):
                _write(layout, utt, units)

    def run(batch: list[str]) -> BatchReport:
        """Load and encode a batch; audio is encoded as soon as `max_batch_seconds` of it
        has been loaded, so a batch of long recordings never sits in memory at once."""
        rep = BatchReport()
        audios, seconds = {}, 0.0
        for utt in batch:
            try:
                audio = source.load(utt)
            except SpeechUnitsError as e:
                rep.failures[utt] = str(e)
                continue
            if audio.num_channels > 1:
                rep.notes[utt] = f"{audio.num_channels} channels mixed down to mono (channel mean)"
            audios[utt] = audio
            seconds += audio.duration
            if seconds >= options.max_batch_seconds:
                encode(audios, rep)
                audios, seconds = {}, 0.0
        if audios:
            encode(audios, rep)
        return rep

    batches = [todo[i : i + options.batch_size] for i in range(0, len(todo), options.batch_size)]
    def finish(rep: BatchReport) -> None:
        report.merge(rep)
        if on_progress:
            on_progress(rep.done + len(rep.failures))

    if options.num_workers == 1:  # in this thread: torch ops run ~3x slower in a pool thread (measured)
        for batch in batches:
            finish(run(batch))
    else:
        with ThreadPoolExecutor(options.num_workers) as pool:
            for rep in pool.map(run, batches):
                finish(rep)

    finished = [u for u in utts if u not in report.failures and layout.finished(u)]
    seqs = []
    for utt in finished:
        try:
            seq = _read_part(layout, utt)
        except SpeechUnitsError as e:
            report.failures[utt] = str(e)
            continue
        if seq is not None:
            seqs.append(seq)
    if extractor.discrete:
        write_units(layout.out, seqs)
    if options.format == "ark":
        ok = [u for u in finished if u not in report.failures]
        write_kaldi_ark(layout.dense.path / "feats.ark", layout.dense.path / "feats.scp",
                        ((u, layout.arrays.load(u)) for u in ok))
    return report
