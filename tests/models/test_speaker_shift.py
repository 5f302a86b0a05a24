"""The speaker swap by cluster-conditional means (models/speaker_shift.py): statistics,
offsets and moves against loops over the frames, and its place in the masked model."""

import numpy as np
import pytest
import torch
from torch import nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.speaker_shift import SpeakerShift, SpeakerShiftConfig

from tests.models.test_invariance import tiny_masked_model


def _batch(seed=0, speakers=3, classes=4, bins=5):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(3, 12, bins, generator=g)
    labels = torch.randint(0, classes, (3, 12), generator=g)
    labels[0, 3] = -1  # a frame without a label
    lengths = torch.tensor([12, 9, 7])
    spk = torch.tensor([0, 2, 0])
    return feats, labels, lengths, spk


def _loop_stats(feats, labels, lengths, spk, speakers, classes):
    sums = np.zeros((speakers, classes, feats.shape[2]))
    counts = np.zeros((speakers, classes))
    for b in range(feats.shape[0]):
        for t in range(int(lengths[b])):
            c = int(labels[b, t])
            if c >= 0:
                sums[int(spk[b]), c] += feats[b, t].double().numpy()
                counts[int(spk[b]), c] += 1
    return sums, counts


def _loop_offsets(sums, counts, shrink):
    means = sums.sum(0) / np.maximum(counts.sum(0), 1)[:, None]
    return (sums - counts[..., None] * means) / (counts + shrink)[..., None]


def test_statistics_and_offsets_match_loops():
    feats, labels, lengths, spk = _batch()
    shift = SpeakerShift(3, 4, 5, SpeakerShiftConfig(prob=1.0, shrink=2.0))
    shift.accumulate(feats, labels, spk, lengths)
    shift.accumulate(feats[:1], labels[:1], spk[:1], lengths[:1])  # sums add up over calls
    s1, c1 = _loop_stats(feats, labels, lengths, spk, 3, 4)
    s2, c2 = _loop_stats(feats[:1], labels[:1], lengths[:1], spk[:1], 3, 4)
    np.testing.assert_allclose(shift.sums.numpy(), s1 + s2, atol=1e-9)
    np.testing.assert_array_equal(shift.counts.numpy(), c1 + c2)
    assert shift.counts[1].sum() == 0  # speaker 1 has no frames: its offsets are 0
    expected = _loop_offsets(s1 + s2, c1 + c2, 2.0)
    np.testing.assert_allclose(shift.offsets(torch.arange(3)).numpy(), expected, atol=1e-9)
    np.testing.assert_array_equal(shift.offsets(torch.tensor([1])).numpy(), 0.0)
    # without shrinkage, a speaker's offset is exactly its cluster mean minus all speakers' mean
    exact = SpeakerShift(3, 4, 5, SpeakerShiftConfig(prob=1.0, shrink=0.0))
    exact.accumulate(feats, labels, spk, lengths)
    frames = {(b, t) for b in range(3) for t in range(int(lengths[b])) if int(labels[b, t]) == 1}
    everyone = torch.stack([feats[b, t] for b, t in frames]).double().mean(0)
    speaker0 = torch.stack([feats[b, t] for b, t in frames if int(spk[b]) == 0]).double().mean(0)
    np.testing.assert_allclose(exact.offsets(torch.tensor([0]))[0, 1].numpy(), (speaker0 - everyone).numpy(), atol=1e-9)


