"""Codebook upkeep: EMA update, reservoir + k-means init, dead-code restarts, usage."""

import numpy as np
import pytest
import torch

from speechunits.models.codebook import Codebook, CodebookConfig, kmeans, perplexity, reservoir_update, sq_distances


def test_nearest_matches_brute_force(rng):
    cb = Codebook(4, CodebookConfig(size=7, init="random"))
    x = torch.from_numpy(rng.normal(size=(50, 4)).astype(np.float32))
    e = cb.embedding.detach().numpy()
    d = ((x.numpy()[:, None, :] - e[None]) ** 2).sum(-1)
    assert torch.equal(cb.nearest(x), torch.from_numpy(d.argmin(1)))
    assert cb.nearest(x.view(5, 10, 4)).shape == (5, 10)


def test_ema_update_matches_hand_computation(rng):
    K, D, decay, eps = 4, 3, 0.9, 0.01
    cb = Codebook(D, CodebookConfig(size=K, decay=decay, epsilon=eps, init="random", dead_code_steps=0))
    count0 = np.array([2.0, 1.0, 0.5, 3.0])
    sum0 = rng.normal(size=(K, D))
    cb.ema_count.copy_(torch.tensor(count0))
    cb.ema_sum.copy_(torch.tensor(sum0))
    x = rng.normal(size=(6, D)).astype(np.float32)
    codes = np.array([0, 0, 1, 3, 3, 3])
    cb.update(torch.from_numpy(x), torch.from_numpy(codes))

    n = np.bincount(codes, minlength=K)
    s = np.zeros((K, D))
    np.add.at(s, codes, x)
    count = decay * count0 + (1 - decay) * n
    sums = decay * sum0 + (1 - decay) * s
    total = count.sum()
    smoothed = (count + eps) / (total + K * eps) * total
    expect = sums / smoothed[:, None]
    np.testing.assert_allclose(cb.ema_count.numpy(), count, rtol=1e-6)
    np.testing.assert_allclose(cb.ema_sum.numpy(), sums, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cb.embedding.numpy(), expect, rtol=1e-5, atol=1e-6)
    # Code 2 received nothing: its vector only shrinks towards its own past mean.
    assert cb.steps_unused.tolist() == [0, 0, 1, 0]


def test_reservoir_is_uniform_over_the_stream():
    """Every row offered ends in the reservoir with probability R / n (algorithm R),
    whatever the batch boundaries."""
    R, n, trials = 6, 30, 1500
    hits = np.zeros(n)
    gen = torch.Generator().manual_seed(0)
    batches = [7, 1, 9, 13]
    for _ in range(trials):
        res = torch.full((R, 1), -1.0)
        seen, start = 0, 0
        for size in batches:
            rows = torch.arange(start, start + size, dtype=torch.float32)[:, None]
            seen = reservoir_update(res, seen, rows, gen)
            start += size
        assert seen == n
        hits[res[:, 0].long().numpy()] += 1
    freq = hits / trials
    sd = np.sqrt((R / n) * (1 - R / n) / trials)
    assert np.all(np.abs(freq - R / n) < 5 * sd), freq


def test_kmeans_init_picks_reservoir_rows_after_the_warmup_batches(rng):
    D = 3
    cfg = CodebookConfig(size=5, init="kmeans", kmeans_batches=3, reservoir_size=40, kmeans_iters=0, seed=1)
    cb = Codebook(D, cfg)
    before = cb.embedding.clone()
    seen = []
    for i in range(3):
        x = torch.from_numpy(rng.normal(size=(25, D)).astype(np.float32))
        seen.append(x)
        changed = cb.maybe_init(x)
        assert changed == (i == 2)
        if i < 2:
            assert torch.equal(cb.embedding, before)
    data = torch.cat(seen)
    for code in cb.embedding:  # with no Lloyd iteration every code is a data row
        assert torch.isclose(data, code).all(1).any()
    assert bool(cb.init_done) and not cb.maybe_init(data)
    assert torch.equal(cb.ema_sum, cb.embedding) and torch.all(cb.ema_count == 1)


def test_kmeans_recovers_separated_clusters(rng):
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float32)
    pts = np.concatenate([c + 0.1 * rng.normal(size=(100, 2)) for c in centres]).astype(np.float32)
    got = kmeans(torch.from_numpy(pts), 4, 10, torch.Generator().manual_seed(3)).numpy()
    for c in centres:
        assert np.min(np.linalg.norm(got - c, axis=1)) < 0.1
    # Same seed, same answer.
    again = kmeans(torch.from_numpy(pts), 4, 10, torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_array_equal(got, again)


def test_dead_codes_are_restarted_onto_batch_frames(rng):
    D = 2
    cb = Codebook(D, CodebookConfig(size=4, init="random", dead_code_steps=3, seed=0))
    x = torch.from_numpy(rng.normal(size=(20, D)).astype(np.float32))
    codes = torch.zeros(20, dtype=torch.long)  # only code 0 ever used
    for step in range(2):
        stats = cb.update(x, codes)
        assert stats["restarted"] == 0
    assert cb.steps_unused.tolist() == [0, 2, 2, 2]
    stats = cb.update(x, codes)
    assert stats["restarted"] == 3 and int(cb.restarts) == 3
    assert cb.steps_unused.tolist() == [0, 0, 0, 0]
    for k in (1, 2, 3):
        assert torch.isclose(x, cb.embedding[k]).all(1).any()
        assert torch.equal(cb.ema_sum[k], cb.embedding[k]) and cb.ema_count[k] == 1
    # three distinct frames were used
    assert len({tuple(cb.embedding[k].tolist()) for k in (1, 2, 3)}) == 3


def test_usage_and_perplexity_over_an_epoch():
    cb = Codebook(2, CodebookConfig(size=5, init="random"))
    batches = [torch.tensor([0, 0, 1, -1]), torch.tensor([[2, 2], [2, -1]]), torch.tensor([4])]
    for codes in batches:
        cb.record_usage(codes)
    counts = np.array([2, 1, 3, 0, 1])
    assert cb.usage_counts().tolist() == counts.tolist()
    p = counts[counts > 0] / counts.sum()
    stats = cb.usage_stats()
    assert stats["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-6)
    assert stats["used_codes"] == 4 and stats["used_fraction"] == pytest.approx(0.8) and stats["frames"] == 7
    cb.reset_usage()
    assert cb.usage_stats()["frames"] == 0 and cb.usage_stats()["perplexity"] == 0
    assert float(perplexity(torch.tensor([5, 5, 5, 5]))) == pytest.approx(4.0)


def test_sq_distances_match_cdist(rng):
    x = torch.from_numpy(rng.normal(size=(2, 7, 5)))
    cb = torch.from_numpy(rng.normal(size=(4, 5)))
    ref = torch.cdist(x, cb) ** 2
    d = sq_distances(x, cb)
    assert d.shape == (2, 7, 4) and d.dtype == torch.float64
    torch.testing.assert_close(d, ref)


def test_sq_distances_float32_under_autocast():
    """Half-precision inputs and autocast: the distances are still computed in float32."""
    g = torch.Generator().manual_seed(0)
    x, cb = torch.randn(50, 16, generator=g), torch.randn(8, 16, generator=g)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        d = sq_distances(x.bfloat16().float(), cb)
        d_half = sq_distances(x.bfloat16(), cb)
    assert d.dtype == torch.float32 and d_half.dtype == torch.float32
    torch.testing.assert_close(d.double(), torch.cdist(x.bfloat16().double(), cb.double()) ** 2, rtol=1e-4, atol=1e-4)
