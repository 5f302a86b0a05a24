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
exists (speechunits/units/parts.py). A rerun skips finished utterances and redoes
the rest; the text files are assembled at the end, sorted, from the part files.
Rerunning into a folder made with different settings (another model, tap, ...) is
refused rather than mixed.
With format="ark" the per-utterance arrays live in .parts/dense/ and the ark is
written from them at the end (delete .parts afterwards to save the space; a rerun
then starts over).

Every failure (unreadable audio, ...) is recorded against its utterance and the
job carries on; failed utterances are left out of the outputs. Splitting, resuming,
batching (a failed batch is redone one utterance at a time) and reporting are the
per-utterance job framework's (speechunits.jobs).

Parallel jobs: `ExtractOptions(part=(k, n))` does part k of n only (whole speakers
under per-speaker CMVN) and leaves the text files alone; n such runs side by side
(cluster job arrays: `speechunits extract ... --job K/N`), then one run without a
part, which finds everything done and assembles the text files.
`extract_units_parallel` does exactly that with n local processes (`--nj N`).

Per-speaker CMVN: when the model's input features use cmvn=speaker and the source
knows speakers (a data dir), each speaker's statistics are accumulated over all of
its utterances first (as `speechunits features` does) and kept in .parts/cmvn/
(a rerun reuses them: delete .parts/cmvn after adding utterances to a speaker);
without speakers (a folder or list) each utterance gets per-utterance CMVN and a
warning is logged.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from speechunits.audio import Audio, audio_note
from speechunits.batch import BatchReport
from speechunits.data.featdir import FeatureDir, write_kaldi_ark
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import keep_settings, save_npy, write_text
from speechunits.frontends.cmvn import CmvnStats
from speechunits.jobs import Schedule, UtteranceJob, check_part, job_part, run_job, utterance_groups
from speechunits.jobs.processes import run_parts
from speechunits.units.extractor import UnitExtractor, Units
from speechunits.units.formats import write_units
from speechunits.units.parts import PARTS_DIR, UnitParts
from speechunits.units.sources import AudioSource

log = logging.getLogger(__name__)

__all__ = ["ExtractOptions", "extract_units", "extract_units_parallel", "part_utterances", "FORMATS", "PARTS_DIR",
           "SETTINGS_FILE"]

FORMATS = ("npy", "ark")
SETTINGS_FILE = "extract.json"


@dataclass
class ExtractOptions:
    """How the job runs (what is extracted is the extractor's business).

    format: dense store, "npy" (one file per utterance) or "ark" (Kaldi ark/scp);
    batch_size: utterances loaded and encoded together (fewer when they add up to more
    than max_batch_seconds of audio);
    part: (k, n) to do only part k of n of the utterances (whole speakers when the
    model's CMVN is per speaker), for n jobs side by side; such a run leaves the
    text files (and the ark) to a final run without a part, which finds every
    utterance done and only assembles them;
    model: names the model in extract.json (its path)."""

    format: str = "npy"
    batch_size: int = 16
    model: str = ""
    max_batch_seconds: float = 600.0  # audio held in memory (per batch) before it is encoded
    part: tuple[int, int] | None = None

    def __post_init__(self):
        if self.format not in FORMATS:
            raise SpeechUnitsError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.batch_size < 1:
            raise SpeechUnitsError("batch_size must be >= 1")
        if self.part is not None:
            check_part(*self.part)


class _Layout:
    def __init__(self, out_dir: Path, fmt: str):
        self.out = out_dir
        self.parts = UnitParts(out_dir)
        self.cmvn = self.parts.folder / "cmvn"
        self.dense = FeatureDir(out_dir / "dense")
        self.codes = FeatureDir(out_dir / "codes")
        self.arrays = FeatureDir(self.parts.folder / "dense") if fmt == "ark" else self.dense

    def finished(self, utt: str) -> bool:
        return self.parts.has(utt) and self.arrays.has(utt)


def part_utterances(source: AudioSource, k: int, n: int, by_speaker: bool) -> list[str]:
    """Utterances of part k (1-based) of n, in source order: contiguous runs of whole
    speakers when `by_speaker` and the source knows speakers, else of utterances.
    Parts beyond the number of speakers (utterances) are empty."""
    utts = source.utts()
    mine = set(job_part(utterance_groups(utts, source.utt2spk if by_speaker else None), k, n))
    return [u for u in utts if u in mine]