@pytest.mark.parametrize("smooth", [1, 3, 5])
def test_moves_match_a_loop_with_the_moving_average_over_labelled_frames(smooth):
    feats, labels, lengths, spk = _batch(seed=1)
    shift = SpeakerShift(3, 4, 5, SpeakerShiftConfig(prob=1.0, shrink=1.0, smooth=smooth))
    shift.accumulate(feats, labels, spk, lengths)
    target = torch.tensor([1, 0, 2])
    moves = shift.shift(labels, spk, target, lengths).numpy()
    d = shift.offsets(torch.arange(3)).numpy()
    for b in range(3):
        valid = [t for t in range(12) if t < int(lengths[b]) and int(labels[b, t]) >= 0]
        raw = {t: d[int(target[b]), int(labels[b, t])] - d[int(spk[b]), int(labels[b, t])] for t in valid}
        for t in range(12):
            if t not in raw:
                np.testing.assert_array_equal(moves[b, t], 0.0)
                continue
            window = [u for u in range(t - smooth // 2, t + smooth // 2 + 1) if u in raw]
            np.testing.assert_allclose(moves[b, t], np.mean([raw[u] for u in window], 0), atol=1e-6)


def test_forward_moves_chosen_crops_toward_another_speaker_in_training_only():
    feats, labels, lengths, spk = _batch(seed=2)
    spk = torch.tensor([0, 1, 1])
    shift = SpeakerShift(2, 4, 5, SpeakerShiftConfig(prob=1.0, shrink=1.0, smooth=1))
    out = shift(feats, lengths, spk, labels)
    # two speakers: "another speaker" is always the other one
    expected = feats + shift.shift(labels, spk, 1 - spk, lengths).float()
    torch.testing.assert_close(out, expected)
    assert not torch.equal(out, feats)
    counts = shift.counts.clone()
    assert torch.equal(shift.eval()(feats, lengths, spk, labels), feats)
    assert torch.equal(shift.counts, counts)  # eval mode neither moves nor counts
    off = SpeakerShift(2, 4, 5, SpeakerShiftConfig(prob=0.0))
    assert torch.equal(off.train()(feats, lengths, spk, labels), feats)


def test_other_speaker_is_never_the_source_and_prob_sets_the_share():
    torch.manual_seed(0)
    shift = SpeakerShift(4, 3, 2, SpeakerShiftConfig(prob=0.5, shrink=0.0, smooth=1))
    # every speaker's offsets distinct: speaker s has its cluster-0 frames at value s
    feats = torch.arange(4.0)[:, None, None].expand(4, 6, 2).contiguous()
    labels = torch.zeros(4, 6, dtype=torch.long)
    spk, lengths = torch.arange(4), torch.full((4,), 6)
    shift.accumulate(feats, labels, spk, lengths)
    moved, trials = 0, 400
    for _ in range(trials // 4):
        out = shift(feats, lengths, spk, labels) - feats  # the same frames again: the means stay
        for b in range(4):
            target_value = out[b, 0, 0].item()  # d[s'] - d[s] = s' - s
            if target_value != 0.0:
                moved += 1
                assert round(target_value + b) in {0, 1, 2, 3} - {b}
    assert abs(moved / trials - 0.5) < 0.1


def test_the_masked_model_feeds_the_moved_frames_to_the_warp_and_keeps_its_targets():
    torch.manual_seed(0)
    model = tiny_masked_model(speaker_shift={"prob": 1.0, "shrink": 0.5, "smooth": 1}, masking={"prob": 0.0, "span": 3}).train()
    seen = {}

    class Spy(nn.Module):
        def forward(self, x):
            seen["feats"] = x.clone()
            return x

    model.warp = Spy()
    feats, lengths = torch.randn(2, 20, 16), torch.tensor([20, 15])
    target = torch.randint(0, 6, (2, 20))
    target[1, 15:] = -1
    spk = torch.tensor([0, 1])
    out = model(feats, lengths, spk, target, lengths)
    assert torch.isfinite(out.loss)
    expected = feats + model.speaker_shift.shift(target, spk, 1 - spk, lengths).float()
    torch.testing.assert_close(seen["feats"], expected)
    # statistics from the unmoved frames only
    sums, counts = _loop_stats(feats, target, lengths, spk, 2, 6)
    np.testing.assert_allclose(model.speaker_shift.sums.numpy(), sums, atol=1e-5)
    # the buffers travel in the state dict; eval mode passes the frames unchanged
    assert "speaker_shift.sums" in model.state_dict()
    model.eval()(feats, lengths, spk, target, lengths)
    torch.testing.assert_close(seen["feats"], feats)


def test_labels_at_the_input_rate_follow_the_decoders_rate():
    model = tiny_masked_model()
    target = torch.arange(10)[None, :]
    torch.testing.assert_close(model._input_rate_labels(target, 12), torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, -1]]))
    twice = tiny_masked_model(decoder_cfg={"num_classes": 6, "frame_shift": 0.005, "channels": 8, "layers": 1})
    # two target positions per input frame: frame t reads the position under its centre, 2t + 1
    torch.testing.assert_close(twice._input_rate_labels(target, 6), torch.tensor([[1, 3, 5, 7, 9, -1]]))


def test_config_is_checked():
    for bad in ({"prob": 1.5}, {"shrink": -1.0}, {"smooth": 4}, {"smooth": 0}):
        with pytest.raises(SpeechUnitsError):
            SpeakerShiftConfig(**bad)
    with pytest.raises(SpeechUnitsError, match="speaker_conditioning=true"):
        tiny_masked_model(speaker_shift={"prob": 0.5}, speaker_conditioning=False, speakers=[])
    with pytest.raises(SpeechUnitsError, match=">= 2 speakers"):
        SpeakerShift(1, 4, 5, SpeakerShiftConfig(prob=0.5))
    with pytest.raises(SpeechUnitsError, match="decoder: cluster"):
        tiny_masked_model(speaker_shift={"prob": 0.5}, decoder="fbank", decoder_cfg={})
    with pytest.raises(SpeechUnitsError, match="input_dim must be >= 2"):
        tiny_masked_model(speaker_shift={"prob": 0.5}, input_dim=1)
    assert tiny_masked_model().speaker_shift is None


def test_statistics_survive_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = tiny_masked_model(speaker_shift={"prob": 0.5}).train()
    feats, lengths, target = torch.randn(2, 20, 16), torch.tensor([20, 15]), torch.randint(0, 6, (2, 20))
    model(feats, lengths, torch.tensor([0, 1]), target, lengths)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    other = tiny_masked_model(speaker_shift={"prob": 0.5})
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert other.speaker_shift.counts.sum() == 35 and torch.equal(other.speaker_shift.sums, model.speaker_shift.sums)
