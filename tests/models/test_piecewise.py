"""PiecewiseVQ bottleneck: segmentation, straight-through latents, losses, lambda."""

import io

import pytest
import torch

from speechunits.models.bottleneck import BOTTLENECKS, build_bottleneck
from speechunits.models.codebook import CodebookConfig
from speechunits.models.jitter import TimeJitter
from speechunits.models.piecewise import PiecewiseOutput, PiecewiseVQ, PiecewiseVQConfig
from speechunits.models.codebook import sq_distances
from speechunits.models.segmentation import dp_segment, estimate_lambda, greedy_segment, segment_budget


def make(rate=0.25, **kw):
    torch.manual_seed(0)
    cfg = PiecewiseVQConfig(dim=4, segment_rate=rate, codebook=CodebookConfig(size=8, init="random"), **kw)
    return PiecewiseVQ(6, cfg)


def batch(seed=0, lengths=(20, 7, 13)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), 6, generator=g)
    return x, torch.tensor(lengths)


def reference_dist(m, x, lengths):
    """Distances of the module's projected, masked frames to its codebook."""
    with torch.no_grad():
        mask = torch.arange(x.shape[1])[None] < lengths[:, None]
        z = m.proj(x) * mask[..., None]
        return sq_distances(z, m.codebook.embedding.clone()), z


def check_piecewise(out, codebook, lengths):
    """Latents = the segment's code vector on every frame; padding zero, codes -1.

    codebook: the code vectors as they were during the forward (training updates
    them by EMA afterwards)."""
    for b, L in enumerate(lengths.tolist()):
        rows = out.segments[b]
        assert rows[0, 0] == 0 and rows[-1, 1] == L and torch.equal(rows[1:, 0], rows[:-1, 1])
        for s, e, k in rows.tolist():
            assert (out.codes[b, s:e] == k).all()
            torch.testing.assert_close(out.latents[b, s:e], codebook[k].expand(e - s, -1))
        assert (out.codes[b, L:] == -1).all() and (out.latents[b, L:] == 0).all()


def test_registered_and_buildable():
    assert BOTTLENECKS.get("pcvq") is PiecewiseVQ
    m = build_bottleneck("pcvq", 6, {"dim": 4, "segment_rate": 0.5, "codebook": {"size": 8}})
    assert isinstance(m, PiecewiseVQ) and m.discrete and m.num_codes == 8


def test_training_forward_meets_budget_and_matches_greedy():
    m = make().train()
    x, lengths = batch()
    dist, z = reference_dist(m, x, lengths)
    emb = m.codebook.embedding.clone()
    out = m(x, lengths)
    assert isinstance(out, PiecewiseOutput)
    budget = segment_budget(lengths, 0.25)
    assert sum(len(r) for r in out.segments) == budget == 10
    ref = greedy_segment(dist, lengths, budget)
    assert torch.equal(out.codes, ref.codes)
    check_piecewise(out, emb, lengths)
    # Commitment loss against the segment's code, as plain VQ; mean over frames and dims.
    mask = torch.arange(x.shape[1])[None] < lengths[:, None]
    q = emb[ref.codes.clamp_min(0)]
    expected = ((z - q) ** 2)[mask].mean()
    torch.testing.assert_close(out.losses["commitment"].detach(), expected)
    assert out.loss_weights["commitment"] == 0.25
    assert float(out.stats["segments_per_frame"]) == pytest.approx(10 / 40)


def test_straight_through_gradient():
    m = make().train()
    x, lengths = batch()
    x.requires_grad_(True)
    out = m(x, lengths)
    w = torch.randn_like(out.latents)
    (out.latents * w).sum().backward()
    # Through the quantiser d latents / d z is the identity (on valid frames).
    mask = (torch.arange(x.shape[1])[None] < lengths[:, None])[..., None].float()
    expected = (w * mask) @ m.proj.weight
    torch.testing.assert_close(x.grad, expected)


def test_jitter_after_bottleneck_keeps_gradient():
    m = make().train()
    x, lengths = batch()
    x.requires_grad_(True)
    out = m(x, lengths)
    jittered = TimeJitter(0.5).train()(out.latents, lengths)
    assert jittered.shape == out.latents.shape
    jittered.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_lambda_ema_and_inference_dp():
    m = make(lambda_decay=0.5).train()
    lams = []
    for seed in range(3):
        x, lengths = batch(seed)
        dist, _ = reference_dist(m, x, lengths)
        ref = greedy_segment(dist, lengths, segment_budget(lengths, 0.25))
        lams.append(estimate_lambda(ref))
        out = m(x, lengths)
        assert out.stats["lambda_batch"] == pytest.approx(lams[-1])
    expected = lams[0]
    for v in lams[1:]:
        expected = 0.5 * expected + 0.5 * v
    assert float(m.lam) == pytest.approx(expected) and expected > 0
    assert int(m.lam_updates) == 3

    # Eval: the exact DP with the learned price, no state change.
    m.eval()
    x, lengths = batch(7)
    dist, _ = reference_dist(m, x, lengths)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    out = m.quantize(x, lengths)
    ref = dp_segment(dist, lengths, lam=float(m.lam))
    assert torch.equal(out.codes, ref.codes)
    check_piecewise(out, m.codebook.embedding, lengths)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k

    # A fixed eval_lambda overrides; a huge one leaves one segment per utterance.
    m.cfg.eval_lambda = 1e9
    out = m.quantize(x, lengths)
    assert [len(r) for r in out.segments] == [1, 1, 1]


def test_lambda_saved_with_checkpoint():
    m = make().train()
    for seed in range(2):
        m(*batch(seed))
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    m2 = make()
    m2.load_state_dict(torch.load(buf, weights_only=True))
    assert float(m2.lam) == float(m.lam) > 0
    m.eval(), m2.eval()
    x, lengths = batch(5)
    assert torch.equal(m.quantize(x, lengths).codes, m2.quantize(x, lengths).codes)


def test_no_lambda_update_before_kmeans_init():
    torch.manual_seed(0)
    cfg = PiecewiseVQConfig(dim=4, codebook=CodebookConfig(size=8, init="kmeans", kmeans_batches=2))
    m = PiecewiseVQ(6, cfg).train()
    m(*batch(0))
    assert int(m.lam_updates) == 0 and float(m.lam) == 0.0
    m(*batch(1))  # k-means runs on this batch, and the price starts from it
    assert bool(m.codebook.init_done) and int(m.lam_updates) == 1


def test_segments_per_second_budget():
    cfg = PiecewiseVQConfig(segments_per_second=10.0, frame_shift=0.02)
    assert cfg.rate == pytest.approx(0.2)
    with pytest.raises(ValueError):
        PiecewiseVQConfig(segment_rate=0.0)
    m = make(rate=0.5, per_utterance_budget=True).train()
    x, lengths = batch()
    out = m(x, lengths)
    assert [len(r) for r in out.segments] == segment_budget(lengths, 0.5, per_utterance=True).tolist()