class _ExtractJob(UtteranceJob):
    """Audio in, a batch encoded at a time, dense (and codes) arrays and a part file out."""

    def __init__(self, extractor: UnitExtractor, source: AudioSource, layout: _Layout):
        self.extractor, self.source, self.layout = extractor, source, layout
        self.stats: dict[str, CmvnStats] = {}

    def finished(self, utt: str) -> bool:
        return self.layout.finished(utt)

    def start(self, todo: list[str], report: BatchReport) -> None:
        if not self.extractor.needs_speaker_stats:
            return
        if self.source.utt2spk:
            self.stats = _speaker_stats(self.extractor, self.source, self.layout, set(todo), report)
        else:
            log.warning(
                "%s: the model's input features use per-speaker CMVN but a %s has no speakers: "
                "using per-utterance CMVN", self.source.path, self.source.kind,
            )

    def prepare(self, utt: str, report: BatchReport) -> Audio:
        audio = self.source.load(utt)
        note = audio_note(audio)  # the same NOTE lines as `features`
        if note:
            report.notes[utt] = note
        return audio

    def seconds(self, audio: Audio) -> float:
        return audio.duration

    def stats_of(self, utt: str) -> CmvnStats | None:
        if not self.extractor.needs_speaker_stats:
            return None
        return self.stats.get((self.source.utt2spk or {}).get(utt, ""), None)

    def process(self, audios: dict[str, Audio]) -> list[Units]:
        return self.extractor.extract_batch(list(audios.values()), cmvn_stats=[self.stats_of(u) for u in audios])

    def write(self, utt: str, units: Units) -> None:
        layout = self.layout
        layout.arrays.save(utt, units.dense)
        if units.frame_codes is not None:
            layout.codes.save(utt, np.asarray(units.frame_codes, dtype=np.int64))
        seq = units.sequence(utt)
        record = seq.to_json() if seq is not None else {"utt": utt, "units": None, "shift": units.frame_shift}
        record["frames"] = units.num_frames
        layout.parts.write(utt, record)


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


def extract_units(
    extractor: UnitExtractor,
    source: AudioSource,
    out_dir: str | os.PathLike,
    options: ExtractOptions | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Extract every utterance of `source` (or of options.part) into `out_dir` (see the
    module docstring). `on_progress(n)` is called as utterances finish. Returns the
    per-utterance report.

    The model runs in the calling thread (torch ops measured ~3x slower in a pool
    thread on CPU); one background thread reads the next batch's audio and writes
    the finished outputs meanwhile."""
    options = options or ExtractOptions()
    layout = _Layout(Path(out_dir), options.format)
    layout.out.mkdir(parents=True, exist_ok=True)
    keep_settings(layout.out / SETTINGS_FILE, {"model": options.model, "format": options.format,
                                               **extractor.describe()}, "an extraction")
    described = extractor.describe()
    meta = {"tap": extractor.tap, "model": options.model, "input_features": described["input_features"],
            **{key: described[key] for key in ("readout", "dense_deltas") if key in described}}  # mapped frames say so
    layout.dense.write_meta(frame_shift=extractor.frame_shift, **meta)
    if extractor.discrete:  # the codes are those of the frames before any deltas
        codes_meta = {key: value for key, value in meta.items() if key != "dense_deltas"}
        layout.codes.write_meta(frame_shift=extractor.frame_shift, **{**codes_meta, "tap": "codes"})
    write_text(layout.out / "frame_shift", f"{extractor.frame_shift!r}\n")

    utts = source.utts()
    if options.part is not None:
        utts = part_utterances(source, *options.part, by_speaker=extractor.needs_speaker_stats)
    schedule = Schedule(batch_size=options.batch_size, max_batch_seconds=options.max_batch_seconds, pipelined=True)
    report = run_job(_ExtractJob(extractor, source, layout), utterance_groups(utts), schedule, on_progress)
    if options.part is None:
        _assemble(layout, source.utts(), report, extractor.discrete, options.format)
    return report


def _assemble(layout: _Layout, utts: list[str], report: BatchReport, discrete: bool, fmt: str) -> None:
    """units.txt, durations.txt, units.jsonl (and the ark) from the finished utterances' parts."""
    finished, seqs = layout.parts.collect(utts, report, finished=layout.finished)
    if discrete:
        write_units(layout.out, seqs)
    if fmt == "ark":
        write_kaldi_ark(layout.dense.path / "feats.ark", layout.dense.path / "feats.scp",
                        ((u, layout.arrays.load(u)) for u in finished))


def _run_part(build: Callable[[], tuple[UnitExtractor, AudioSource]], out_dir: str, options: ExtractOptions,
              threads: int, k: int, n: int) -> BatchReport:
    """Part k of n of `extract_units_parallel`, in a worker process."""
    import torch

    torch.set_num_threads(threads)
    extractor, source = build()
    return extract_units(extractor, source, out_dir, dataclasses.replace(options, part=(k, n)))


def extract_units_parallel(
    build: Callable[[], tuple[UnitExtractor, AudioSource]],
    out_dir: str | os.PathLike,
    options: ExtractOptions | None = None,
    num_jobs: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """`extract_units` in `num_jobs` processes side by side (parts 1..n of the
    utterances, each process with torch threads / n), then the assembly.

    `build()` makes the extractor and the source; it runs in every process, so it
    must be picklable (a module-level function, or functools.partial of one).
    Progress is read off the part files as they appear."""
    import torch

    options = options or ExtractOptions()
    extractor, source = build()  # fails early on a bad model or input
    layout = _Layout(Path(out_dir), options.format)
    threads = max(1, torch.get_num_threads() // num_jobs)
    report = run_parts(partial(_run_part, build, str(out_dir), options, threads), num_jobs, what="extract",
                       count_finished=layout.parts.count, on_progress=on_progress)
    _assemble(layout, source.utts(), report, extractor.discrete, options.format)
    return report
