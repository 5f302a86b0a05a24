"""A named feature type: front end -> CMVN -> deltas, as `speechunits features` computes it.

    pipe = FeaturePipeline.from_preset("mfcc_dd")        # 13 MFCC + deltas + delta-deltas
    feats = pipe.compute(samples)                          # (T, 39), float in [-1, 1) in

Kaldi's order: CMVN normalises the static features, then the deltas are added
(apply-cmvn | add-deltas), so the delta dimensions are never mean-shifted. Per-speaker
CMVN needs all of a speaker's utterances, so it is two passes:

    static = {utt: pipe.compute_static(x) for utt, x in audio.items()}   # (T, 13)
    feats = pipe.normalize_speakers(static, utt2spk)                     # {utt: (T, 39)}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from speechunits.config import OMIT_IF_DEFAULT, apply_overrides, from_dict, to_dict
from speechunits.frontends.base import Features, build_frontend, compute_one
from speechunits.frontends.cmvn import CmvnStats, speaker_cmvn_stats, utterance_cmvn
from speechunits.frontends.deltas import DeltaConfig, Deltas, check_balance, rebalance_deltas
from speechunits.registry import Registry
from speechunits.errors import ConfigError

CMVN_MODES = ("none", "utterance", "speaker")


@dataclass
class FeaturePipelineConfig:
    """frontend: a FRONTENDS name; frontend_config: its config as a dict (defaults if empty);
    deltas: 0 none, 1 deltas, 2 deltas + delta-deltas (Kaldi add-deltas), over delta_window
    frames each side; delta_balance: when > 0, the deltas (all orders by one factor) scaled per
    utterance so that their RMS is this times the statics' (deltas.rebalance_deltas; 0: Kaldi's
    unscaled deltas); cmvn: none | utterance | speaker; norm_vars: also normalise variances."""

    frontend: str = "mfcc"
    frontend_config: dict = field(default_factory=dict)
    deltas: int = 0
    delta_window: int = 2
    delta_balance: float = field(default=0.0, metadata=OMIT_IF_DEFAULT)  # left out of records while 0
    cmvn: str = "none"
    norm_vars: bool = False

    def __post_init__(self) -> None:
        if self.cmvn not in CMVN_MODES:
            raise ConfigError(f"cmvn must be one of {', '.join(CMVN_MODES)}, got {self.cmvn!r}")
        if self.deltas < 0:
            raise ConfigError(f"deltas (the delta order) must be >= 0, got {self.deltas}")
        check_balance(self.delta_balance, "delta_balance")
        if self.delta_balance and not self.deltas:
            raise ConfigError("delta_balance scales the deltas: set deltas (the delta order) too")


def pipeline_config_from_dict(data: Mapping | None, where: str = "feature pipeline") -> FeaturePipelineConfig | None:
    """A recorded pipeline (a feature dir's meta.json "pipeline", a run's data.input_features)
    as a FeaturePipelineConfig; None when nothing is recorded (None or empty)."""
    if not data:
        return None
    return from_dict(FeaturePipelineConfig, dict(data), where=where)


FEATURE_PRESETS = Registry("feature type")


@FEATURE_PRESETS.register("fbank")
def _fbank() -> FeaturePipelineConfig:
    """80 log-mel bins, 20 Hz to Nyquist, 25 ms / 10 ms, no energy (the usual model input)."""
    return FeaturePipelineConfig("fbank", {"mel_opts": {"num_bins": 80}})


@FEATURE_PRESETS.register("mfcc")
def _mfcc() -> FeaturePipelineConfig:
    """13 MFCC, Kaldi defaults (23 mel bins, C0 = log energy, lifter 22)."""
    return FeaturePipelineConfig("mfcc")


@FEATURE_PRESETS.register("mfcc_dd")
def _mfcc_dd() -> FeaturePipelineConfig:
    """13 MFCC + deltas + delta-deltas = 39 dims: the WaveNet autoencoder paper's input."""
    return FeaturePipelineConfig("mfcc", deltas=2)


@FEATURE_PRESETS.register("waveform")
def _waveform() -> FeaturePipelineConfig:
    """Raw samples, (N, 1) at 16 kHz."""
    return FeaturePipelineConfig("waveform")


