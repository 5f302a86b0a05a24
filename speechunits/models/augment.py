"""Vocal-tract-length perturbation of log-mel input frames (training only).

    feats (B, T, F) log-mel --FrequencyWarp--> the same utterances as if spoken by a
                                              longer or shorter vocal tract

Formant frequencies scale roughly with the inverse of the vocal tract's length, so a
child's formants sit up to ~30 % above an adult man's. Each training crop gets a
factor alpha, log-uniform in [exp(-max_log_factor), exp(max_log_factor)], and its
spectrum is warped as S'(f) = S(f / alpha): bin j, centred at f_j on Kaldi's mel
scale, takes the value at f_j / alpha, linearly interpolated between the
neighbouring bins (clamped at the edges). Predicting the same targets from warped
inputs teaches the encoder to ignore where the formants of a speaker sit, which is
most of what separates the speakers of a children-and-adults corpus (Jaitly and
Hinton 2013 use the same perturbation as VTLP). At inference (eval mode) or with
max_log_factor 0 the frames pass unchanged.

Pitch-aware perturbation (`pitch_max_log_factor` > 0): the warp moves formants and
harmonics together, as a longer or shorter vocal tract with the same larynx does not.
Each frame is split into its envelope, the first `lifter` coefficients of an orthonormal
DCT over the bins (what MFCCs keep), and the fine structure that remains (the harmonics
of the pitch, below about 2 kHz where the mel bins resolve them). The envelope is warped
by alpha, the fine structure by an independent factor beta drawn the same way, so that
a crop's pitch moves apart from its formants: S' = warp(E, alpha) + warp(S - E, beta).
With beta = alpha this is the plain warp (the split is linear).

Non-uniform warp (`slope_max_log_factor` > 0): speakers' formants do not all scale by one
factor (a child's F1 sits relatively less far above an adult's than its F2 and F3; the
pharynx and the mouth cavity differ in length by different ratios). Each crop also gets a
slope b, uniform in [-s, s], and the log factor varies linearly along the mel scale:
log alpha_j = a + b * u_j, with u_j running from -1 at the lowest bin to +1 at the
highest, so the low bins move by exp(a - b) and the high ones by exp(a + b). For
|b| <= 0.5 and mel ranges that start below about 2.5 kHz (Kaldi's 20 Hz, or 0) the warp
stays monotone (the bins keep their order).

The bin centres follow the front end that made the features: `num_bins` (the model's
input_dim), `low_freq` and `high_freq` in Hz (Kaldi's defaults for 16 kHz: 20 and 8000).

    feats (B, T, F) --BandMasking--> the same with `count` bands of bins set to 0

Band masking (SpecAugment's frequency masks, Park et al. 2019): each training crop gets
`count` bands, each of a width drawn uniformly from 0..max_width bins at a uniform
start, set to 0 on every frame: the mean, for log-mel features with speaker (or
utterance) mean normalisation, as the masked pipeline reads; for other input the
"bins" are whatever the feature dimensions are. The targets stay those of the whole
spectrum, so no single formant region may carry a prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError

__all__ = ["WarpConfig", "FrequencyWarp", "BandMaskingConfig", "BandMasking", "mel_bin_centres", "envelope_projector"]


@dataclass
class WarpConfig:
    max_log_factor: float = 0.0  # alpha = exp(U(-m, m)); 0.2 gives factors in [0.82, 1.22]; 0: off
    low_freq: float = 20.0  # Hz, the mel banks' lower edge
    high_freq: float = 8000.0  # Hz, the mel banks' upper edge
    pitch_max_log_factor: float = 0.0  # beta = exp(U(-p, p)) for the fine structure (pitch); 0: off
    lifter: int = 16  # DCT coefficients that make the envelope (13 on 23 bins is MFCC's smoothing)
    slope_max_log_factor: float = 0.0  # b = U(-s, s): log alpha runs from a - b (lowest bin) to a + b (highest); 0: off

    def __post_init__(self):
        if not 0.0 <= self.max_log_factor <= 1.0:
            raise SpeechUnitsError(f"warp.max_log_factor must be in [0, 1], got {self.max_log_factor}")
        if not 0.0 <= self.low_freq < self.high_freq:
            raise SpeechUnitsError(f"warp: need 0 <= low_freq < high_freq, got {self.low_freq}, {self.high_freq}")
        if not 0.0 <= self.pitch_max_log_factor <= 1.0:
            raise SpeechUnitsError(f"warp.pitch_max_log_factor must be in [0, 1], got {self.pitch_max_log_factor}")
        if not 0.0 <= self.slope_max_log_factor <= 0.5:
            raise SpeechUnitsError(f"warp.slope_max_log_factor must be in [0, 0.5], got {self.slope_max_log_factor}")
        if self.slope_max_log_factor > 0 and self.max_log_factor <= 0:
            raise SpeechUnitsError(
                "warp.slope_max_log_factor > 0 needs warp.max_log_factor > 0: the slope spreads the factor that max_log_factor draws"
            )
        if self.lifter < 1:
            raise SpeechUnitsError(f"warp.lifter must be >= 1, got {self.lifter}")


def _mel(f: Tensor) -> Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


def _inverse_mel(m: Tensor) -> Tensor:
    return 700.0 * (torch.exp(m / 1127.0) - 1.0)


def mel_bin_centres(num_bins: int, low_freq: float, high_freq: float) -> Tensor:
    """(num_bins,) float64 centre frequencies in Hz of Kaldi's mel triangles."""
    lo, hi = _mel(torch.tensor(low_freq, dtype=torch.float64)), _mel(torch.tensor(high_freq, dtype=torch.float64))
    step = (hi - lo) / (num_bins + 1)
    return _inverse_mel(lo + step * torch.arange(1, num_bins + 1, dtype=torch.float64))


