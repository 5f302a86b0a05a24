"""Two-view invariance (models/invariance.py): the loss terms against brute-force
loops, and the autoencoder's two-copy forward."""

import math

import pytest
import torch

from speechunits.errors import SpeechUnitsError
from speechunits.models.autoencoder import SpeechAutoencoder, model_config_from_dict
from speechunits.models.invariance import InvarianceConfig, frame_contrast, frame_disagreement, two_view_loss


def _cos(u, v):
    return float(torch.dot(u, v) / (u.norm() * v.norm()))


def test_disagreement_is_the_mean_of_one_minus_cosine_over_valid_frames():
    torch.manual_seed(0)
    a, b = torch.randn(2, 7, 5), torch.randn(2, 7, 5)
    lengths = torch.tensor([7, 3])
    terms = [1 - _cos(a[i, t], b[i, t]) for i in range(2) for t in range(int(lengths[i]))]
    assert frame_disagreement(a, b, lengths).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    assert frame_disagreement(a, a * 3.0, lengths).item() == pytest.approx(0.0, abs=1e-6)  # scale-free


def test_contrast_matches_a_loop_over_anchors_and_allowed_candidates():
    torch.manual_seed(1)
    a, b = torch.randn(2, 12, 4), torch.randn(2, 12, 4)
    lengths = torch.tensor([12, 9])
    tau, exclude = 0.5, 2
    total, count = 0.0, 0
    for i in range(2):
        n = int(lengths[i])
        for t in range(n):
            cands = [s for s in range(n) if s == t or abs(s - t) > exclude]
            logits = torch.tensor([_cos(a[i, t], b[i, s]) / tau for s in cands], dtype=torch.float64)
            total += -(logits[cands.index(t)] - torch.logsumexp(logits, 0)).item()
            count += 1
    got = frame_contrast(a, b, lengths, tau, exclude)
    assert got.item() == pytest.approx(total / count, rel=1e-5)
    # identical views far apart in direction from each other score near zero
    eye = torch.eye(12)[None] * 10
    assert frame_contrast(eye, eye, torch.tensor([12]), 0.05, 0).item() == pytest.approx(0.0, abs=1e-6)
    sym = two_view_loss(InvarianceConfig(weight=1, loss="contrastive", temperature=tau, exclude=exclude), a, b, lengths)
    back = frame_contrast(b, a, lengths, tau, exclude)
    assert sym.item() == pytest.approx(0.5 * (got.item() + back.item()), rel=1e-6)


def test_config_is_checked():
    for bad in (dict(weight=-1), dict(loss="l2"), dict(temperature=0), dict(exclude=-1)):
        with pytest.raises(SpeechUnitsError):
            InvarianceConfig(**bad)


def tiny_masked_model(**model):
    """A tiny speaker-conditioned masked predictor over 16 log-mel bins; `model` adds or
    replaces keys of its `model:` mapping (shared with test_adversary.py)."""
    cfg = dict(
        input_dim=16,
        encoder={"channels": 8, "layers": ["k3", "k3d2"], "norm": "layer", "activation": "gelu"},
        bottleneck="ae", bottleneck_cfg={"dim": 8}, jitter=0.0,
        conditioning={"channels": 8, "speaker_dim": 2, "upsample": "repeat"},
        masking={"prob": 0.2, "span": 3},
        decoder="cluster", decoder_cfg={"num_classes": 6, "frame_shift": 0.01, "channels": 8, "layers": 1},
        speakers=["s1", "s2"],
    )
    cfg.update(model)
    return SpeechAutoencoder(model_config_from_dict(cfg))


def _model(weight=1.0, loss="cosine", warp=0.2):
    return tiny_masked_model(warp={"max_log_factor": warp}, invariance={"weight": weight, "loss": loss})


def test_two_view_forward_adds_the_weighted_term_and_reports_the_callers_batch():
    torch.manual_seed(0)
    model = _model(weight=2.5).train()
    feats, lengths = torch.randn(3, 30, 16), torch.tensor([30, 25, 20])
    target = torch.randint(0, 6, (3, 30))
    out = model(feats, lengths, torch.tensor([0, 1, 0]), target, lengths)
    assert set(out.bottleneck_losses) == {"invariance"} and out.loss_weights["invariance"] == 2.5
    expect = out.recon_loss + 2.5 * out.bottleneck_losses["invariance"]
    assert out.loss.item() == pytest.approx(expect.item(), rel=1e-6)
    assert out.bottleneck_losses["invariance"].item() > 0  # two different warps
    assert out.taps["projection"].values.shape == (3, 30, 8) and out.lengths.tolist() == [30, 25, 20]
    assert out.predictions.shape[0] == 3
    out.loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_both_copies_share_one_mask_and_get_independent_warps():
    torch.manual_seed(0)
    model = _model().train()
    feats = torch.randn(2, 40, 16)
    views, lengths, mask = model._two_views(feats, torch.tensor([40, 33]))
    assert views.shape == (4, 40, 16) and lengths.tolist() == [40, 33, 40, 33]
    assert torch.equal(mask[:2], mask[2:]) and mask.any() and not mask[1, 33:].any()
    unmasked = ~mask[0]
    assert not torch.allclose(views[0][unmasked], views[2][unmasked])  # two warp factors


def test_eval_and_weight_zero_use_one_copy():
    torch.manual_seed(0)
    feats, lengths, target = torch.randn(2, 20, 16), torch.tensor([20, 18]), torch.randint(0, 6, (2, 20))
    out = _model(weight=0.0).train()(feats, lengths, torch.tensor([0, 1]), target, lengths)
    assert "invariance" not in out.bottleneck_losses
    out = _model(weight=1.0).eval()(feats, lengths, torch.tensor([0, 1]), target, lengths)
    assert "invariance" not in out.bottleneck_losses and math.isfinite(out.loss.item())


def test_invariance_needs_a_warp():
    with pytest.raises(SpeechUnitsError, match="warp.max_log_factor"):
        _model(warp=0.0)
