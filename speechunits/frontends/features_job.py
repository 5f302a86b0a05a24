"""The `speechunits features` job: a data dir's features into a feature store, resumably.

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
its remaining utterances. Splitting, resuming, batching and reporting are the
per-utterance job framework's (speechunits.jobs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from speechunits.audio import AudioConfig, AudioLoader, audio_note
from speechunits.batch import BatchReport
from speechunits.data.datadir import DataDir
from speechunits.data.featdir import FeatureDir, write_kaldi_ark
from speechunits.errors import AudioError, ConfigError, SpeechUnitsError
from speechunits.fileio import write_lines
from speechunits.frontends.pipeline import FeaturePipeline
from speechunits.frontends.store import prepare_store
from speechunits.jobs import Schedule, UtteranceJob, job_part, run_job, utterance_groups

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


def feature_groups(datadir: DataDir, pipeline: FeaturePipeline) -> list[list[str]]:
    """Units of work: whole speakers (sorted) for per-speaker CMVN, else single utterances."""
    if pipeline.needs_speaker_pass:
        return [utts for _, utts in sorted(datadir.spk2utt.items())]
    return utterance_groups(datadir.utts)


class _FeaturesJob(UtteranceJob):
    """Loads audio and runs the pipeline per utterance; per-speaker CMVN over a speaker's batch."""

    def __init__(self, datadir: DataDir, pipeline: FeaturePipeline, job: FeatureJob, store: FeatureDir):
        self.pipeline = pipeline.to(job.device)
        self.device = job.device
        config = AudioConfig(target_sr=pipeline.sample_rate, resample=job.resample, allow_pipes=job.allow_pipes)
        self.loader = AudioLoader(datadir.wav_scp, datadir.segments, base_dir=job.base_dir, config=config)
        self.utt2spk = datadir.utt2spk
        self.store = store
        self.ark = job.format == "ark"
        self.in_memory: dict[str, np.ndarray] = {}  # format ark: written at the end

    def finished(self, utt: str) -> bool:
        return not self.ark and self.store.has(utt)  # an ark part is redone whole

    def prepare(self, utt: str, report: BatchReport) -> np.ndarray:
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

    def process(self, items: dict[str, np.ndarray]) -> list[np.ndarray]:
        if not self.pipeline.needs_speaker_pass:
            return list(items.values())
        done = self.pipeline.normalize_speakers(items, self.utt2spk)
        return [np.asarray(done[u]) for u in items]

    def write(self, utt: str, feats: np.ndarray) -> None:
        if self.ark:
            self.in_memory[utt] = feats
        else:
            self.store.save(utt, feats)


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
        raise ConfigError(f"format must be one of {FORMATS}, got {job.format!r}")
    datadir = data_dir if isinstance(data_dir, DataDir) else DataDir.read(data_dir)
    if not datadir.utts:
        raise SpeechUnitsError(f"{datadir.path or 'data dir'}: no utterances (utt2spk is empty)")
    if part is not None:
        datadir = datadir.subset(job_part(feature_groups(datadir, pipeline), *part))
    settings = {**pipeline.describe(), "format": job.format}
    k = part[0] if part else 1
    store = prepare_store(out_dir, settings, datadir.utts, overwrite=job.overwrite, whole=part is None,
                          ark_part=k if job.format == "ark" else None)

    ark, scp = Path(out_dir) / f"feats.{k}.ark", Path(out_dir) / f"feats.{k}.scp"
    failed = Path(out_dir) / f"feats.{k}.failed"
    if job.format == "ark" and scp.exists() and not failed.exists():
        # an ark part is all or nothing: finished when its scp exists and no failure list does
        return BatchReport(skipped=len(datadir.utts))

    features = _FeaturesJob(datadir, pipeline, job, store)
    report = run_job(features, feature_groups(datadir, pipeline), Schedule(threads=max(1, job.num_threads)),
                     on_progress=on_progress)
    if job.format == "ark":
        write_kaldi_ark(ark, scp, sorted(features.in_memory.items()))
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
