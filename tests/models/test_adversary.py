"""The speaker adversary (models/adversary.py): each term against a loop, each term
moving only its own side, and its place in the autoencoder's training loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from speechunits.errors import SpeechUnitsError
from speechunits.models.adversary import SpeakerAdversary, SpeakerAdversaryConfig

from tests.models.test_invariance import tiny_masked_model


def test_terms_match_loops_over_valid_frames():
    torch.manual_seed(0)
    adv = SpeakerAdversary(5, 3, SpeakerAdversaryConfig(weight=2.0))
    x = torch.randn(2, 6, 5)
    lengths, spk = torch.tensor([6, 4]), torch.tensor([2, 0])
    out = adv(x, lengths, spk)
    frames = [(b, t) for b in range(2) for t in range(int(lengths[b]))]
    logits = adv.classifier(x).detach()
    ce = sum(-F.log_softmax(logits[b, t], -1)[spk[b]] for b, t in frames) / len(frames)
    to_uniform = sum(-F.log_softmax(logits[b, t], -1).mean() for b, t in frames) / len(frames) - math.log(3)
    assert out.classifier.item() == pytest.approx(ce.item(), rel=1e-5)
    assert out.confusion.item() == pytest.approx(to_uniform.item(), rel=1e-5)
    assert out.accuracy.item() == pytest.approx(sum(int(logits[b, t].argmax() == spk[b]) for b, t in frames) / len(frames))
    # a uniform guess is the confusion term's minimum, 0
    with torch.no_grad():
        adv.classifier.weight.zero_()
        adv.classifier.bias.zero_()
    assert adv(x, lengths, spk).confusion.item() == pytest.approx(0.0, abs=1e-6)


def test_each_term_moves_only_its_own_side():
    torch.manual_seed(1)
    adv = SpeakerAdversary(4, 3, SpeakerAdversaryConfig(weight=1.0))
    x = torch.randn(2, 5, 4, requires_grad=True)
    lengths, spk = torch.tensor([5, 3]), torch.tensor([1, 2])
    adv(x, lengths, spk).classifier.backward()
    assert x.grad is None and adv.classifier.weight.grad.abs().sum() > 0
    adv.zero_grad(set_to_none=True)
    adv(x, lengths, spk).confusion.backward()
    assert adv.classifier.weight.grad is None and x.grad.abs().sum() > 0
    assert not x.grad[1, 3:].any()  # padding frames get nothing


def _model(weight, conditioned=True):
    return tiny_masked_model(speaker_adversary={"weight": weight}, speaker_conditioning=conditioned,
                             speakers=["s1", "s2", "s3"] if conditioned else [])


def test_autoencoder_adds_the_adversary_in_training_only():
    torch.manual_seed(0)
    model = _model(0.5).train()
    feats, lengths, target = torch.randn(2, 20, 16), torch.tensor([20, 15]), torch.randint(0, 6, (2, 20))
    out = model(feats, lengths, torch.tensor([0, 2]), target, lengths)
    cls, conf = out.bottleneck_losses["speaker_classifier"], out.bottleneck_losses["speaker_confusion"]
    assert out.loss.item() == pytest.approx((out.recon_loss + cls + 0.5 * conf).item(), rel=1e-6)
    assert out.loss_weights["speaker_confusion"] == 0.5
    assert 0.0 <= out.stats["speaker_accuracy"].item() <= 1.0
    out.loss.backward()
    assert model.adversary.classifier.weight.grad is not None
    out = model.eval()(feats, lengths, torch.tensor([0, 2]), target, lengths)
    assert "speaker_classifier" not in out.bottleneck_losses
    assert _model(0.0).adversary is None


def test_adversary_needs_speaker_conditioning():
    with pytest.raises(SpeechUnitsError, match="speaker_conditioning=true"):
        _model(1.0, conditioned=False)
    with pytest.raises(SpeechUnitsError):
        SpeakerAdversaryConfig(weight=-1)
