"""MFCCs, Kaldi-compatible (compute-mfcc-feats / kaldi-native-fbank).

log mel energies -> DCT-II (orthonormal, first num_ceps rows) -> cepstral liftering
(1 + Q/2 sin(pi i / Q)) -> C0 replaced by the log frame energy if use_energy. The
lifter (and, for htk_compat, the reordering and the sqrt(2) on C0) is folded into
one (num_bins, D) matrix, so a frame costs a single small matmul after the mel bank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from speechunits.frontends.base import FRONTENDS
from speechunits.frontends.framing import FrameOptions
from speechunits.frontends.mel import MelFilterbank, MelOptions, kaldi_mel_banks
from speechunits.frontends.spectral import FLOAT_EPS, KaldiSpectralFrontEnd
from speechunits.errors import ConfigError


@dataclass
class MfccConfig:
    """Kaldi MFCC options (same names and defaults, except FrameOptions' documented ones).

    use_energy: C0 is replaced by the log frame energy (raw_energy: measured before
    pre-emphasis and windowing); energy_floor: floor on it (0: none);
    htk_compat: C0/energy goes last (C0 scaled by sqrt(2) when not use_energy);
    cepstral_lifter: Q of the lifter, 0 for none.
    """

    frame_opts: FrameOptions = field(default_factory=FrameOptions)
    mel_opts: MelOptions = field(default_factory=MelOptions)
    num_ceps: int = 13
    use_energy: bool = True
    energy_floor: float = 0.0
    raw_energy: bool = True
    cepstral_lifter: float = 22.0
    htk_compat: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.num_ceps <= self.mel_opts.num_bins:
            raise ConfigError(f"num_ceps must be in [1, num_bins={self.mel_opts.num_bins}], got {self.num_ceps}")


def dct_matrix(num_ceps: int, num_bins: int) -> np.ndarray:
    """Kaldi's DCT: rows k < num_ceps of the orthonormal DCT-II on num_bins points, float64."""
    k = np.arange(num_ceps, dtype=np.float64)[:, None]
    n = np.arange(num_bins, dtype=np.float64)[None, :]
    m = np.sqrt(2.0 / num_bins) * np.cos(math.pi / num_bins * (n + 0.5) * k)
    m[0, :] = np.sqrt(1.0 / num_bins)
    return m


def lifter_coeffs(num_ceps: int, q: float) -> np.ndarray:
    """Kaldi's cepstral lifter 1 + Q/2 sin(pi i / Q); ones when Q == 0."""
    i = np.arange(num_ceps, dtype=np.float64)
    return np.ones(num_ceps) if q == 0 else 1.0 + 0.5 * q * np.sin(math.pi * i / q)


@FRONTENDS.register("mfcc")
class Mfcc(KaldiSpectralFrontEnd):
    """Waveform -> MFCC: `(B, N) -> (B, T, num_ceps)`."""

    config_class = MfccConfig

    def __init__(self, config: MfccConfig | None = None):
        config = config or MfccConfig()
        super().__init__(config.frame_opts, need_energy=config.use_energy, raw_energy=config.raw_energy)
        self.config = config
        self.mel = MelFilterbank(kaldi_mel_banks(config.mel_opts, config.frame_opts))
        self.log_energy_floor = float(np.log(np.float32(config.energy_floor))) if config.energy_floor > 0 else None
        # (num_ceps, num_bins): DCT rows scaled by the lifter, in output order
        m = dct_matrix(config.num_ceps, config.mel_opts.num_bins) * lifter_coeffs(
            config.num_ceps, config.cepstral_lifter
        )[:, None]
        self.energy_index = 0
        if config.htk_compat:
            if not config.use_energy:
                m[0] *= math.sqrt(2.0)
            m = np.concatenate([m[1:], m[:1]])
            self.energy_index = config.num_ceps - 1
        self.register_buffer("cepstra", torch.from_numpy(m.T.astype(np.float32).copy()), persistent=False)

    @property
    def feature_dim(self) -> int:
        return self.config.num_ceps

    def _frame_features(self, power: torch.Tensor, log_energy: torch.Tensor | None, out: torch.Tensor) -> None:
        logmel = self.mel(power).clamp_min_(FLOAT_EPS).log_()
        torch.matmul(logmel, self.cepstra, out=out)
        if self.config.use_energy:
            if self.log_energy_floor is not None:
                log_energy.clamp_min_(self.log_energy_floor)
            out[:, self.energy_index] = log_energy
