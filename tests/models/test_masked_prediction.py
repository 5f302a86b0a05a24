"""Masked prediction: span masking, the cluster decoder, and the masked-only loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from speechunits.errors import SpeechUnitsError
from speechunits.models.autoencoder import SpeechAutoencoder, model_config_from_dict
from speechunits.models.cluster_decoder import IGNORE_LABEL, ClusterDecoder, ClusterDecoderConfig
from speechunits.models.masking import MaskingConfig, SpanMasking


def test_span_masks_cover_the_expected_fraction_in_whole_spans():
    torch.manual_seed(0)
    m = SpanMasking(4, MaskingConfig(prob=0.065, span=10)).train()
    lengths = torch.tensor([4000, 2500])
    mask = m.draw(lengths, 4000)
    assert not mask[1, 2500:].any()  # never on padding
    frac = mask[0].float().mean().item()
    assert frac == pytest.approx(1 - (1 - 0.065) ** 10, abs=0.03)  # 0.49
    # brute force: a frame is masked iff a span started in the 10 frames up to it
    torch.manual_seed(1)
    small = m.draw(torch.tensor([50]), 50)[0]
    torch.manual_seed(1)
    starts = (torch.rand(1, 50) < 0.065)[0]
    expect = torch.tensor([bool(starts[max(0, t - 9) : t + 1].any()) for t in range(50)])
    assert torch.equal(small, expect)


def test_masking_replaces_frames_by_the_learned_vector_in_training_only():
    m = SpanMasking(3, MaskingConfig(prob=0.3, span=2))
    with torch.no_grad():
        m.embedding.copy_(torch.tensor([7.0, 8.0, 9.0]))
    x = torch.randn(2, 20, 3)
    torch.manual_seed(0)
    y, mask = m.train()(x, torch.tensor([20, 12]))
    assert mask.any() and torch.equal(y[~mask], x[~mask])
    assert torch.equal(y[mask], torch.tensor([7.0, 8.0, 9.0]).expand(int(mask.sum()), 3))
    y, mask = m.eval()(x)
    assert mask is None and y is x
    assert SpanMasking(3, MaskingConfig(prob=0.0)).train()(x)[1] is None


def test_cluster_decoder_loss_is_cross_entropy_over_counted_positions():
    torch.manual_seed(0)
    dec = ClusterDecoder(ClusterDecoderConfig(num_classes=5, layers=2, channels=8), cond_dim=6, speaker_dim=3)
    cond, spk = torch.randn(2, 9, 6), torch.randn(2, 3)
    target = torch.randint(0, 5, (2, 9))
    target[0, 3] = IGNORE_LABEL
    lengths = torch.tensor([9, 6])
    out = dec(cond, spk, target, lengths)
    logits = dec.logits(cond, spk, lengths)
    counted = [(b, t) for b in range(2) for t in range(int(lengths[b])) if target[b, t] >= 0]
    ref = sum(-F.log_softmax(logits[b, t], -1)[target[b, t]] for b, t in counted) / len(counted)
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert out.predictions.shape == (2, 9, 5)
    bad = target.clone()
    bad[1, 0] = 5
    with pytest.raises(SpeechUnitsError, match="num_classes"):
        dec(cond, spk, bad, lengths)
    with pytest.raises(SpeechUnitsError, match="integers"):
        dec(cond, spk, torch.randn(2, 9, 5), lengths)
    with pytest.raises(SpeechUnitsError, match="cannot resynthesize"):
        dec.generate(cond, spk, lengths)
    nothing = torch.full_like(target, IGNORE_LABEL)
    assert dec(cond, spk, nothing, lengths).loss.item() == 0.0


def test_cluster_decoder_heads_each_score_their_label_set():
    """extra_classes: the loss is the mean over heads of each head's cross-entropy on its own
    column of labels; the main head's logits are the predictions; a single head takes (B, N)
    or (B, N, 1) alike."""
    torch.manual_seed(0)
    dec = ClusterDecoder(ClusterDecoderConfig(num_classes=5, layers=1, channels=8, extra_classes=[3, 4]), cond_dim=6, speaker_dim=0)
    cond, lengths = torch.randn(2, 9, 6), torch.tensor([9, 6])
    target = torch.stack([torch.randint(0, k, (2, 9)) for k in (5, 3, 4)], dim=-1)
    target[0, 2, 1] = IGNORE_LABEL
    out = dec(cond, None, target, lengths)
    heads = dec.all_logits(cond, None, lengths)
    assert [h.shape[-1] for h in heads] == [5, 3, 4] and torch.equal(out.predictions, heads[0])
    per_head = []
    for m, logits in enumerate(heads):
        counted = [(b, t) for b in range(2) for t in range(int(lengths[b])) if target[b, t, m] >= 0]
        per_head.append(sum(-F.log_softmax(logits[b, t], -1)[target[b, t, m]] for b, t in counted) / len(counted))
    assert out.loss.item() == pytest.approx(sum(per_head).item() / 3, rel=1e-5)
    bad = target.clone()
    bad[1, 0, 2] = 4
    with pytest.raises(SpeechUnitsError, match=r"extra_classes\[1\]=4"):
        dec(cond, None, bad, lengths)
    with pytest.raises(SpeechUnitsError, match=r"\(B, N, 3\)"):
        dec(cond, None, target[..., :2], lengths)
    with pytest.raises(SpeechUnitsError, match="extra_classes must be >= 2"):
        ClusterDecoderConfig(extra_classes=[1])
    lonely = target.clone()
    lonely[..., 2] = IGNORE_LABEL  # nothing counts for the third head: it adds 0 to the mean
    assert dec(cond, None, lonely, lengths).loss.item() == pytest.approx((per_head[0] + per_head[1]).item() / 3, rel=1e-5)
    one = ClusterDecoder(ClusterDecoderConfig(num_classes=5, layers=1, channels=8), cond_dim=6, speaker_dim=0)
    assert one(cond, None, target[..., :1], lengths).loss.item() == pytest.approx(one(cond, None, target[..., 0], lengths).loss.item())


def test_masked_model_masks_every_label_set_alike():
    """With two label sets only the positions inside masked input frames count, in both."""
    cfg = model_config_from_dict(dict(
        input_dim=4, encoder={"channels": 8, "layers": ["k3"]}, bottleneck="ae", bottleneck_cfg={"dim": 8}, jitter=0.0,
        conditioning={"channels": 8}, masking={"prob": 0.2, "span": 3},
        decoder="cluster", decoder_cfg={"num_classes": 6, "extra_classes": [4], "channels": 8, "layers": 1},
        speaker_conditioning=False,
    ))
    torch.manual_seed(0)
    model = SpeechAutoencoder(cfg).train()
    feats = torch.randn(2, 16, 4)
    target = torch.stack([torch.randint(0, 6, (2, 16)), torch.randint(0, 4, (2, 16))], dim=-1)
    torch.manual_seed(3)
    out = model(feats, None, None, target)
    torch.manual_seed(3)  # the same draw again, through the model's parts by hand
    masked, mask = model.masking(feats, None)
    enc = model.encoder(masked, None)
    cond = model.conditioning(model.bottleneck(enc.values, enc.lengths).latents, enc.lengths, None)
    heads = model.decoder.all_logits(cond.upsampled, None)
    per_head = [-F.log_softmax(h, -1).gather(-1, target[..., m : m + 1])[..., 0][mask].mean() for m, h in enumerate(heads)]
    assert mask.any() and out.recon_loss.item() == pytest.approx((per_head[0] + per_head[1]).item() / 2, rel=1e-5)


def test_two_views_and_speaker_swap_take_several_label_sets():
    """The invariance path duplicates (B, N, M) targets like (B, N) ones, and the speaker swap
    reads its clusters from the first label set."""
    cfg = model_config_from_dict(dict(
        input_dim=4, encoder={"channels": 8, "layers": ["k3"]}, bottleneck="ae", bottleneck_cfg={"dim": 8}, jitter=0.0,
        conditioning={"channels": 8, "speaker_dim": 2}, masking={"prob": 0.2, "span": 3},
        warp={"max_log_factor": 0.2}, invariance={"weight": 1.0}, speaker_shift={"prob": 1.0}, speakers=["a", "b"],
        decoder="cluster", decoder_cfg={"num_classes": 6, "extra_classes": [4], "channels": 8, "layers": 1},
    ))
    torch.manual_seed(0)
    model = SpeechAutoencoder(cfg).train()
    feats = torch.randn(2, 16, 4)
    target = torch.stack([torch.randint(0, 6, (2, 16)), torch.randint(0, 4, (2, 16))], dim=-1)
    assert torch.equal(model._input_rate_labels(target, 16), model._input_rate_labels(target[..., 0], 16))
    out = model(feats, None, torch.tensor([0, 1]), target)
    out.loss.backward()
    assert math.isfinite(out.loss.item()) and out.predictions.shape == (2, 16, 6)  # the first view's


def _masked_model(label_shift=0.01, loss_on="masked"):
    cfg = model_config_from_dict(dict(
        input_dim=4,
        encoder={"channels": 8, "layers": ["k4s2", "k3d2"], "norm": "layer", "activation": "gelu"},
        bottleneck="ae", bottleneck_cfg={"dim": 8}, jitter=0.0,
        conditioning={"channels": 8, "speaker_dim": 2},
        masking={"prob": 0.2, "span": 3, "loss_on": loss_on},
        decoder="cluster", decoder_cfg={"num_classes": 6, "frame_shift": label_shift, "channels": 8, "layers": 1},
        speaker_conditioning=False,
    ))
    torch.manual_seed(0)
    return SpeechAutoencoder(cfg)


@pytest.mark.parametrize("label_shift", [0.01, 0.005, 0.02])
def test_only_labels_inside_masked_input_frames_are_scored(label_shift):
    """The loss of a masked model equals the cross-entropy over the labels whose centre lies
    in a masked input frame, at label rates above, at and below the input rate."""
    model = _masked_model(label_shift).train()
    T, per = 16, 0.01 / label_shift
    n = int(round(T * per))
    feats, target = torch.randn(2, T, 4), torch.randint(0, 6, (2, n))
    torch.manual_seed(3)
    out = model(feats, None, None, target)
    torch.manual_seed(3)
    mask = model.masking.draw(torch.tensor([T, T]), T)
    frame = [min(T - 1, math.floor((p + 0.5) / per)) for p in range(n)]
    keep = torch.stack([mask[b, frame] for b in range(2)])
    logp = F.log_softmax(out.predictions, -1)
    picked = logp.gather(-1, target[..., None])[..., 0]
    assert keep.any() and out.recon_loss.item() == pytest.approx(-picked[keep].mean().item(), rel=1e-5)


def test_masked_model_scores_every_frame_at_inference_or_when_asked():
    feats, target = torch.randn(1, 12, 4), torch.randint(0, 6, (1, 12))
    for model in (_masked_model().eval(), _masked_model(loss_on="all").train()):
        out = model(feats, None, None, target)
        logp = F.log_softmax(out.predictions, -1).gather(-1, target[..., None])
        assert out.recon_loss.item() == pytest.approx(-logp.mean().item(), rel=1e-5)


def test_band_masking_reaches_the_encoder_in_training_only():
    """model.band_masking: the encoder sees the crop with its bands zeroed (the same draws
    replayed by hand give the same loss), and eval mode passes the frames unchanged."""
    cfg = model_config_from_dict(dict(
        input_dim=4, encoder={"channels": 8, "layers": ["k3"]}, bottleneck="ae", bottleneck_cfg={"dim": 8},
        jitter=0.0, conditioning={"channels": 8}, band_masking={"count": 1, "max_width": 2},
        decoder="cluster", decoder_cfg={"num_classes": 6, "channels": 8, "layers": 1}, speaker_conditioning=False,
    ))
    torch.manual_seed(0)
    model = SpeechAutoencoder(cfg).train()
    feats, target = torch.randn(3, 10, 4) + 3.0, torch.randint(0, 6, (3, 10))
    torch.manual_seed(5)
    loss = model(feats, None, None, target).recon_loss
    torch.manual_seed(5)
    bands = model.band_masking.draw(3)
    assert bands.any()
    model.band_masking.cfg.count = 0  # the same model, fed the hand-masked frames
    replayed = model(feats.masked_fill(bands[:, None, :], 0.0), None, None, target).recon_loss
    assert loss.item() == pytest.approx(replayed.item(), rel=1e-6)
    model.eval()
    plain = model(feats, None, None, target).predictions
    model.band_masking.cfg.count = 1
    assert torch.equal(model(feats, None, None, target).predictions, plain)
