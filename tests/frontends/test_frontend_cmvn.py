"""CMVN per utterance and per speaker against numpy over the concatenated frames."""

import numpy as np
import pytest
import torch

from speechunits.errors import SpeechUnitsError
from speechunits.frontends import CmvnStats, apply_speaker_cmvn, speaker_cmvn_stats, utterance_cmvn


@pytest.fixture
def corpus(rng):
    utt2spk = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b"}
    feats = {
        utt: (rng.standard_normal((int(rng.integers(5, 40)), 6)) * (3 if spk == "a" else 0.5) + (10 if spk == "a" else -2))
        .astype(np.float32)
        for utt, spk in utt2spk.items()
    }
    return feats, utt2spk


@pytest.mark.parametrize("norm_vars", [False, True])
def test_speaker_cmvn_uses_all_of_a_speakers_frames(corpus, norm_vars):
    feats, utt2spk = corpus
    stats = speaker_cmvn_stats(feats, utt2spk)
    normed = apply_speaker_cmvn(feats, utt2spk, stats, norm_vars=norm_vars)
    for spk in ("a", "b"):
        utts = [u for u in sorted(feats) if utt2spk[u] == spk]
        frames = np.concatenate([feats[u] for u in utts]).astype(np.float64)
        mean, std = frames.mean(0), frames.std(0)
        assert stats[spk].count == len(frames)
        np.testing.assert_allclose(stats[spk].mean, mean, rtol=1e-10)
        np.testing.assert_allclose(stats[spk].var, std**2, rtol=1e-8)
        for u in utts:
            expected = (feats[u] - mean) / (std if norm_vars else 1.0)
            np.testing.assert_allclose(normed[u], expected, rtol=1e-5, atol=1e-5)
            assert normed[u].dtype == np.float32
        together = np.concatenate([normed[u] for u in utts])
        np.testing.assert_allclose(together.mean(0), 0, atol=1e-5)
        if norm_vars:
            np.testing.assert_allclose(together.std(0), 1, atol=1e-5)


def test_utterance_cmvn_on_tensors_and_batches(rng):
    x = torch.from_numpy(rng.standard_normal((50, 4)).astype(np.float32) * 2 + 7)
    y = utterance_cmvn(x, norm_vars=True)
    np.testing.assert_allclose(y.numpy(), ((x - x.mean(0)) / x.std(0, unbiased=False)).numpy(), atol=1e-5)
    batch = torch.from_numpy(rng.standard_normal((3, 20, 4)).astype(np.float32) + 5)
    lengths = torch.tensor([20, 8, 13])
    out = utterance_cmvn(batch, lengths)
    for b, n in enumerate(lengths.tolist()):
        np.testing.assert_allclose(out[b, :n].numpy(), (batch[b, :n] - batch[b, :n].mean(0)).numpy(), atol=1e-5)
        assert torch.all(out[b, n:] == 0)


def test_stats_accumulate_merge_and_kaldi_layout(rng):
    a, b = rng.standard_normal((10, 3)), rng.standard_normal((7, 3))
    merged = CmvnStats(3).accumulate(a).merge(CmvnStats(3).accumulate(torch.from_numpy(b)))
    both = np.concatenate([a, b])
    kaldi = merged.to_kaldi()
    assert kaldi.shape == (2, 4) and kaldi[0, 3] == 17 and kaldi[1, 3] == 0
    np.testing.assert_allclose(kaldi[0, :3], both.sum(0))
    np.testing.assert_allclose(kaldi[1, :3], (both**2).sum(0))
    again = CmvnStats.from_kaldi(kaldi)
    np.testing.assert_allclose(again.apply(both, norm_vars=True), merged.apply(both, norm_vars=True))


def test_constant_dimension_is_floored_not_divided_by_zero():
    x = np.ones((5, 2))
    x[:, 1] = [1, 2, 3, 4, 5]
    out = CmvnStats(2).accumulate(x).apply(x, norm_vars=True)
    assert np.all(np.isfinite(out)) and np.allclose(out[:, 0], 0)


def test_bad_input_raises_named_errors(corpus):
    feats, utt2spk = corpus
    with pytest.raises(SpeechUnitsError, match="a1"):
        speaker_cmvn_stats(feats, {k: v for k, v in utt2spk.items() if k != "a1"})
    with pytest.raises(SpeechUnitsError, match="insufficient"):
        CmvnStats(6).apply(feats["a1"])
    with pytest.raises(SpeechUnitsError, match="speaker b"):
        apply_speaker_cmvn(feats, utt2spk, {"a": CmvnStats(6).accumulate(feats["a1"])})
    with pytest.raises(SpeechUnitsError, match="shape"):
        CmvnStats(5).accumulate(feats["a1"])
