"""Feature front ends: waveform -> (B, T, D) features, Kaldi-compatible.

    from speechunits.frontends import build_frontend, FeaturePipeline
    fe = build_frontend("fbank", {"mel_opts": {"num_bins": 80}})
    feats = fe.compute(samples)                 # (T, 80); samples: float in [-1, 1)
    pipe = FeaturePipeline.from_preset("mfcc_dd")
    feats = pipe.compute(samples)               # (T, 39)

Importing this package registers every front end in FRONTENDS and every
feature preset in FEATURE_PRESETS.
"""

from speechunits.frontends.base import FRONTENDS, Features, FrontEnd, build_frontend
from speechunits.frontends.cmvn import (
    CmvnStats,
    apply_speaker_cmvn,
    speaker_cmvn_stats,
    utterance_cmvn,
)
from speechunits.frontends.deltas import DeltaConfig, Deltas, add_deltas
from speechunits.frontends.fbank import Fbank, FbankConfig
from speechunits.frontends.framing import FrameOptions
from speechunits.frontends.mel import MelOptions
from speechunits.frontends.mfcc import Mfcc, MfccConfig
from speechunits.frontends.pipeline import (
    FEATURE_PRESETS,
    FeaturePipeline,
    FeaturePipelineConfig,
    feature_preset,
)
from speechunits.frontends.waveform import Waveform, WaveformConfig

__all__ = [
    "FRONTENDS",
    "FEATURE_PRESETS",
    "CmvnStats",
    "DeltaConfig",
    "Deltas",
    "Fbank",
    "FbankConfig",
    "FeaturePipeline",
    "FeaturePipelineConfig",
    "Features",
    "FrameOptions",
    "FrontEnd",
    "MelOptions",
    "Mfcc",
    "MfccConfig",
    "Waveform",
    "WaveformConfig",
    "add_deltas",
    "apply_speaker_cmvn",
    "build_frontend",
    "feature_preset",
    "speaker_cmvn_stats",
    "utterance_cmvn",
]
