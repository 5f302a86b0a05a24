"""Vocal-tract-length perturbation: S'(f) = S(f / alpha) on Kaldi's mel bin centres; band masking."""

import math

import pytest
import torch

from speechunits.errors import SpeechUnitsError
from speechunits.frontends.framing import FrameOptions
from speechunits.frontends.mel import MelOptions, kaldi_mel_banks
from speechunits.models.augment import BandMasking, BandMaskingConfig, FrequencyWarp, WarpConfig, mel_bin_centres


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


def test_envelope_projector_keeps_the_first_dct_coefficients():
    """P is the orthogonal projection onto the first L DCT-II basis vectors: a brute-force
    DCT (the sum formula), truncated and inverted, gives the same smoothed frame."""
    from speechunits.models.augment import envelope_projector

    F, L = 40, 12
    x = torch.randn(3, F, dtype=torch.float64)
    n = torch.arange(F, dtype=torch.float64)
    coef = torch.stack([(x * torch.cos(math.pi * k * (n + 0.5) / F)).sum(1) for k in range(F)], 1)  # unnormalised DCT-II
    coef[:, L:] = 0
    inverse = coef[:, :1] / F + (2.0 / F) * sum(coef[:, k : k + 1] * torch.cos(math.pi * k * (n + 0.5) / F) for k in range(1, F))
    P = envelope_projector(F, L)
    assert torch.allclose(x @ P, inverse, atol=1e-10)
    assert torch.allclose(P @ P, P, atol=1e-10) and torch.allclose(P, P.T)
    assert torch.allclose(envelope_projector(F, F), torch.eye(F, dtype=torch.float64), atol=1e-10)


def test_pitch_perturbation_moves_the_harmonics_apart_from_the_envelope():
    """A frame = smooth envelope + harmonic ripple: warp_apart(alpha, beta) equals the
    plain warp when beta = alpha, and otherwise warps the envelope by alpha and the
    ripple by beta (checked against warping the two parts built separately)."""
    F = 80
    cfg = WarpConfig(max_log_factor=0.2, pitch_max_log_factor=0.4, lifter=16)
    warp = FrequencyWarp(F, cfg)
    j = torch.arange(F, dtype=torch.float32)
    envelope = torch.exp(-((j - 20) / 8) ** 2) + 0.6 * torch.exp(-((j - 45) / 10) ** 2)  # two formant bumps
    x = torch.randn(2, 5, F)
    both = warp.warp_apart(x, torch.tensor([1.1, 0.9]), torch.tensor([1.1, 0.9]))
    assert torch.allclose(both, warp.warp(x, torch.tensor([1.1, 0.9])), atol=1e-5)
    P = warp.envelope
    frame = envelope.expand(1, 1, F)
    assert torch.allclose(frame @ P, frame, atol=0.05)  # a smooth envelope is (nearly) kept whole
    alpha, beta = torch.tensor([1.15]), torch.tensor([0.7])
    out = warp.warp_apart(x[:1], alpha, beta)
    expect = warp.warp(x[:1] @ P, alpha) + warp.warp(x[:1] - x[:1] @ P, beta)
    assert torch.allclose(out, expect, atol=1e-5) and not torch.allclose(out, warp.warp(x[:1], alpha), atol=1e-2)
    # in training, one alpha and one independent beta per crop, drawn after the alphas
    torch.manual_seed(0)
    y = warp.train()(x)
    torch.manual_seed(0)
    a = torch.exp(torch.empty(2).uniform_(-0.2, 0.2))
    b = torch.exp(torch.empty(2).uniform_(-0.4, 0.4))
    assert torch.allclose(y, warp.warp_apart(x, a, b), atol=1e-6)
    assert FrequencyWarp(F, WarpConfig(pitch_max_log_factor=0.3)).train().active
    with pytest.raises(SpeechUnitsError, match="pitch_max_log_factor"):
        WarpConfig(pitch_max_log_factor=1.5)
    with pytest.raises(SpeechUnitsError, match="lifter"):
        WarpConfig(lifter=0)


