"""UnitExtractor: output consistency, batching, resampling, pcvq segments, CMVN per speaker,
continuous bottlenecks, loading from a checkpoint."""

import logging
import math

import numpy as np
import pytest
import torch
from units_fixtures import SR, save_tiny_checkpoint, signal, tiny_model

from speechunits.errors import SpeechUnitsError
from speechunits.frontends.pipeline import FeaturePipeline, feature_preset
from speechunits.units.extractor import UnitExtractor
from speechunits.units.formats import run_length


@pytest.mark.parametrize("tap, width", [("encoder", 16), ("projection", 8), ("bottleneck", 8), ("conditioning", 8)])
def test_output_consistency(tap, width):
    model, feats = tiny_model("vq")
    x = signal(2.37, seed=1)
    u = UnitExtractor(model, feats, tap=tap)(x)
    T = FeaturePipeline(feats).num_frames(x.size)  # 237 frames at 100 Hz
    assert u.dense.shape == (math.ceil(T / 2), width) and u.dense.dtype == np.float32
    assert u.frame_shift == pytest.approx(0.02)
    assert u.frame_codes.shape == (u.dense.shape[0],)
    ref_units, ref_durs = run_length(u.frame_codes)
    assert np.array_equal(u.units, ref_units) and np.array_equal(u.durations, ref_durs)
    assert np.all(u.units[1:] != u.units[:-1])
    assert np.allclose(u.starts, np.concatenate([[0], np.cumsum(u.durations)[:-1]]) * 0.02)
    assert u.durations.sum() == u.num_frames
    assert len(u.units) > 5


def test_matches_model_encode_and_no_dedup():
    model, feats = tiny_model("vq")
    x = signal(1.5, seed=2)
    ex = UnitExtractor(model, feats, tap="bottleneck")
    u = ex(x, dedup=False)
    f = torch.as_tensor(FeaturePipeline(feats).compute(x))
    with torch.no_grad():
        ref = model.encode(f.unsqueeze(0))
    assert np.array_equal(u.frame_codes, ref.codes[0].numpy())
    np.testing.assert_allclose(u.dense, ref.taps["bottleneck"].values[0].numpy(), atol=1e-6)
    assert np.array_equal(u.units, u.frame_codes) and (u.durations == 1).all()


def test_batched_equals_one_at_a_time():
    model, feats = tiny_model("vq")
    xs = [signal(s, seed=i) for i, s in enumerate((0.5, 2.0, 1.23, 0.9, 3.1))]
    ex = UnitExtractor(model, feats, tap="encoder", batch_seconds=4.0, max_batch=3)
    batched = ex.extract_batch(xs)
    for x, b in zip(xs, batched):
        one = ex(x)
        np.testing.assert_allclose(b.dense, one.dense, atol=1e-5, rtol=1e-5)
        assert np.array_equal(b.frame_codes, one.frame_codes)


@pytest.mark.parametrize("rate", [8000, 22050])
def test_other_sample_rates_are_resampled(rate):
    """The same band-limited signal given at another rate gives nearly the same dense
    features (and the same number of frames) as at 16 kHz."""
    model, feats = tiny_model("vq")
    seconds = 1.6
    t = np.arange(int(seconds * SR)) / SR
    x16 = (0.3 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 1200 * t)).astype(np.float32)
    tr = np.arange(int(seconds * rate)) / rate
    xr = (0.3 * np.sin(2 * np.pi * 300 * tr) + 0.2 * np.sin(2 * np.pi * 1200 * tr)).astype(np.float32)
    ex = UnitExtractor(model, feats, tap="encoder")
    a, b = ex(x16), ex(xr, sample_rate=rate)
    assert a.dense.shape == b.dense.shape
    inner = slice(3, -3)  # edges differ a little (resampler edge effects)
    rel = np.abs(a.dense[inner] - b.dense[inner]).mean() / np.abs(a.dense[inner]).mean()
    assert rel < 0.05
    # and the tensor / Audio input paths agree with numpy input
    np.testing.assert_allclose(ex(torch.from_numpy(xr), sample_rate=rate).dense, b.dense, atol=1e-6)


def test_pcvq_units_are_the_dp_segments():
    model, feats = tiny_model("pcvq")
    x = signal(3.0, seed=4)
    u = UnitExtractor(model, feats, tap="bottleneck")(x)
    f = torch.as_tensor(FeaturePipeline(feats).compute(x)).unsqueeze(0)
    with torch.no_grad():
        enc = model.encoder(f)
        seg = model.bottleneck.quantize(enc.values, enc.lengths).segments[0].numpy()
    assert np.array_equal(u.units, seg[:, 2])
    assert np.array_equal(u.durations, seg[:, 1] - seg[:, 0])
    assert np.allclose(u.starts, seg[:, 0] * 0.02)
    assert 3 < len(u.units) < u.num_frames  # segments longer than a frame


