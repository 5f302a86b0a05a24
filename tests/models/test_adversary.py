"""The speaker adversary (models/adversary.py): reversed gradients, the loss against a
loop, and its place in the autoencoder's training loss."""

import pytest
import torch
import torch.nn.functional as F

from speechunits.errors import SpeechUnitsError
from speechunits.models.adversary import SpeakerAdversary, SpeakerAdversaryConfig, reverse_gradient
from speechunits.models.autoencoder import SpeechAutoencoder, model_config_from_dict


def test_reversal_is_identity_forward_and_scaled_negation_backward():
    x = torch.randn(3, 4, requires_grad=True)
    w = torch.randn(3, 4)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.3 * w)


def test_loss_is_cross_entropy_over_valid_frames_and_the_encoder_side_gradient_is_reversed():
    torch.manual_seed(0)
    adv = SpeakerAdversary(5, 3, SpeakerAdversaryConfig(weight=2.0))
    x = torch.randn(2, 6, 5, requires_grad=True)
    lengths, spk = torch.tensor([6, 4]), torch.tensor([2, 0])
    loss, acc = adv(x, lengths, spk)
    frames = [(b, t) for b in range(2) for t in range(int(lengths[b]))]
    logits = adv.classifier(x.detach())
    ref = sum(-F.log_softmax(logits[b, t], -1)[spk[b]] for b, t in frames) / len(frames)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    guessed = sum(int(logits[b, t].argmax() == spk[b]) for b, t in frames) / len(frames)
    assert acc.item() == pytest.approx(guessed)
    loss.backward()
    plain = x.detach().clone().requires_grad_(True)
    F.cross_entropy(adv.classifier(plain)[torch.tensor([[1] * 6, [1] * 4 + [0] * 2]).bool()],
                    torch.tensor([2] * 6 + [0] * 4)).backward()
    assert torch.allclose(x.grad, -2.0 * plain.grad, atol=1e-6)  # the encoder is pushed the other way
    assert not x.grad[1, 4:].any()  # padding frames get nothing


def _model(weight, conditioned=True):
    return SpeechAutoencoder(model_config_from_dict(dict(
        input_dim=16,
        encoder={"channels": 8, "layers": ["k3", "k3d2"], "norm": "layer", "activation": "gelu"},
        bottleneck="ae", bottleneck_cfg={"dim": 8}, jitter=0.0,
        conditioning={"channels": 8, "speaker_dim": 2, "upsample": "repeat"},
        masking={"prob": 0.2, "span": 3},
        speaker_adversary={"weight": weight},
        decoder="cluster", decoder_cfg={"num_classes": 6, "frame_shift": 0.01, "channels": 8, "layers": 1},
        speaker_conditioning=conditioned, speakers=["s1", "s2", "s3"] if conditioned else [],
    )))


def test_autoencoder_adds_the_adversary_in_training_only():
    torch.manual_seed(0)
    model = _model(0.5).train()
    feats, lengths, target = torch.randn(2, 20, 16), torch.tensor([20, 15]), torch.randint(0, 6, (2, 20))
    out = model(feats, lengths, torch.tensor([0, 2]), target, lengths)
    adv = out.bottleneck_losses["speaker_adversary"]
    assert out.loss.item() == pytest.approx((out.recon_loss + adv).item(), rel=1e-6)
    assert 0.0 <= out.stats["speaker_accuracy"].item() <= 1.0
    out.loss.backward()
    assert model.adversary.classifier.weight.grad is not None
    out = model.eval()(feats, lengths, torch.tensor([0, 2]), target, lengths)
    assert "speaker_adversary" not in out.bottleneck_losses
    assert _model(0.0).adversary is None


def test_adversary_needs_speaker_conditioning():
    with pytest.raises(SpeechUnitsError, match="speaker_conditioning=true"):
        _model(1.0, conditioned=False)
    with pytest.raises(SpeechUnitsError):
        SpeakerAdversaryConfig(weight=-1)
