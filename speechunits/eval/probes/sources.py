"""Where the probes' filterbank targets come from.

The fbank target is the 80-bin log-mel frame. It is read from a feature dir when
one is given (or when the model's own input features are log-mel), and otherwise
computed from the audio of the data dir with the "fbank" preset (no CMVN: the
absolute spectrum is what a decoder has to reproduce).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from speechunits.data.featdir import FeatureDir, open_feature_source

log = logging.getLogger(__name__)

__all__ = ["InMemorySource", "fbank_source"]


class InMemorySource:
    """A FeatureSource over a dict of arrays."""

    def __init__(self, arrays: dict[str, np.ndarray], frame_shift: float):
        self.arrays, self.frame_shift = arrays, frame_shift

    def utts(self) -> list[str]:
        return sorted(self.arrays)

    def load(self, utt: str) -> np.ndarray:
        return self.arrays[utt]


def _is_logmel(path: Path) -> bool:
    if not path.is_dir():
        return False
    meta = FeatureDir(path).meta
    pipeline = meta.get("pipeline") or {}
    return pipeline.get("frontend") == "fbank" and not pipeline.get("deltas")


def fbank_source(
    fbank: str | os.PathLike | None,
    features: str | os.PathLike | None,
    data_dir: str | os.PathLike | None,
    utts: Iterable[str],
):
    """The log-mel source: `fbank` if given; else `features` if they are plain log-mel;
    else computed from `data_dir`'s audio for `utts`. Returns (source, description)."""
    if fbank is not None:
        return open_feature_source(fbank), str(fbank)
    if features is not None and _is_logmel(Path(features)):
        return open_feature_source(features), str(features)
    if data_dir is None:
        return None, None
    from speechunits.audio import AudioLoader
    from speechunits.frontends.pipeline import FeaturePipeline

    pipe = FeaturePipeline.from_preset("fbank")
    loader = AudioLoader.from_data_dir(data_dir)
    arrays = {}
    for utt in utts:
        audio = loader.load(utt, target_sr=pipe.sample_rate)
        arrays[utt] = np.asarray(pipe.compute(audio.samples), dtype=np.float32)
    log.info("computed 80-bin log-mel targets for %d utterances from %s", len(arrays), data_dir)
    return InMemorySource(arrays, pipe.frame_shift), f"fbank preset computed from {data_dir}"