def envelope_projector(num_bins: int, lifter: int) -> Tensor:
    """(F, F) float64 symmetric P: frames (..., F) @ P keep their first `lifter` orthonormal
    DCT-II coefficients over the bins (the cepstrally smoothed envelope)."""
    n = torch.arange(num_bins, dtype=torch.float64)
    k = torch.arange(min(lifter, num_bins), dtype=torch.float64)[:, None]
    basis = torch.cos(torch.pi * k * (n + 0.5) / num_bins) * (2.0 / num_bins) ** 0.5  # (L, F)
    basis[0] /= 2.0**0.5
    return basis.T @ basis


class FrequencyWarp(nn.Module):
    def __init__(self, num_bins: int, cfg: WarpConfig):
        super().__init__()
        self.cfg, self.num_bins = cfg, int(num_bins)
        if (cfg.max_log_factor > 0 or cfg.pitch_max_log_factor > 0) and self.num_bins < 2:
            raise SpeechUnitsError("frequency warping needs log-mel input frames (input_dim >= 2)")
        lo = _mel(torch.tensor(cfg.low_freq, dtype=torch.float64))
        hi = _mel(torch.tensor(cfg.high_freq, dtype=torch.float64))
        self._mel_lo, self._mel_step = float(lo), float((hi - lo) / (self.num_bins + 1))
        self.register_buffer("centres", mel_bin_centres(self.num_bins, cfg.low_freq, cfg.high_freq).float(), persistent=False)
        if cfg.pitch_max_log_factor > 0:
            self.register_buffer("envelope", envelope_projector(self.num_bins, cfg.lifter).float(), persistent=False)

    @property
    def active(self) -> bool:
        return self.training and (self.cfg.max_log_factor > 0 or self.cfg.pitch_max_log_factor > 0)

    def source_positions(self, alpha: Tensor) -> Tensor:
        """(B,) factors, or (B, F) one per output bin -> (B, F) fractional bin index each
        output bin reads from."""
        alpha = alpha.double()
        src = self.centres.double()[None, :] / (alpha[:, None] if alpha.dim() == 1 else alpha)
        pos = (_mel(src) - self._mel_lo) / self._mel_step - 1.0
        return pos.clamp(0, self.num_bins - 1).float()

    def bin_factors(self, alpha: Tensor, slope: Tensor) -> Tensor:
        """alpha, slope (B,) -> (B, F) factors: log alpha_j = log alpha + slope * u_j, u_j
        from -1 (lowest bin) to +1 (highest) evenly over the bins (the mel scale)."""
        u = torch.linspace(-1.0, 1.0, self.num_bins, dtype=torch.float64, device=alpha.device)
        return torch.exp(alpha.double().log()[:, None] + slope.double().to(alpha.device)[:, None] * u)

    def warp(self, feats: Tensor, alpha: Tensor) -> Tensor:
        """feats (B, T, F) log-mel, alpha (B,) or (B, F) -> (B, T, F) with S'(f_j) = S(f_j / alpha_j)."""
        pos = self.source_positions(alpha.to(feats.device))
        i0 = pos.floor().long().clamp(0, self.num_bins - 2)
        w = (pos - i0).to(feats.dtype)[:, None, :]
        idx0 = i0[:, None, :].expand(-1, feats.shape[1], -1)
        left = torch.gather(feats, 2, idx0)
        right = torch.gather(feats, 2, idx0 + 1)
        return left + (right - left) * w

    def warp_apart(self, feats: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
        """feats (B, T, F) log-mel, alpha (B,) or (B, F), beta (B,) -> (B, T, F): the envelope
        warped by alpha, the fine structure (pitch harmonics) by beta."""
        envelope = feats @ self.envelope.to(feats.dtype)
        return self.warp(envelope, alpha) + self.warp(feats - envelope, beta)

    def forward(self, feats: Tensor) -> Tensor:
        """feats (B, T, F) -> warped frames in training, unchanged otherwise (or for (B, N) waveforms)."""
        if not self.active or feats.dim() != 3:
            return feats
        m = self.cfg.max_log_factor
        alpha = torch.exp(torch.empty(feats.shape[0]).uniform_(-m, m)).to(feats.device)
        if self.cfg.slope_max_log_factor > 0:
            s = self.cfg.slope_max_log_factor
            alpha = self.bin_factors(alpha, torch.empty(feats.shape[0]).uniform_(-s, s))
        if self.cfg.pitch_max_log_factor <= 0:
            return self.warp(feats, alpha)
        p = self.cfg.pitch_max_log_factor
        beta = torch.exp(torch.empty(feats.shape[0]).uniform_(-p, p)).to(feats.device)
        return self.warp_apart(feats, alpha, beta)



@dataclass
class BandMaskingConfig:
    count: int = 0  # bands per crop (0: off)
    max_width: int = 0  # a band covers 0..max_width bins, uniformly

    def __post_init__(self):
        if self.count < 0 or self.max_width < 0:
            raise SpeechUnitsError(f"band_masking: need count >= 0 and max_width >= 0, got {self.count}, {self.max_width}")


class BandMasking(nn.Module):
    def __init__(self, num_bins: int, cfg: BandMaskingConfig):
        super().__init__()
        self.cfg, self.num_bins = cfg, int(num_bins)
        if cfg.count > 0 and not 0 < cfg.max_width < self.num_bins:
            raise SpeechUnitsError(
                f"band_masking.max_width must be in 1..{self.num_bins - 1} (the input has {self.num_bins} bins), "
                f"got {cfg.max_width}"
            )

    @property
    def active(self) -> bool:
        return self.training and self.cfg.count > 0

    def draw(self, batch: int) -> Tensor:
        """(B, F) bool: True on the bins masked in each crop (torch's global generator)."""
        width = torch.randint(0, self.cfg.max_width + 1, (batch, self.cfg.count))
        start = (torch.rand(batch, self.cfg.count) * (self.num_bins - width + 1)).long()
        bins = torch.arange(self.num_bins)[None, None, :]
        return ((bins >= start[..., None]) & (bins < (start + width)[..., None])).any(1)

    def forward(self, feats: Tensor) -> Tensor:
        """feats (B, T, F) -> masked bands set to 0 in training, unchanged otherwise (or for (B, N) waveforms)."""
        if not self.active or feats.dim() != 3:
            return feats
        return feats.masked_fill(self.draw(feats.shape[0]).to(feats.device)[:, None, :], 0.0)
