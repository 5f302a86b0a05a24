"""Compute a data dir's features into a feature store, resumably.

    report = compute_features("data/train", "feats/train", FeaturePipeline.from_preset("mfcc_dd"))

One `<utt>.npy` per utterance (atomic), with `frame_shift` and `meta.json` beside them
(see speechunits.data.featdir), or Kaldi ark/scp. Utterances whose file exists are
skipped, so a rerun after an interruption or a fix only computes what is missing; a
rerun with other settings is refused unless `overwrite` (speechunits.frontends.store).
Per-speaker CMVN needs every utterance of a speaker: speakers are processed whole
(and rewritten whole on a rerun that finds one missing), and a job part
(`part=(k, n)`) always holds whole speakers.

Bad audio never stops the job: each failure is recorded against its utterance in the
returned BatchReport, and with per-speaker CMVN the speaker's statistics come from
its remaining utterances.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from speechunits.audio import AudioConfig, AudioLoader, audio_note
from speechunits.batch import BatchReport
from speechunits.data.datadir import DataDir
from speechunits.data.featdir import write_kaldi_ark
from speechunits.data.split import split_data_dir
from speechunits.errors import AudioError, SpeechUnitsError
from speechunits.fileio import write_lines
from speechunits.frontends.pipeline import FeaturePipeline
from speechunits.frontends.store import prepare_store

FORMATS = ("npy", "ark")


@dataclass
class FeatureJob:
    """Where audio comes from and how the job runs (not what the features are)."""

    base_dir: str | None = None  # anchors relative wav.scp paths (Kaldi: the current directory)
    allow_pipes: bool = False  # run `cmd |` wav.scp entries (they execute shell commands)
    resample: bool = False  # audio at another rate: resample it (True) or fail the utterance (False, as Kaldi)
    format: str = "npy"  # npy: <utt>.npy per utterance; ark: Kaldi feats.<k>.ark/.scp per part
    num_threads: int = 1  # utterance groups computed concurrently in this process
    overwrite: bool = False  # recompute (and replace) what OUT holds; else other settings in OUT are refused
    device: str = "cpu"


def _groups(datadir: DataDir, by_speaker: bool) -> list[list[str]]:
    """Units of work: whole speakers for per-speaker CMVN, else single utterances."""
    if by_speaker:
        return [utts for _, utts in sorted(datadir.spk2utt.items())]
    return [[u] for u in datadir.utts]


def job_part(datadir: DataDir, pipeline: FeaturePipeline, k: int, n: int) -> DataDir:
    """The k-th (1-based) of n parts; whole speakers when CMVN is per speaker."""
    if not 1 <= k <= n:
        raise ValueError(f"job part {k}/{n}: k must be in 1..{n}")
    by = "speaker" if pipeline.needs_speaker_pass else "utterance"
    return split_data_dir(datadir, n, by=by)[k - 1]


class _Computer:
    """Loads audio and runs the pipeline for one group of utterances."""

    def __init__(self, datadir: DataDir, pipeline: FeaturePipeline, job: FeatureJob):
        self.pipeline = pipeline.to(job.device)
        self.device = job.device
        config = AudioConfig(target_sr=pipeline.sample_rate, resample=job.resample, allow_pipes=job.allow_pipes)
        self.loader = AudioLoader(datadir.wav_scp, datadir.segments, base_dir=job.base_dir, config=config)
        self.utt2spk = datadir.utt2spk

    def features(self, utt: str, report: BatchReport) -> np.ndarray:
        if utt not in self.loader:
            raise AudioError("no entry in wav.scp (or segments) for this utterance", utt=utt)
        audio = self.loader.load(utt)
        note = audio_note(audio)
        if note:
            report.notes[utt] = note
        samples = torch.from_numpy(audio.samples).to(self.device)
        compute = self.pipeline.compute_static if self.pipeline.needs_speaker_pass else self.pipeline.compute
        feats = compute(samples).float().cpu().numpy()
        if not np.isfinite(feats).all():
            raise AudioError("features contain NaN or Inf", utt=utt, path=audio.source)
        return feats

    def group(self, utts: list[str], wanted: set[str]) -> tuple[dict[str, np.ndarray], BatchReport]:
        """Features of the `wanted` utterances of one group (all of it for speaker CMVN)."""
        report = BatchReport()
        need = utts if self.pipeline.needs_speaker_pass else [u for u in utts if u in wanted]
        feats: dict[str, np.ndarray] = {}
        for utt in need:
            with report.attempt(utt):
                feats[utt] = self.features(utt, report)
        if self.pipeline.needs_speaker_pass and feats:
            feats = {u: np.asarray(f) for u, f in self.pipeline.normalize_speakers(feats, self.utt2spk).items()}
        # utterances computed only for their speaker's statistics are not counted as done
        report.done = sum(1 for u in feats if u in wanted)
        report.failures = {u: m for u, m in report.failures.items() if u in wanted}
        report.notes = {u: m for u, m in report.notes.items() if u in wanted}
        return {u: f for u, f in feats.items() if u in wanted}, report


def compute_features(
    data_dir: str | os.PathLike | DataDir,
    out_dir: str | os.PathLike,
    pipeline: FeaturePipeline,
    job: FeatureJob | None = None,
    part: tuple[int, int] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Compute features for every utterance of `data_dir` (or of part k of n) into `out_dir`.

    `on_progress(n)` is called as utterances finish (for a progress bar). Returns the
    report of what was done, skipped (already there) and failed, per utterance.
    """
    job = job or FeatureJob()
    if job.format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {job.format!r}")
    datadir = data_dir if isinstance(data_dir, DataDir) else DataDir.read(data_dir)
    if not datadir.utts:
        raise SpeechUnitsError(f"{datadir.path or 'data dir'}: no utterances (utt2spk is empty)")
    if part is not None:
        datadir = job_part(datadir, pipeline, *part)
    settings = {**pipeline.describe(), "format": job.format}
    store = prepare_store(out_dir, settings, datadir.utts, overwrite=job.overwrite, whole=part is None,
                          ark_part=(part[0] if part else 1) if job.format == "ark" else None)
    report = BatchReport()

    if job.format == "ark":
        # an ark part is all or nothing: finished when its scp exists and no failure list does
        k = part[0] if part else 1
        ark, scp = Path(out_dir) / f"feats.{k}.ark", Path(out_dir) / f"feats.{k}.scp"
        failed = Path(out_dir) / f"feats.{k}.failed"
        if scp.exists() and not failed.exists():
            report.skipped = len(datadir.utts)
            return report

    def wanted_of(utts: list[str]) -> set[str]:
        """What to (re)write of a group. A speaker normalised with per-speaker CMVN is
        rewritten whole when any of its utterances is missing, so that all of them
        always share the same statistics."""
        missing = {u for u in utts if not store.has(u)}
        if job.format == "ark" or (missing and pipeline.needs_speaker_pass):
            return set(utts)
        return missing

    computer = _Computer(datadir, pipeline, job)
    results: dict[str, np.ndarray] = {}

    def run(utts: list[str]) -> tuple[dict[str, np.ndarray], BatchReport]:
        wanted = wanted_of(utts)
        if not wanted:
            return {}, BatchReport(skipped=len(utts))
        feats, rep = computer.group(utts, wanted)
        rep.skipped = len(utts) - len(wanted)
        if job.format == "npy":
            for utt, f in feats.items():
                store.save(utt, f)
            feats = {}
        return feats, rep

    groups = _groups(datadir, pipeline.needs_speaker_pass)
    with ThreadPoolExecutor(max(1, job.num_threads)) as pool:
        for feats, rep in pool.map(run, groups):
            report.merge(rep)
            results.update(feats)
            if on_progress:
                on_progress(rep.done + rep.skipped + len(rep.failures))

    if job.format == "ark":
        write_kaldi_ark(ark, scp, sorted(results.items()))
        if report.failures:
            write_lines(failed, (f"{u} {m}" for u, m in sorted(report.failures.items())))
        elif failed.exists():
            failed.unlink()
    return report


def combine_scp(out_dir: str | os.PathLike, parts: Iterable[int]) -> Path:
    """Concatenate feats.<k>.scp of the given parts into feats.scp, sorted."""
    out_dir = Path(out_dir)
    lines = []
    for k in parts:
        path = out_dir / f"feats.{k}.scp"
        if not path.is_file():
            raise SpeechUnitsError(f"{path}: missing; did job {k} fail?")
        lines += path.read_text().splitlines()
    write_lines(out_dir / "feats.scp", sorted(lines))
    return out_dir / "feats.scp"
