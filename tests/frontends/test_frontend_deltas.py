"""Deltas against a brute-force transcription of Kaldi's DeltaFeatures."""

import numpy as np
import pytest
import torch

from speechunits.errors import ConfigError
from speechunits.frontends import DeltaConfig, Deltas, add_deltas
from speechunits.frontends.deltas import balanced_deltas


def kaldi_scales(order, window):
    """Kaldi's DeltaFeatures constructor, loop for loop."""
    scales = [np.array([1.0])]
    for _ in range(order):
        prev = scales[-1]
        prev_offset = (len(prev) - 1) // 2
        cur_offset = prev_offset + window
        cur = np.zeros(len(prev) + 2 * window)
        normalizer = sum(j * j for j in range(-window, window + 1))
        for j in range(-window, window + 1):
            for k in range(-prev_offset, prev_offset + 1):
                cur[j + k + cur_offset] += j * prev[k + prev_offset]
        scales.append(cur / normalizer)
    return scales


def kaldi_deltas(feats, order, window):
    """Kaldi's Process(): each order's filter on the statics, frame indices clamped."""
    t, d = feats.shape
    out = np.zeros((t, d * (order + 1)))
    for i, scale in enumerate(kaldi_scales(order, window)):
        half = (len(scale) - 1) // 2
        for r in range(t):
            for j in range(-half, half + 1):
                src = min(max(r + j, 0), t - 1)
                out[r, i * d : (i + 1) * d] += scale[j + half] * feats[src]
    return out


@pytest.mark.parametrize("order,window", [(2, 2), (1, 2), (2, 3), (3, 1)])
def test_deltas_equal_kaldi(order, window, rng):
    feats = rng.standard_normal((23, 4)).astype(np.float32)
    np.testing.assert_allclose(add_deltas(feats, order, window), kaldi_deltas(feats, order, window), atol=1e-5)


def test_interior_frames_equal_the_textbook_regression_formula(rng):
    """Away from the edges, delta-deltas are deltas of deltas: d_t = sum n (c_t+n - c_t-n) / (2 sum n^2)."""
    c = rng.standard_normal((40, 3))

    def delta(x):
        return sum(n * (x[2 + n : len(x) - 2 + n] - x[2 - n : len(x) - 2 - n]) for n in (1, 2)) / 10.0

    d1 = delta(c)  # frames 2..37
    d2 = delta(d1)  # frames 4..35
    out = add_deltas(c.astype(np.float32))
    np.testing.assert_allclose(out[2:38, 3:6], d1, atol=1e-5)
    np.testing.assert_allclose(out[4:36, 6:9], d2, atol=1e-5)


def test_batch_replicates_each_utterance_own_edges(rng):
    lengths = [30, 7, 1, 18]
    batch = torch.from_numpy(rng.standard_normal((4, 30, 5)).astype(np.float32) * 100)  # padding = garbage
    out = Deltas(DeltaConfig(2, 2))(batch, torch.tensor(lengths))
    assert out.shape == (4, 30, 15)
    for b, n in enumerate(lengths):
        expected = kaldi_deltas(batch[b, :n].numpy(), 2, 2)
        np.testing.assert_allclose(out[b, :n].numpy(), expected, rtol=1e-5, atol=1e-3)
        assert torch.all(out[b, n:] == 0)


def test_constant_features_have_zero_deltas():
    out = add_deltas(np.full((12, 2), 3.5, dtype=np.float32))
    np.testing.assert_allclose(out[:, 2:], 0, atol=1e-6)
    np.testing.assert_allclose(out[:, :2], 3.5)


@pytest.mark.parametrize("balance,window", [(1.0, 2), (0.5, 2), (2.0, 3)])
def test_balanced_deltas_are_kaldi_deltas_rescaled_to_the_balance(balance, window, rng):
    """The deltas half is Kaldi's order-1 deltas times one factor per utterance, chosen so
    that its root-mean-square is `balance` times the frames' (checked by brute force)."""
    feats = (rng.standard_normal((37, 6)) * 3 + 5).astype(np.float32)
    out = balanced_deltas(feats, balance, window)
    kaldi = kaldi_deltas(feats, 1, window)
    assert out.shape == (37, 12) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :6], feats)
    rms = lambda x: np.sqrt(np.mean(np.square(x, dtype=np.float64)))  # noqa: E731
    np.testing.assert_allclose(rms(out[:, 6:]), balance * rms(feats), rtol=1e-5)
    np.testing.assert_allclose(out[:, 6:], kaldi[:, 6:] * balance * rms(feats) / rms(kaldi[:, 6:]), rtol=1e-4, atol=1e-5)
    # the scale is the utterance's own: scaling the input scales both halves alike
    np.testing.assert_allclose(balanced_deltas(feats * 10, balance, window), out * 10, rtol=1e-4, atol=1e-4)


def test_balanced_deltas_edge_cases():
    np.testing.assert_array_equal(balanced_deltas(np.full((5, 3), 2.0, np.float32))[:, 3:], 0)  # constant: no deltas
    assert balanced_deltas(np.zeros((0, 4), np.float32)).shape == (0, 8)
    np.testing.assert_array_equal(balanced_deltas(np.ones((1, 2), np.float32)), [[1, 1, 0, 0]])
    assert not balanced_deltas(np.arange(8, dtype=np.float32).reshape(4, 2), 0.0)[:, 2:].any()  # balance 0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="balance"):
            balanced_deltas(np.ones((3, 2), np.float32), bad)
    with pytest.raises(ConfigError, match=r"\(T, D\)"):
        balanced_deltas(np.ones(3, np.float32))
