"""Mu-law coding against the closed-form formula (numpy) and round-trip bounds."""

import numpy as np
import torch

from speechunits.models.mulaw import mulaw_decode, mulaw_encode
from speechunits.models.wavenet import silence_code


def np_encode(x, q=256):
    mu = q - 1
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.floor((y + 1) / 2 * mu + 0.5).astype(np.int64)


def np_expand(y, q=256):
    mu = q - 1
    return np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu


def test_encode_matches_closed_form(rng):
    x = np.concatenate([rng.uniform(-1, 1, 5000), [-1.0, 0.0, 1.0, 1e-6, -1e-6]])
    for q in (256, 16):
        got = mulaw_encode(torch.from_numpy(x), q).numpy()
        np.testing.assert_array_equal(got, np_encode(x, q))
        assert got.min() >= 0 and got.max() <= q - 1


def test_extremes_and_silence():
    codes = mulaw_encode(torch.tensor([-1.0, 0.0, 1.0, -3.0, 3.0]))
    assert codes.tolist() == [0, 128, 255, 0, 255]  # out-of-range input is clipped
    assert silence_code(256) == 128
    assert mulaw_decode(torch.tensor([0, 255])).tolist() == [-1.0, 1.0]


def test_codes_round_trip_exactly():
    codes = torch.arange(256)
    assert torch.equal(mulaw_encode(mulaw_decode(codes)), codes)


def test_monotone(rng):
    x = np.sort(rng.uniform(-1, 1, 20000))
    codes = mulaw_encode(torch.from_numpy(x)).numpy()
    assert np.all(np.diff(codes) >= 0)


def test_round_trip_error_within_half_a_bin(rng):
    """Decoding gives the bin centre in the companded domain: |y - y'| <= 1/mu, so
    |x - x'| <= g(|y| + 1/mu) - g(|y|) with g the expansion (steepest outwards)."""
    mu = 255
    x = rng.uniform(-1, 1, 20000)
    xr = mulaw_decode(mulaw_encode(torch.from_numpy(x)), dtype=torch.float64).numpy()
    y = np.abs(np.log1p(mu * np.abs(x)) / np.log1p(mu))
    bound = np_expand(np.minimum(y + 1.0 / mu, 1.0)) - np_expand(y)
    assert np.all(np.abs(x - xr) <= bound + 1e-9)
    # Near silence the steps are fine: less than 1e-4 for |x| < 0.001.
    small = np.abs(x) < 1e-3
    assert np.abs(x - xr)[small].max() < 1e-4
