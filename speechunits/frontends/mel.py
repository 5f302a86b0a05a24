"""Kaldi's triangular mel filterbank, and a fast way to apply it.

Kaldi places `num_bins` triangles evenly on the mel scale mel(f) = 1127 ln(1 + f/700)
between low_freq and high_freq; triangle j rises from mel_low + j*delta to its peak
at mel_low + (j+1)*delta and falls to zero at mel_low + (j+2)*delta, with
delta = (mel_high - mel_low) / (num_bins + 1). Weights are evaluated at the FFT bin
centres k * samp_freq / n_fft for k < n_fft / 2 (the Nyquist bin gets no weight).
Computed in float32 as Kaldi does, so the weights agree with it bit for bit or nearly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from speechunits.frontends.framing import FrameOptions
from speechunits.errors import ConfigError


@dataclass
class MelOptions:
    """Mel filterbank options (Kaldi names and defaults; no VTLN).

    high_freq: 0 means the Nyquist frequency; a negative value is an offset from it.
    """

    num_bins: int = 23
    low_freq: float = 20.0
    high_freq: float = 0.0

    def __post_init__(self) -> None:
        if self.num_bins < 3:
            raise ConfigError(f"num_bins must be at least 3, got {self.num_bins}")


def mel_scale(freq):
    """Hz -> mel, Kaldi's formula (works on floats and arrays)."""
    return np.float32(1127.0) * np.log(np.float32(1.0) + np.asarray(freq, dtype=np.float32) / np.float32(700.0))


def kaldi_mel_banks(mel_opts: MelOptions, frame_opts: FrameOptions) -> np.ndarray:
    """The (num_bins, n_fft // 2 + 1) float32 weight matrix of Kaldi's mel banks."""
    f32 = np.float32
    n_fft = frame_opts.padded_window_size
    if n_fft % 2:
        raise ConfigError(f"the FFT length must be even, got {n_fft} (set round_to_power_of_two=True)")
    nyquist = f32(0.5) * f32(frame_opts.samp_freq)
    low = f32(mel_opts.low_freq)
    high = f32(mel_opts.high_freq) if mel_opts.high_freq > 0 else nyquist + f32(mel_opts.high_freq)
    if low < 0 or low >= nyquist or high <= 0 or high > nyquist or high <= low:
        raise ConfigError(
            f"bad mel range: low_freq {mel_opts.low_freq} and high_freq {mel_opts.high_freq} "
            f"(-> {high}) vs. Nyquist {nyquist}"
        )
    num_bins = mel_opts.num_bins
    mel_low, mel_high = mel_scale(low), mel_scale(high)
    delta = (mel_high - mel_low) / f32(num_bins + 1)
    bin_width = f32(frame_opts.samp_freq) / f32(n_fft)
    mels = mel_scale(bin_width * np.arange(n_fft // 2, dtype=np.float32))
    weights = np.zeros((num_bins, n_fft // 2 + 1), dtype=np.float32)
    for j in range(num_bins):
        left = mel_low + f32(j) * delta
        centre = mel_low + f32(j + 1) * delta
        right = mel_low + f32(j + 2) * delta
        inside = (mels > left) & (mels < right)
        if not inside.any():
            raise ConfigError(f"mel bin {j} is empty; num_bins={num_bins} is too large for this FFT length")
        rising = (mels - left) / (centre - left)
        falling = (right - mels) / (right - centre)
        weights[j, : n_fft // 2] = np.where(inside, np.where(mels <= centre, rising, falling), 0.0)
    return weights


class MelFilterbank(nn.Module):
    """Applies a banded weight matrix: `power: (C, F) -> (C, M)`.

    The triangles are local, so the matrix is mostly zeros. Splitting the mel bins
    into groups of consecutive bins and multiplying each group only by the FFT bins
    it covers does a fraction of the dense work. Each group computes
    `W_g (M_g, R) @ power_g^T (R, C)`, which keeps the long dimension C as BLAS's
    output width (small output widths are slow); the result is returned as a
    transposed view. Measured 2-3x faster than one dense matmul on CPU.
    """

    def __init__(self, weights: np.ndarray, group_size: int = 16):
        super().__init__()
        self.num_bins, self.num_fft_bins = weights.shape
        self.groups: list[tuple[int, int, int, int]] = []  # (bin0, bin1, fft0, fft1)
        for g, b0 in enumerate(range(0, self.num_bins, group_size)):
            b1 = min(b0 + group_size, self.num_bins)
            cols = np.nonzero(weights[b0:b1].any(axis=0))[0]
            f0, f1 = int(cols[0]), int(cols[-1]) + 1
            self.groups.append((b0, b1, f0, f1))
            self.register_buffer(f"w{g}", torch.from_numpy(weights[b0:b1, f0:f1].copy()), persistent=False)
        self.register_buffer("dense", torch.from_numpy(weights.T.copy()), persistent=False)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        """power: (C, F) -> (C, M) (on CPU a transposed view of a contiguous (M, C) tensor)."""
        if power.device.type != "cpu":  # accelerators prefer one big matmul
            return torch.matmul(power, self.dense)
        out_t = power.new_empty(self.num_bins, power.shape[0])
        for g, (b0, b1, f0, f1) in enumerate(self.groups):
            torch.matmul(getattr(self, f"w{g}"), power[:, f0:f1].T, out=out_t[b0:b1])
        return out_t.T
