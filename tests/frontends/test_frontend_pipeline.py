"""Registries, configs, presets, and the two-pass feature pipeline."""

import numpy as np
import pytest
import torch

from speechunits.config import from_dict, to_dict
from speechunits.frontends.deltas import balanced_deltas
from speechunits.frontends import (
    FEATURE_PRESETS,
    FRONTENDS,
    CmvnStats,
    FeaturePipeline,
    FeaturePipelineConfig,
    FbankConfig,
    Mfcc,
    MfccConfig,
    add_deltas,
    build_frontend,
    feature_preset,
)


@pytest.fixture
def speech(rng):
    t = np.arange(12000) / 16000
    return (0.3 * np.sin(2 * np.pi * 300 * t * (1 + t)) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def test_registries_know_the_front_ends_and_presets():
    assert {"fbank", "mfcc", "waveform"} <= set(FRONTENDS)
    assert {"fbank", "mfcc", "mfcc_dd", "waveform"} <= set(FEATURE_PRESETS)
    with pytest.raises(KeyError, match="known: .*fbank"):
        build_frontend("plp")


@pytest.mark.parametrize(
    "preset,dim,shift", [("fbank", 80, 0.01), ("mfcc", 13, 0.01), ("mfcc_dd", 39, 0.01), ("waveform", 1, 1 / 16000)]
)
def test_presets_have_documented_shapes(preset, dim, shift, speech):
    pipe = FeaturePipeline.from_preset(preset)
    feats = pipe.compute(speech)
    assert pipe.feature_dim == dim and feats.shape == (pipe.num_frames(len(speech)), dim)
    assert pipe.frame_shift == pytest.approx(shift) and pipe.sample_rate == 16000


def test_mfcc_dd_is_mfcc_then_kaldi_deltas(speech):
    mfcc = Mfcc(MfccConfig()).compute(speech)
    np.testing.assert_allclose(FeaturePipeline.from_preset("mfcc_dd").compute(speech), add_deltas(mfcc), atol=1e-5)


def test_build_frontend_takes_dicts_and_dataclasses_and_rejects_typos():
    a = build_frontend("fbank", {"mel_opts": {"num_bins": 40}, "frame_opts": {"snip_edges": True}})
    b = build_frontend("fbank", from_dict(FbankConfig, to_dict(a.config)))
    assert a.feature_dim == b.feature_dim == 40 and b.config.frame_opts.snip_edges
    with pytest.raises(KeyError, match="num_mel_bins"):
        build_frontend("fbank", {"num_mel_bins": 40})
    with pytest.raises(TypeError):
        build_frontend("fbank", MfccConfig())
    with pytest.raises(ValueError):
        build_frontend("mfcc", {"num_ceps": 30})  # more cepstra than mel bins


def test_preset_overrides_and_config_round_trip(speech):
    cfg = feature_preset("fbank", ["frontend_config.mel_opts.num_bins=40", "cmvn=utterance", "deltas=1"])
    assert cfg.frontend_config["mel_opts"]["num_bins"] == 40 and cfg.cmvn == "utterance"
    again = from_dict(FeaturePipelineConfig, to_dict(cfg))
    pipe = FeaturePipeline(again)
    feats = pipe.compute(speech)
    assert feats.shape[1] == 80 == pipe.feature_dim
    np.testing.assert_allclose(feats[:, :40].mean(0), 0, atol=1e-4)  # utterance CMVN of the statics,
    static = pipe.compute_static(speech)                              # then deltas (Kaldi order)
    np.testing.assert_allclose(feats[:, 40:], add_deltas(static, order=1)[:, 40:], atol=1e-3)
    assert pipe.describe()["pipeline"] == to_dict(cfg)
    with pytest.raises(ValueError):
        FeaturePipelineConfig(cmvn="global")


def test_speaker_cmvn_second_pass_in_kaldi_order(speech, rng):
    """apply-cmvn on the statics over the speaker's utterances, then add-deltas."""
    pipe = FeaturePipeline.from_preset("mfcc_dd", ["cmvn=speaker", "norm_vars=true"])
    assert pipe.needs_speaker_pass
    statics_pipe = FeaturePipeline.from_preset("mfcc")
    utt2spk = {"s1-a": "s1", "s1-b": "s1", "s2-a": "s2"}
    audio = {u: speech[i * 1000 : i * 1000 + 8000] * (i + 1) for i, u in enumerate(utt2spk)}
    first = {u: pipe.compute_static(x) for u, x in audio.items()}  # pass 1: statics only
    for u in first:
        np.testing.assert_array_equal(first[u], statics_pipe.compute(audio[u]))
    second = pipe.normalize_speakers(first, utt2spk)
    s1 = np.concatenate([first["s1-a"], first["s1-b"]]).astype(np.float64)
    normed = ((first["s1-b"] - s1.mean(0)) / s1.std(0)).astype(np.float32)
    expected = add_deltas(normed)
    assert second["s1-b"].shape == (first["s1-b"].shape[0], 39)
    np.testing.assert_allclose(second["s1-b"], expected, rtol=1e-4, atol=1e-4)
    # the delta dimensions are not mean-shifted (Kaldi: deltas of normalised statics)
    np.testing.assert_allclose(second["s1-b"][:, 13:], add_deltas(first["s1-b"] / s1.std(0).astype(np.float32))[:, 13:],
                               rtol=1e-3, atol=1e-3)
    # stats accumulated incrementally (e.g. while writing pass 1 to disk) give the same
    stats = {"s1": CmvnStats(13), "s2": CmvnStats(13)}
    for u, f in first.items():
        stats[utt2spk[u]].accumulate(f)
    np.testing.assert_allclose(pipe.normalize_speakers(first, utt2spk, stats)["s2-a"], second["s2-a"])
    # a pipeline without speaker CMVN has no second pass
    with pytest.raises(ValueError, match="second pass"):
        statics_pipe.normalize_speakers(first, utt2spk)


def test_delta_balance_scales_each_utterance_deltas_to_a_share_of_the_statics(speech):
    """delta_balance: the deltas of `mfcc_dd` (both orders by one factor) scaled per utterance so
    that their RMS is the balance times the statics' (brute force on the unscaled features); in a
    padded batch each utterance's own valid frames set its factor; order 1 equals balanced_deltas."""
    plain = FeaturePipeline.from_preset("mfcc_dd")
    pipe = FeaturePipeline.from_preset("mfcc_dd", ["delta_balance=0.8"])
    rms = lambda x: np.sqrt(np.mean(np.square(x, dtype=np.float64)))  # noqa: E731
    clips = [speech, speech[:5000] * 3]
    for x in clips:
        ref, got = plain.compute(x), pipe.compute(x)
        np.testing.assert_allclose(got[:, :13], ref[:, :13], atol=1e-6)
        factor = 0.8 * rms(ref[:, :13]) / rms(ref[:, 13:])
        np.testing.assert_allclose(got[:, 13:], ref[:, 13:] * factor, rtol=1e-4, atol=1e-4)
    padded = torch.zeros(2, len(clips[0]))
    for i, x in enumerate(clips):
        padded[i, : len(x)] = torch.from_numpy(x)
    batch = pipe(padded, torch.tensor([len(x) for x in clips]))
    for i, x in enumerate(clips):
        n = int(batch.lengths[i])
        np.testing.assert_allclose(batch.feats[i, :n].numpy(), pipe.compute(x), rtol=1e-4, atol=1e-4)
    one = FeaturePipeline.from_preset("mfcc", ["deltas=1", "delta_balance=1"])
    np.testing.assert_allclose(one.compute(speech), balanced_deltas(Mfcc(MfccConfig()).compute(speech), 1.0),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="delta_balance"):
        FeaturePipelineConfig(deltas=2, delta_balance=-1)
    with pytest.raises(ValueError, match="set deltas"):
        FeaturePipelineConfig(delta_balance=1)
