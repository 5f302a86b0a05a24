"""A rough vocoder for log-mel frames: mel inversion + Griffin-Lim phase reconstruction.

The filterbank decoder (speechunits/models/fbank_decoder.py) predicts Kaldi log-mel
frames, not audio. To listen to them, this module inverts the analysis that made
the frames (speechunits/frontends/fbank.py, Kaldi's compute-fbank-feats):

1. mel energies = exp(log-mel); the power spectrum P >= 0 with mel = P W^T
   (W: Kaldi's triangular mel banks) is recovered by non-negative least squares
   (multiplicative updates, Lee & Seung 2001, started from each band's energy
   spread over its FFT bins). Many spectra give the same mel energies, so fine
   spectral detail (harmonics within one band) is gone: expect a buzzy, smeared sound;
2. Kaldi's pre-emphasis is undone in the magnitude domain (divided by
   |1 - a e^{-jw}|, floored), and the 32768 waveform scale removed;
3. phases come from fast Griffin-Lim (Perraudin, Balazs, Sondergaard 2013; momentum
   0.99) with Kaldi's window (Povey, 25 ms, FFT 512, 10 ms hop); the framing is
   centred as with snip_edges=False, so frame t of the input is centred at
   (t + 0.5) * shift in the output, which is T * shift seconds long.

This is a listening aid, not a neural vocoder: the result is intelligible at best,
never natural. If the frames were mean-normalised (CMVN), their absolute level is
unknown and the output is peak-normalised instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from speechunits.errors import SpeechUnitsError
from speechunits.frontends.fbank import FbankConfig
from speechunits.frontends.framing import feature_window
from speechunits.frontends.mel import kaldi_mel_banks

__all__ = ["GriffinLimConfig", "mel_to_power", "griffin_lim", "invert_log_mel"]


@dataclass
class GriffinLimConfig:
    iterations: int = 32  # Griffin-Lim iterations
    momentum: float = 0.99  # fast Griffin-Lim; 0 = classic Griffin-Lim
    nnls_iterations: int = 50  # multiplicative updates of the mel inversion
    emphasis_floor: float = 0.1  # floor of |1 - a e^{-jw}| when undoing pre-emphasis
    seed: int = 0  # initial random phases


def mel_to_power(mel: torch.Tensor, weights: torch.Tensor, iterations: int = 50) -> torch.Tensor:
    """Non-negative P (T, F) with P @ weights.T ~= mel (T, M); weights (M, F) >= 0.

    Multiplicative updates for min ||mel - P W^T||^2, P >= 0. FFT bins that no
    mel band covers stay zero."""
    eps = 1e-12
    mel = mel.clamp_min(0)
    share = weights / weights.sum(1, keepdim=True).clamp_min(eps)  # each band spread over its bins
    power = mel @ share
    wtw = weights.T @ weights  # (F, F)
    numer = mel @ weights  # (T, F), constant
    for _ in range(iterations):
        power = power * numer / (power @ wtw + eps)
    return power


def griffin_lim(
    magnitude: torch.Tensor,
    n_fft: int,
    hop: int,
    window: torch.Tensor,
    length: int,
    iterations: int = 48,
    momentum: float = 0.99,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Magnitudes (F, T) of a centred STFT -> a waveform (length,) whose STFT has them.

    A centred STFT reflect-pads n_fft // 2 samples on each side, which needs a signal
    longer than that: a shorter one (a frame or two: one or two units) is made as a
    longer signal with silent frames after it (zero magnitude) and cut to `length`."""
    win_length = window.shape[0]
    if 0 < length <= n_fft // 2:
        extra = (n_fft // 2 - length) // hop + 1  # frames to add: length + extra * hop > n_fft // 2
        padded = torch.cat([magnitude, magnitude.new_zeros(magnitude.shape[0], extra)], dim=1)
        return griffin_lim(padded, n_fft, hop, window, length + extra * hop, iterations, momentum, generator)[:length]

    def stft(x):
        return torch.stft(x, n_fft, hop, win_length, window, center=True, return_complex=True)

    def istft(spec):
        return torch.istft(spec, n_fft, hop, win_length, window, center=True, length=length)

    phase = torch.rand(magnitude.shape, generator=generator, dtype=magnitude.dtype) * (2 * math.pi)
    angles = torch.polar(torch.ones_like(magnitude), phase)
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        rebuilt = stft(istft(magnitude * angles))
        angles = rebuilt - previous * (momentum / (1 + momentum)) if momentum else rebuilt
        angles = angles / angles.abs().clamp_min(1e-16)
        previous = rebuilt
    return istft(magnitude * angles)


def invert_log_mel(
    log_mel: np.ndarray,
    fbank: FbankConfig | None = None,
    config: GriffinLimConfig | None = None,
    normalize: bool = False,
) -> np.ndarray:
    """Kaldi log-mel frames (T, num_bins) -> a waveform (T * shift samples,) in [-1, 1].

    `fbank` must be the options that made the frames (log of mel power, no energy
    column); `normalize` peak-normalises to 0.5 (for frames whose level is unknown).
    Output louder than full scale is scaled down to 0.99."""
    fbank = fbank or FbankConfig()
    config = config or GriffinLimConfig()
    frame, mel_opts = fbank.frame_opts, fbank.mel_opts
    x = np.asarray(log_mel, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != mel_opts.num_bins:
        raise SpeechUnitsError(f"expected log-mel frames (T, {mel_opts.num_bins}), got shape {x.shape}")
    if not fbank.use_log_fbank:
        raise SpeechUnitsError("the Griffin-Lim vocoder needs log-mel frames (use_log_fbank=True)")
    T = x.shape[0]
    hop, n_fft = frame.window_shift, frame.padded_window_size
    length = T * hop
    if T == 0:
        return np.zeros(0, dtype=np.float32)
    weights = torch.from_numpy(kaldi_mel_banks(mel_opts, frame)).double()
    mel = torch.from_numpy(np.exp(np.minimum(x, 80.0)))
    power = mel_to_power(mel, weights, config.nnls_iterations)
    mag = power.sqrt() if fbank.use_power else power
    omega = torch.linspace(0, math.pi, mag.shape[1], dtype=torch.float64)
    a = float(frame.preemph_coeff)
    emphasis = (1 - a * torch.exp(-1j * omega)).abs().clamp_min(config.emphasis_floor)
    mag = (mag / emphasis / float(frame.waveform_scale)).T.float().contiguous()  # (F, T)
    window = torch.from_numpy(feature_window(frame))
    generator = torch.Generator().manual_seed(int(config.seed))
    # frame t is centred at t * hop + hop // 2 (snip_edges=False): generate with centred
    # frames at t * hop, then delay by hop // 2
    wav = griffin_lim(mag, n_fft, hop, window, length - hop // 2, config.iterations, config.momentum, generator)
    wav = torch.cat([wav.new_zeros(hop // 2), wav]).numpy()
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if normalize and peak > 0:
        wav = wav * (0.5 / peak)
    elif peak > 0.99:
        wav = wav * (0.99 / peak)
    return wav.astype(np.float32)