def feature_preset(name: str, overrides: Iterable[str] = ()) -> FeaturePipelineConfig:
    """The preset `name` with dotted overrides, e.g. ["cmvn=speaker", "frontend_config.mel_opts.num_bins=40"]."""
    return apply_overrides(FEATURE_PRESETS.get(name)(), list(overrides))


class FeaturePipeline(nn.Module):
    """Waveform -> finished features: `(B, N) -> (B, T, D)`.

    Applies the front end, the deltas and per-utterance CMVN; per-speaker CMVN needs
    all of a speaker's utterances and is the separate second pass `normalize_speakers`.
    """

    def __init__(self, config: FeaturePipelineConfig | None = None):
        super().__init__()
        self.config = config = config or FeaturePipelineConfig()
        self.frontend = build_frontend(config.frontend, config.frontend_config or None)
        self.deltas = Deltas(DeltaConfig(config.deltas, config.delta_window)) if config.deltas else None

    @classmethod
    def from_preset(cls, name: str, overrides: Iterable[str] = ()) -> "FeaturePipeline":
        return cls(feature_preset(name, overrides))

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    @property
    def frame_shift(self) -> float:
        return self.frontend.frame_shift

    @property
    def feature_dim(self) -> int:
        d = self.frontend.feature_dim
        return self.deltas.output_dim(d) if self.deltas is not None else d

    def num_frames(self, num_samples):
        return self.frontend.num_frames(num_samples)

    @property
    def needs_speaker_pass(self) -> bool:
        return self.config.cmvn == "speaker"

    @torch.no_grad()
    def static(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> Features:
        """The front end alone: waveform (B, N) -> static features (B, T, D0)."""
        return self.frontend(waveform, lengths)

    @torch.no_grad()
    def finish(self, static: Features, stats: CmvnStats | None = None) -> Features:
        """CMVN (per utterance, or with the given speaker `stats`), then deltas: (B, T, D0) -> (B, T, D)."""
        feats = static.feats
        if stats is not None:
            feats = stats.apply(feats, self.config.norm_vars)
        elif self.config.cmvn == "utterance":
            feats = utterance_cmvn(feats, static.lengths, self.config.norm_vars)
        if self.deltas is not None:
            statics = feats.shape[-1]
            feats = self.deltas(feats, static.lengths)
            if self.config.delta_balance:
                feats = rebalance_deltas(feats, statics, self.config.delta_balance, static.lengths)
        return Features(feats, static.lengths, static.frame_shift)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> Features:
        """waveform: (B, N) float in [-1, 1), lengths: (B,) samples -> Features (B, T, D).

        With cmvn == "speaker" this leaves the statics unnormalised: use
        `compute_static` and `normalize_speakers` for that.
        """
        return self.finish(self.static(waveform, lengths))

    def compute(self, waveform):
        """One utterance `(N,)` -> `(T, D)`; numpy in -> numpy out, tensor in -> tensor out."""
        return compute_one(self, waveform)

    def compute_static(self, waveform):
        """One utterance `(N,)` -> static features `(T, D0)`, the first pass of per-speaker CMVN."""
        return compute_one(self.frontend, waveform)

    def normalize_speakers(
        self,
        static: Mapping[str, object],
        utt2spk: Mapping[str, str],
        stats: Mapping[str, CmvnStats] | None = None,
    ) -> dict[str, object]:
        """Second pass of cmvn == "speaker": {utt: static (T, D0)} -> {utt: finished (T, D)}.

        Statistics are accumulated over each speaker's utterances in `static`
        (or given), applied to the statics, and the deltas added after.
        """
        if not self.needs_speaker_pass:
            raise ConfigError("normalize_speakers is the second pass of cmvn=speaker; this pipeline has cmvn="
                             f"{self.config.cmvn}")
        stats = dict(stats) if stats is not None else speaker_cmvn_stats(static, utt2spk)
        out = {}
        for utt, x in static.items():
            t = torch.as_tensor(x)
            one = Features(t.unsqueeze(0), torch.tensor([t.shape[0]]), self.frame_shift)
            feats = self.finish(one, stats[utt2spk[utt]]).feats[0]
            out[utt] = feats.cpu().numpy() if isinstance(x, np.ndarray) else feats
        return out

    def describe(self) -> dict:
        """What to record beside stored features (e.g. in meta.json)."""
        return {
            "frame_shift": self.frame_shift,
            "feature_dim": self.feature_dim,
            "sample_rate": self.sample_rate,
            "pipeline": to_dict(self.config),
        }
