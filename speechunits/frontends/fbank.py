"""Log-mel filterbank features, Kaldi-compatible (compute-fbank-feats / kaldi-native-fbank)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from speechunits.frontends.base import FRONTENDS
from speechunits.frontends.framing import FrameOptions
from speechunits.frontends.mel import MelFilterbank, MelOptions, kaldi_mel_banks
from speechunits.frontends.spectral import FLOAT_EPS, KaldiSpectralFrontEnd


@dataclass
class FbankConfig:
    """Kaldi fbank options (same names and defaults, except FrameOptions' documented ones).

    use_energy: prepend the log frame energy (appended if htk_compat);
    raw_energy: that energy is measured before pre-emphasis and windowing;
    energy_floor: floor on the energy (0: none);
    use_log_fbank: log of the mel energies (floored at FLT_EPSILON);
    use_power: mel of the power spectrum (else of the magnitude).
    """

    frame_opts: FrameOptions = field(default_factory=FrameOptions)
    mel_opts: MelOptions = field(default_factory=MelOptions)
    use_energy: bool = False
    energy_floor: float = 0.0
    raw_energy: bool = True
    htk_compat: bool = False
    use_log_fbank: bool = True
    use_power: bool = True


@FRONTENDS.register("fbank")
class Fbank(KaldiSpectralFrontEnd):
    """Waveform -> log-mel filterbank: `(B, N) -> (B, T, num_bins [+1])`."""

    config_class = FbankConfig

    def __init__(self, config: FbankConfig | None = None):
        config = config or FbankConfig()
        super().__init__(config.frame_opts, need_energy=config.use_energy, raw_energy=config.raw_energy)
        self.config = config
        self.mel = MelFilterbank(kaldi_mel_banks(config.mel_opts, config.frame_opts))
        self.log_energy_floor = float(np.log(np.float32(config.energy_floor))) if config.energy_floor > 0 else None

    @property
    def feature_dim(self) -> int:
        return self.config.mel_opts.num_bins + int(self.config.use_energy)

    def _frame_features(self, power: torch.Tensor, log_energy: torch.Tensor | None, out: torch.Tensor) -> None:
        cfg = self.config
        num_bins = cfg.mel_opts.num_bins
        if not cfg.use_power:
            power.sqrt_()
        first = 1 if (cfg.use_energy and not cfg.htk_compat) else 0
        mel = self.mel(power)
        if cfg.use_log_fbank:
            mel.clamp_min_(FLOAT_EPS).log_()
        out[:, first : first + num_bins] = mel
        if cfg.use_energy:
            if self.log_energy_floor is not None:
                log_energy.clamp_min_(self.log_energy_floor)
            out[:, num_bins if cfg.htk_compat else 0] = log_energy
