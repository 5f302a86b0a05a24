"""VQ bottleneck: straight-through gradients, losses vs hand computation, padding,
usage over an epoch, inference without side effects."""

import numpy as np
import pytest
import torch

from speechunits.models.bottleneck import BOTTLENECKS, build_bottleneck
from speechunits.models.codebook import CodebookConfig
from speechunits.models.vq import VQBottleneck, VQConfig


def make(ema=True, K=6, D=3, C=5, **cb):
    torch.manual_seed(0)
    cfg = VQConfig(dim=D, codebook=CodebookConfig(size=K, ema=ema, init="random", dead_code_steps=0, **cb))
    return VQBottleneck(C, cfg)


def brute_codes(z, e):
    d = ((z[..., None, :] - e) ** 2).sum(-1)
    return d.argmin(-1)


def test_registered():
    assert BOTTLENECKS.get("vq") is VQBottleneck
    assert isinstance(build_bottleneck("vq", 5, {"dim": 3, "codebook": {"size": 4}}), VQBottleneck)


def test_latents_are_nearest_codes_and_gradient_is_straight_through():
    vq = make(ema=False).train()
    x = torch.randn(2, 7, 5)
    lengths = torch.tensor([7, 4])
    out = vq(x, lengths)
    out.projected.retain_grad()
    e = vq.codebook.embedding.detach()
    z = out.projected.detach()
    codes = brute_codes(z, e)
    mask = torch.arange(7)[None] < lengths[:, None]
    assert torch.equal(out.codes[mask], codes[mask])
    assert torch.all(out.codes[~mask] == -1)
    torch.testing.assert_close(out.latents[mask], e[codes[mask]])
    assert torch.all(out.latents[~mask] == 0)
    w = torch.randn_like(out.latents)
    (out.latents * w).sum().backward()
    # d latents / d z = identity on valid frames (padding latents are constant zero).
    torch.testing.assert_close(out.projected.grad[mask], w[mask])


def test_losses_match_hand_computation():
    vq = make(ema=False).train()
    x = torch.randn(2, 6, 5)
    lengths = torch.tensor([6, 3])
    out = vq(x, lengths)
    z = out.projected.detach().numpy()
    e = vq.codebook.embedding.detach().numpy()
    mask = (np.arange(6)[None] < lengths.numpy()[:, None])
    codes = out.codes.numpy()
    sq = ((z - e[np.maximum(codes, 0)]) ** 2)[mask]  # (N, D)
    expect = sq.mean()
    assert out.losses["commitment"].item() == pytest.approx(expect, rel=1e-5)
    assert out.losses["codebook"].item() == pytest.approx(expect, rel=1e-5)
    assert out.loss_weights == {"commitment": 0.25, "codebook": 1.0}
    assert out.weighted_loss().item() == pytest.approx(1.25 * expect, rel=1e-5)
    # commitment moves only the encoder side, the codebook loss only the codes
    vq.zero_grad()
    out.losses["codebook"].backward(retain_graph=True)
    assert vq.proj.weight.grad is None or torch.all(vq.proj.weight.grad == 0)
    assert vq.codebook.embedding.grad.abs().sum() > 0
    vq.zero_grad()
    out.losses["commitment"].backward()
    assert vq.codebook.embedding.grad is None or torch.all(vq.codebook.embedding.grad == 0)
    assert vq.proj.weight.grad.abs().sum() > 0


def test_ema_mode_has_no_codebook_loss_and_updates_the_codes():
    vq = make(ema=True).train()
    before = vq.codebook.embedding.clone()
    out = vq(torch.randn(2, 6, 5), torch.tensor([6, 2]))
    assert set(out.losses) == {"commitment"}
    assert not torch.equal(before, vq.codebook.embedding)
    assert not isinstance(vq.codebook.embedding, torch.nn.Parameter)


def test_padding_changes_nothing():
    x = torch.randn(2, 8, 5)
    lengths = torch.tensor([8, 5])
    x2 = x.clone()
    x2[1, 5:] = 50.0
    a, b = make().train(), make().train()
    oa, ob = a(x, lengths), b(x2, lengths)
    torch.testing.assert_close(oa.latents, ob.latents)
    assert torch.equal(oa.codes, ob.codes)
    torch.testing.assert_close(oa.losses["commitment"], ob.losses["commitment"])
    torch.testing.assert_close(a.codebook.embedding, b.codebook.embedding)
    assert oa.stats["batch_perplexity"] == ob.stats["batch_perplexity"]


def test_usage_over_an_epoch_matches_numpy_and_quantize_has_no_side_effects():
    vq = make(K=8).eval()
    all_codes = []
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(3, 10, 5, generator=g)
        lengths = torch.tensor([10, 6, 1])
        out = vq(x, lengths)
        mask = torch.arange(10)[None] < lengths[:, None]
        z = out.projected.detach()
        all_codes.append(brute_codes(z, vq.codebook.embedding)[mask].numpy())
    codes = np.concatenate(all_codes)
    counts = np.bincount(codes, minlength=8)
    p = counts[counts > 0] / counts.sum()
    stats = vq.usage_stats()
    assert stats["frames"] == 3 * 17
    assert stats["perplexity"] == pytest.approx(float(np.exp(-(p * np.log(p)).sum())), rel=1e-6)
    assert vq.codebook.usage_counts().tolist() == counts.tolist()
    # inference path: no usage counting, no codebook change, even in training mode
    vq.train()
    emb = vq.codebook.embedding.clone()
    q = vq.quantize(torch.randn(2, 4, 5))
    assert vq.usage_stats()["frames"] == 3 * 17 and torch.equal(emb, vq.codebook.embedding)
    assert torch.equal(q.codes, vq.nearest_codes(q.projected))
    vq.reset_usage()
    assert vq.usage_stats()["frames"] == 0
