"""Batches, lengths, dither, the compute() convenience, and the waveform front end."""

import math

import numpy as np
import pytest
import torch

from speechunits.frontends import FeaturePipeline, build_frontend


def utterances(rng, lengths):
    return [(0.2 * rng.standard_normal(n) + 0.1 * np.sin(np.arange(n) * 0.05)).astype(np.float32) for n in lengths]


def padded_batch(utts, width, rng):
    """Pad with loud garbage: a correct front end never reads past a length."""
    batch = rng.standard_normal((len(utts), width)).astype(np.float32) * 5
    for b, u in enumerate(utts):
        batch[b, : len(u)] = u
    return torch.from_numpy(batch), torch.tensor([len(u) for u in utts])


@pytest.mark.parametrize(
    "name,config",
    [
        ("fbank", {}),
        ("fbank", {"frame_opts": {"snip_edges": True}, "use_energy": True}),
        ("mfcc", {}),
        ("mfcc", {"frame_opts": {"snip_edges": True}, "raw_energy": False}),
    ],
)
def test_batch_with_lengths_equals_one_utterance_at_a_time(name, config, rng):
    fe = build_frontend(name, config)
    utts = utterances(rng, [16000, 3000, 401, 9999, 30])
    wave, lengths = padded_batch(utts, 17000, rng)
    out = fe(wave, lengths)
    assert out.lengths.tolist() == [fe.num_frames(len(u)) for u in utts]
    assert out.feats.shape == (5, max(out.lengths), fe.feature_dim)
    assert out.frame_shift == pytest.approx(0.01)
    for b, u in enumerate(utts):
        single = fe.compute(u)
        n = out.lengths[b]
        np.testing.assert_allclose(out.feats[b, :n].numpy(), single, rtol=1e-5, atol=1e-4)
        assert torch.all(out.feats[b, n:] == 0)
    for b, feats in enumerate(out.unbatch()):
        assert feats.shape[0] == out.lengths[b]


def test_pipeline_batch_with_lengths_equals_per_utterance(rng):
    pipe = FeaturePipeline.from_preset("mfcc_dd", ["cmvn=utterance", "norm_vars=true"])
    utts = utterances(rng, [8000, 2500, 700])
    wave, lengths = padded_batch(utts, 9000, rng)
    out = pipe(wave, lengths)
    for b, u in enumerate(utts):
        n = out.lengths[b]
        np.testing.assert_allclose(out.feats[b, :n].numpy(), pipe.compute(u), rtol=1e-4, atol=1e-4)
        assert torch.all(out.feats[b, n:] == 0)


def test_compute_returns_the_input_type(rng):
    fe = build_frontend("fbank")
    x = utterances(rng, [4000])[0]
    as_numpy = fe.compute(x)
    as_tensor = fe.compute(torch.from_numpy(x))
    assert isinstance(as_numpy, np.ndarray) and as_numpy.dtype == np.float32
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_array_equal(as_numpy, as_tensor.numpy())
    assert fe.compute(x.astype(np.float64)).shape == (25, 23)
    with pytest.raises(TypeError):
        fe.compute((x * 32767).astype(np.int16))
    with pytest.raises(ValueError):
        fe.compute(np.zeros((2, 100), dtype=np.float32))


def test_empty_and_too_short_input(rng):
    fe = build_frontend("mfcc", {"frame_opts": {"snip_edges": True}})
    assert fe.compute(np.zeros(399, dtype=np.float32)).shape == (0, 13)
    assert build_frontend("fbank").compute(np.zeros(0, dtype=np.float32)).shape == (0, 23)
    # an utterance with no frames inside a batch
    wave, lengths = padded_batch(utterances(rng, [1000, 100]), 1000, rng)
    out = fe(wave, lengths)
    assert out.lengths.tolist() == [4, 0] and torch.all(out.feats[1] == 0)


def test_dither_is_seeded_and_has_the_right_size():
    silence = np.zeros(16000, dtype=np.float32)
    cfg = lambda seed: {"frame_opts": {"dither": 1.0, "seed": seed}, "use_energy": True}  # noqa: E731
    a = build_frontend("fbank", cfg(1)).compute(silence)
    b = build_frontend("fbank", cfg(1)).compute(silence)
    c = build_frontend("fbank", cfg(2)).compute(silence)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1
    # dither 1.0 = unit-variance Gaussian per sample (int16 units), independent per frame:
    # the DC-free raw energy of a 400-sample frame is about 399, so log energy ~ log(399)
    assert abs(np.mean(a[:, 0]) - math.log(399.0)) < 0.05
    # a generator passed in overrides the configured seed
    fe = build_frontend("fbank", cfg(None))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x = torch.zeros(1, 8000)
    assert torch.equal(fe(x, generator=g1).feats, fe(x, generator=g2).feats)


def test_waveform_frontend_passes_samples_through(rng):
    fe = build_frontend("waveform")
    utts = utterances(rng, [500, 200])
    wave, lengths = padded_batch(utts, 500, rng)
    out = fe(wave, lengths)
    assert out.feats.shape == (2, 500, 1) and out.lengths.tolist() == [500, 200]
    assert out.frame_shift == 1 / 16000 and fe.feature_dim == 1 and fe.num_frames(123) == 123
    np.testing.assert_array_equal(out.feats[1, :200, 0].numpy(), utts[1])
    assert torch.all(out.feats[1, 200:] == 0)
    np.testing.assert_array_equal(fe.compute(utts[0])[:, 0], utts[0])