def test_speaker_cmvn_stats_and_fallback(caplog):
    feats = feature_preset("fbank", ["cmvn=speaker"])
    model, _ = tiny_model("vq", features=feats)
    xs = [signal(1.0, seed=5), signal(1.4, seed=6)]
    ex = UnitExtractor(model, feats, tap="encoder")
    stats = ex.speaker_stats(xs)
    # reference: the features command's two-pass per-speaker CMVN
    pipe = FeaturePipeline(feats)
    ref = pipe.normalize_speakers({"u1": pipe.compute_static(xs[0]), "u2": pipe.compute_static(xs[1])},
                                  {"u1": "s", "u2": "s"})
    np.testing.assert_allclose(ex.features(xs[1], cmvn_stats=stats).numpy(), ref["u2"], atol=1e-4)
    with caplog.at_level(logging.WARNING):
        lone = ex.features(xs[1])
    assert "per-utterance CMVN" in caplog.text
    utt_ref = FeaturePipeline(feature_preset("fbank", ["cmvn=utterance"])).compute(xs[1])
    np.testing.assert_allclose(lone.numpy(), utt_ref, atol=1e-4)
    # extraction itself with stats differs from the fallback (the stats are used)
    assert not np.allclose(ex(xs[1], cmvn_stats=stats).dense, ex(xs[1]).dense)


def test_continuous_bottleneck_has_no_units():
    model, feats = tiny_model("ae")
    u = UnitExtractor(model, feats, tap="bottleneck")(signal(1.0))
    assert u.units is None and u.frame_codes is None and u.sequence("x") is None
    assert u.dense.shape == (50, 8)


def test_mismatched_features_and_bad_input():
    model, _ = tiny_model("vq")
    with pytest.raises(SpeechUnitsError, match="80"):
        UnitExtractor(model, feature_preset("mfcc_dd"))
    with pytest.raises(SpeechUnitsError, match="unknown tap"):
        UnitExtractor(model, feature_preset("fbank"), tap="decoder")
    with pytest.raises(SpeechUnitsError, match="input features are unknown"):
        UnitExtractor(model, None)
    with pytest.raises(SpeechUnitsError, match="mono"):
        UnitExtractor(model, feature_preset("fbank"))(np.zeros((2, 1600), np.float32))


def test_from_checkpoint(tmp_path):
    model, feats = tiny_model("vq")
    path = save_tiny_checkpoint(tmp_path / "m.pt", model, feats)
    ex = UnitExtractor.from_checkpoint(path, device="cpu", tap="projection")
    x = signal(1.0, seed=7)
    ref = UnitExtractor(model, feats, tap="projection")(x)
    got = ex(x)
    assert ex.step == 3 and ex.tap == "projection"
    np.testing.assert_allclose(got.dense, ref.dense, atol=1e-6)
    assert np.array_equal(got.units, ref.units)


@pytest.mark.parametrize("tap", ["encoder", "projection"])
def test_kmeans_over_a_tap_gives_units_of_a_continuous_model(tap):
    """With a k-means model the frame codes are each dense frame's nearest centroid
    (brute force), run-length coded, whatever the bottleneck."""
    from speechunits.units.kmeans import KMeans

    model, feats = tiny_model("ae")
    plain = UnitExtractor(model, feats, tap=tap)
    dense = plain(signal(1.0, seed=3)).dense
    rng = np.random.default_rng(0)
    km = KMeans(dense[rng.choice(len(dense), 6, replace=False)] + 0.01)
    ex = UnitExtractor(model, feats, tap=tap, kmeans=km)
    assert ex.discrete and ex.describe()["kmeans"]["k"] == 6
    u = ex(signal(1.0, seed=3))
    brute = ((u.dense[:, None, :] - km.centroids.numpy()[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(u.frame_codes, brute)
    units, durations = run_length(brute)
    assert np.array_equal(u.units, units) and np.array_equal(u.durations, durations)
    np.testing.assert_allclose(u.dense, dense)
    with pytest.raises(SpeechUnitsError, match="centroids"):
        UnitExtractor(model, feats, tap=tap, kmeans=KMeans(np.zeros((4, 3), np.float32)))
    # a model with context: each frame stacked with a neighbour on either side (edges repeated)
    t = len(dense)
    stacked = np.concatenate([dense[np.clip(np.arange(t) + j, 0, t - 1)] for j in (-1, 0, 1)], axis=1)
    km3 = KMeans(stacked[rng.choice(t, 5, replace=False)] + 0.01, context=1)
    u3 = UnitExtractor(model, feats, tap=tap, kmeans=km3)(signal(1.0, seed=3))
    brute3 = ((stacked[:, None, :] - km3.centroids.numpy()[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(u3.frame_codes, brute3)
