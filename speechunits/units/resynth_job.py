"""The `speechunits resynth` job: unit files in, one WAV file per utterance out.

    inputs = load_unit_inputs("units/test")             # {utt: UnitSequence}
    report = resynthesize(Resynthesizer.from_checkpoint(ckpt), inputs, "resynth/",
                          ResynthOptions(speaker="spk03"))

Writes OUT/<utt>.wav (16-bit PCM, atomically), OUT/frames/<utt>.npy for the
filterbank decoder (its predicted log-mel frames, with frames/frame_shift), and
OUT/resynth.json (model, speaker, sampling settings, vocoder). Utterances are
decoded in batches of similar length (WaveNet generation costs the same per step
for every utterance of a batch, so similar lengths waste the least); a failure is
recorded against its utterance and the job carries on (speechunits.jobs: a failed
batch is decoded again one utterance at a time). Nothing is skipped on a rerun:
sampling draws from one generator across batches, so every utterance is decoded
again and the outputs stay those of one uninterrupted run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from speechunits.batch import BatchReport
from speechunits.data.featdir import FeatureDir, open_feature_source
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import atomic_open, write_json
from speechunits.jobs import Schedule, UtteranceJob, run_job
from speechunits.units.formats import UnitSequence, read_units
from speechunits.units.resynth import Resynthesizer

__all__ = ["ResynthOptions", "load_unit_inputs", "resynthesize", "write_wav"]


@dataclass
class ResynthOptions:
    speaker: str | None = None
    batch_size: int = 8
    temperature: float = 1.0
    greedy: bool = False
    seed: int = 0
    model: str = ""  # recorded in resynth.json


def write_wav(path: str | os.PathLike, waveform: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM WAV, written atomically (samples clipped to [-1, 1))."""
    import soundfile as sf

    data = np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 32767 / 32768)
    with atomic_open(path, "wb") as f:
        sf.write(f, data, int(sample_rate), format="WAV", subtype="PCM_16")


def load_unit_inputs(path: str | os.PathLike, continuous: bool = False) -> dict[str, UnitSequence | np.ndarray]:
    """What to decode, by utterance: unit sequences (discrete models), or for a continuous
    bottleneck the dense latents of an extract folder made with --tap bottleneck."""
    if not continuous:
        return dict(read_units(path))
    folder = Path(path)
    settings = folder / "extract.json"
    if not settings.is_file():
        raise SpeechUnitsError(
            f"{folder}: a continuous bottleneck is decoded from its latents: give a `speechunits extract` output "
            "folder made with --tap bottleneck"
        )
    made = json.loads(settings.read_text())
    tap = made.get("tap")
    if tap != "bottleneck":
        raise SpeechUnitsError(f"{folder}: extracted from the {tap!r} tap; decoding needs --tap bottleneck")
    for key, option in (("readout", "--readout"), ("dense_deltas", "--deltas")):
        if made.get(key):
            raise SpeechUnitsError(f"{folder}: extracted with {option}, so dense/ is not the latents the decoder "
                                   f"takes; extract again without it")
    dense = folder / "dense"
    source = open_feature_source(dense / "feats.scp" if (dense / "feats.scp").is_file() else dense)
    return {u: source.load(u) for u in source.utts()}


def _frames(item) -> int:
    return item.num_frames if isinstance(item, UnitSequence) else int(np.asarray(item).shape[0])


class _ResynthJob(UtteranceJob):
    """Units (or latents) in memory, a batch decoded at a time, OUT/<utt>.wav (and frames) out."""

    def __init__(self, rs: Resynthesizer, inputs: Mapping[str, UnitSequence | np.ndarray], out: Path,
                 options: ResynthOptions):
        self.rs, self.inputs, self.out, self.options = rs, inputs, out, options
        self.frames_dir = FeatureDir(out / "frames")
        self.generator = torch.Generator().manual_seed(int(options.seed))

    def prepare(self, utt: str, report: BatchReport):
        return self.inputs[utt]

    def process(self, items: dict[str, UnitSequence | np.ndarray]):
        batch = list(items.values())
        kwargs = dict(temperature=self.options.temperature, greedy=self.options.greedy, generator=self.generator)
        if all(isinstance(x, UnitSequence) for x in batch):
            return self.rs.synthesize(batch, self.options.speaker, **kwargs)
        return self.rs.synthesize_latents(batch, self.options.speaker, **kwargs)

    def write(self, utt: str, syn) -> None:
        if syn.frames is not None:
            self.frames_dir.save(utt, syn.frames)
        write_wav(self.out / f"{utt}.wav", syn.waveform, syn.sample_rate)


def resynthesize(
    rs: Resynthesizer,
    inputs: Mapping[str, UnitSequence | np.ndarray],
    out_dir: str | os.PathLike,
    options: ResynthOptions | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Decode every input into OUT/<utt>.wav (see the module docstring)."""
    options = options or ResynthOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "resynth.json", {**asdict(options), "vocoder": rs.vocoder, "sample_rate": rs.sample_rate})
    job = _ResynthJob(rs, inputs, out, options)
    if rs.kind == "frames":
        job.frames_dir.write_meta(frame_shift=1.0 / rs.model.decoder.target_rate, what="predicted decoder frames")
    order = sorted(inputs, key=lambda u: (-_frames(inputs[u]), u))
    return run_job(job, [[u] for u in order], Schedule(batch_size=max(1, int(options.batch_size))), on_progress)
