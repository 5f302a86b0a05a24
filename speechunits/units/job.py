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
import json
import logging
import os
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from speechunits.audio import Audio, audio_note
from speechunits.batch import BatchReport
from speechunits.data.featdir import FeatureDir, write_kaldi_ark
from speechunits.data.split import split_groups
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import keep_settings, save_npy, write_text
from speechunits.frontends.cmvn import CmvnStats
from speechunits.units.extractor import UnitExtractor, Units
from speechunits.units.formats import UnitSequence, write_units
from speechunits.units.sources import AudioSource

log = logging.getLogger(__name__)

__all__ = ["ExtractOptions", "extract_units", "extract_units_parallel", "job_part", "FORMATS", "PARTS_DIR", "SETTINGS_FILE"]

FORMATS = ("npy", "ark")
PARTS_DIR = ".parts"
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
            k, n = self.part
            if not 1 <= k <= n:
                raise SpeechUnitsError(f"job part {k}/{n}: need 1 <= k <= n")


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
    keep_settings(layout.out / SETTINGS_FILE, settings, "an extraction")


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


def job_part(source: AudioSource, k: int, n: int, by_speaker: bool) -> list[str]:
    """Utterances of part k (1-based) of n, in source order: contiguous runs of whole
    speakers when `by_speaker` and the source knows speakers, else of utterances.
    Parts beyond the number of speakers (utterances) are empty."""
    utts = source.utts()
    utt2spk = source.utt2spk if by_speaker and source.utt2spk else {}
    groups: dict[str, list[str]] = {}
    for utt in utts:
        groups.setdefault(utt2spk[utt] if utt in utt2spk else "\0" + utt, []).append(utt)
    parts = split_groups(list(groups.values()), min(n, len(groups))) if groups else []
    mine = set(parts[k - 1]) if k <= len(parts) else set()
    return [u for u in utts if u in mine]


def _load_groups(source: AudioSource, utts: list[str], options: ExtractOptions
                 ) -> Iterator[tuple[dict[str, Audio], BatchReport]]:
    """The audio of `batch_size` utterances at a time (fewer when they add up to
    `max_batch_seconds`, so a batch of long recordings never sits in memory at once),
    with the failures and notes of loading them."""
    audios, rep, seconds = {}, BatchReport(), 0.0
    for utt in utts:
        try:
            audio = source.load(utt)
        except SpeechUnitsError as e:
            rep.failures[utt] = str(e)
            continue
        note = audio_note(audio)  # the same NOTE lines as `features`
        if note:
            rep.notes[utt] = note
        audios[utt] = audio
        seconds += audio.duration
        if len(audios) >= options.batch_size or seconds >= options.max_batch_seconds:
            yield audios, rep
            audios, rep, seconds = {}, BatchReport(), 0.0
    if audios or rep.failures or rep.notes:
        yield audios, rep


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
    _check_settings(layout, _settings(extractor, options))
    meta = {"tap": extractor.tap, "model": options.model, "input_features": extractor.describe()["input_features"]}
    layout.dense.write_meta(frame_shift=extractor.frame_shift, **meta)
    if extractor.discrete:
        layout.codes.write_meta(frame_shift=extractor.frame_shift, **{**meta, "tap": "codes"})
    write_text(layout.out / "frame_shift", f"{extractor.frame_shift!r}\n")

    report = BatchReport()
    utts = source.utts()
    if options.part is not None:
        utts = job_part(source, *options.part, by_speaker=extractor.needs_speaker_stats)
    bad = [u for u in utts if "/" in u or u.startswith(".")]
    for utt in bad:
        report.failures[utt] = "utterance id contains '/' or starts with '.': cannot name its output files"
    todo = [u for u in utts if u not in report.failures and not layout.finished(u)]
    report.skipped = len(utts) - len(todo) - len(bad)
    progress = on_progress or (lambda n: None)
    if report.skipped:
        progress(report.skipped)

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

    def encode(audios: dict[str, Audio]) -> list[tuple[str, Units]]:
        names = list(audios)
        try:
            return list(zip(names, extractor.extract_batch([audios[u] for u in names],
                                                           cmvn_stats=[stats_of(u) for u in names])))
        except SpeechUnitsError:  # find out which utterance it was
            results = []
            for utt in names:
                try:
                    results.append((utt, extractor(audios[utt], cmvn_stats=stats_of(utt))))
                except SpeechUnitsError as e:
                    report.failures[utt] = str(e)
                    progress(1)
            return results

    def settle(writes: list[tuple[str, Future]]) -> None:
        for utt, written in writes:
            with report.attempt(utt):
                written.result()
            progress(1)

    with ThreadPoolExecutor(1, thread_name_prefix="extract-io") as io:
        groups = _load_groups(source, todo, options)
        loading = io.submit(next, groups, None)
        writes: list[tuple[str, Future]] = []
        while (group := loading.result()) is not None:
            loading = io.submit(next, groups, None)  # the next batch loads while this one encodes
            audios, loaded = group
            report.merge(loaded)
            progress(len(loaded.failures))
            results = encode(audios)
            settle(writes)  # the previous batch's outputs
            writes = [(utt, io.submit(_write, layout, utt, units)) for utt, units in results]
        settle(writes)

    if options.part is None:
        _assemble(layout, source.utts(), report, extractor.discrete, options.format)
    return report


def _assemble(layout: _Layout, utts: list[str], report: BatchReport, discrete: bool, fmt: str) -> None:
    """units.txt, durations.txt, units.jsonl (and the ark) from the finished utterances' parts."""
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
    if discrete:
        write_units(layout.out, seqs)
    if fmt == "ark":
        ok = [u for u in finished if u not in report.failures]
        write_kaldi_ark(layout.dense.path / "feats.ark", layout.dense.path / "feats.scp",
                        ((u, layout.arrays.load(u)) for u in ok))


def _run_part(build: Callable[[], tuple[UnitExtractor, AudioSource]], out_dir: str, options: ExtractOptions,
              threads: int) -> BatchReport:
    """One worker process of `extract_units_parallel`."""
    import torch

    torch.set_num_threads(threads)
    extractor, source = build()
    return extract_units(extractor, source, out_dir, options)


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
    import multiprocessing

    import torch

    options = options or ExtractOptions()
    extractor, source = build()  # fails early on a bad model or input
    layout = _Layout(Path(out_dir), options.format)
    count = lambda: sum(1 for _ in layout.parts.glob("*.json")) if layout.parts.is_dir() else 0  # noqa: E731
    seen = count()
    threads = max(1, torch.get_num_threads() // num_jobs)
    report = BatchReport()
    context = multiprocessing.get_context("spawn")  # no fork of a process with torch threads
    with ProcessPoolExecutor(num_jobs, mp_context=context) as pool:
        jobs = [pool.submit(_run_part, build, str(out_dir), dataclasses.replace(options, part=(k, num_jobs)), threads)
                for k in range(1, num_jobs + 1)]
        pending = set(jobs)
        while pending:
            _, pending = wait(pending, timeout=0.5)
            now = count()
            if on_progress and now > seen:
                on_progress(now - seen)
            seen = now
        for k, job in enumerate(jobs, 1):
            try:
                part = job.result()
            except BrokenProcessPool as e:
                raise SpeechUnitsError(f"extract: job {k}/{num_jobs} died ({e}); rerun to resume") from None
            report.merge(part)
    _assemble(layout, source.utts(), report, extractor.discrete, options.format)
    return report
