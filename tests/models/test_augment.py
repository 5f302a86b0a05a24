"""Vocal-tract-length perturbation: S'(f) = S(f / alpha) on Kaldi's mel bin centres."""

import math

import pytest
import torch

from speechunits.errors import SpeechUnitsError
from speechunits.frontends.framing import FrameOptions
from speechunits.frontends.mel import MelOptions, kaldi_mel_banks
from speechunits.models.augment import FrequencyWarp, WarpConfig, mel_bin_centres


def test_bin_centres_are_the_peaks_of_kaldis_mel_triangles():
    frame = FrameOptions()
    banks = kaldi_mel_banks(MelOptions(num_bins=23, low_freq=20.0, high_freq=8000.0), frame)
    n_fft = frame.padded_window_size
    fft_freqs = torch.arange(banks.shape[1]) * 16000 / n_fft
    peaks = fft_freqs[torch.as_tensor(banks).argmax(1)]
    centres = mel_bin_centres(23, 20.0, 8000.0)
    assert torch.all((peaks.double() - centres).abs() <= 16000 / n_fft)  # within one FFT bin


@pytest.mark.parametrize("alpha", [0.85, 1.0, 1.2])
def test_warp_reads_the_spectrum_at_f_over_alpha(alpha):
    """A smooth spectrum g sampled at the bin centres comes back as g(f / alpha) (up to
    linear interpolation between bins; bins whose source lies outside the banks clamp)."""
    warp = FrequencyWarp(80, WarpConfig(max_log_factor=0.2))
    f = mel_bin_centres(80, 20.0, 8000.0)
    g = lambda hz: torch.cos(hz / 900.0) + 0.3 * torch.log1p(hz / 300.0)  # noqa: E731
    feats = g(f).float().expand(2, 5, 80).contiguous()
    out = warp.warp(feats, torch.tensor([alpha, alpha]))
    src = f / alpha
    inside = (src >= f[0]) & (src <= f[-1])
    expect = g(src).float()
    assert torch.allclose(out[0, 0][inside], expect[inside], atol=0.02)
    if alpha == 1.0:
        assert torch.allclose(out, feats, atol=1e-6)
    if alpha > 1:  # formants move up: bins whose source lies below the first centre read bin 0
        below = src < f[0]
        assert below.any() and torch.allclose(out[0, 0][below], feats[0, 0, 0].expand(int(below.sum())))


def test_only_in_training_and_per_utterance_factors():
    warp = FrequencyWarp(40, WarpConfig(max_log_factor=0.3))
    x = torch.randn(4, 7, 40)
    assert warp.eval()(x) is x
    assert FrequencyWarp(40, WarpConfig()).train()(x) is x
    torch.manual_seed(0)
    y = warp.train()(x)
    torch.manual_seed(0)
    alpha = torch.exp(torch.empty(4).uniform_(-0.3, 0.3))
    assert torch.equal(y, warp.warp(x, alpha)) and not torch.allclose(y, x)
    with pytest.raises(SpeechUnitsError, match="max_log_factor"):
        WarpConfig(max_log_factor=-0.1)
    assert math.isclose(float(mel_bin_centres(1, 0.0, 1000.0)[0]), 700 * (math.exp(1127 * math.log1p(1000 / 700) / 2 / 1127) - 1))