def test_band_masking_zeroes_whole_bands_on_every_frame_in_training_only():
    torch.manual_seed(0)
    masking = BandMasking(40, BandMaskingConfig(count=2, max_width=6)).train()
    feats = torch.randn(64, 7, 40) + 5.0  # no feature is 0 by chance
    out = masking(feats)
    zero = out == 0
    assert torch.all(zero.all(1) == zero.any(1))  # a bin is masked on every frame of its crop or on none
    torch.testing.assert_close(out[~zero], feats[~zero])
    for crop in zero[:, 0]:
        bins = crop.nonzero().squeeze(1).tolist()
        runs = [b for i, b in enumerate(bins) if i == 0 or bins[i - 1] != b - 1]
        assert len(runs) <= 2 and len(bins) <= 12  # at most two bands of at most 6 bins
    assert zero.any()
    masking.eval()
    assert torch.equal(masking(feats), feats)
    assert torch.equal(BandMasking(40, BandMaskingConfig()).train()(feats), feats)


def test_band_masking_covers_the_expected_share_of_bins():
    """One band of width U{0..w} at a uniform start covers w / 2 bins on average, and every
    bin, the edges included, is masked some of the time: counted over many draws."""
    torch.manual_seed(1)
    masking = BandMasking(20, BandMaskingConfig(count=1, max_width=8)).train()
    drawn = masking.draw(40000)
    assert drawn.sum(1).float().mean().item() == pytest.approx(4.0, abs=0.05)
    assert drawn.any(0).all()


def test_band_masking_config_is_checked():
    with pytest.raises(SpeechUnitsError, match="count"):
        BandMaskingConfig(count=-1)
    with pytest.raises(SpeechUnitsError, match="max_width"):
        BandMasking(20, BandMaskingConfig(count=1, max_width=20))


def test_slope_warps_low_and_high_bins_by_different_factors():
    """With a slope b the factor of bin j is alpha * exp(b * u_j), u from -1 to 1 over the
    bins: each output bin reads the spectrum at f_j / alpha_j (a per-bin version of the
    plain warp, checked bin by bin against it), the bins keep their order, and b = 0 is
    the plain warp."""
    F = 80
    warp = FrequencyWarp(F, WarpConfig(max_log_factor=0.3, slope_max_log_factor=0.5))
    alpha, slope = torch.tensor([1.2, 0.8]), torch.tensor([0.5, -0.5])
    factors = warp.bin_factors(alpha, slope)
    assert torch.allclose(factors[:, 0], (alpha * torch.exp(-slope)).double())
    assert torch.allclose(factors[:, -1], (alpha * torch.exp(slope)).double())
    pos = warp.source_positions(factors)
    assert torch.all(pos[:, 1:] >= pos[:, :-1])  # monotone at the widest slope allowed
    x = torch.randn(2, 3, F)
    out = warp.warp(x, factors)
    for j in (5, 40, 75):  # bin j of the per-bin warp = bin j of a plain warp by alpha_j
        plain = warp.warp(x, factors[:, j].float())
        assert torch.allclose(out[..., j], plain[..., j], atol=1e-6)
    assert torch.allclose(warp.warp(x, warp.bin_factors(alpha, torch.zeros(2))), warp.warp(x, alpha), atol=1e-6)
    torch.manual_seed(0)
    y = warp.train()(x)
    torch.manual_seed(0)
    a = torch.exp(torch.empty(2).uniform_(-0.3, 0.3))
    b = torch.empty(2).uniform_(-0.5, 0.5)
    assert torch.allclose(y, warp.warp(x, warp.bin_factors(a, b)), atol=1e-6)
    both = FrequencyWarp(F, WarpConfig(max_log_factor=0.3, slope_max_log_factor=0.5, pitch_max_log_factor=0.4)).train()
    torch.manual_seed(1)
    y = both(x)  # draws alpha, then the slope, then beta; the envelope warped per bin, the harmonics by beta
    torch.manual_seed(1)
    a = torch.exp(torch.empty(2).uniform_(-0.3, 0.3))
    b = torch.empty(2).uniform_(-0.5, 0.5)
    beta = torch.exp(torch.empty(2).uniform_(-0.4, 0.4))
    assert torch.allclose(y, both.warp_apart(x, both.bin_factors(a, b), beta), atol=1e-6)
    with pytest.raises(SpeechUnitsError, match="slope_max_log_factor"):
        WarpConfig(max_log_factor=0.3, slope_max_log_factor=0.6)
    with pytest.raises(SpeechUnitsError, match="needs warp.max_log_factor"):
        WarpConfig(slope_max_log_factor=0.2)
