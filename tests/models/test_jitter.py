"""Time jitter: replacement frequencies, edges, padding, identity at eval."""

import torch

from speechunits.models.jitter import TimeJitter, jitter_indices


def test_replacement_frequencies():
    p = 0.12
    lengths = torch.tensor([100_000, 100_000])
    gen = torch.Generator().manual_seed(0)
    idx = jitter_indices(lengths, 100_000, p, gen)
    t = torch.arange(100_000)
    interior = idx[:, 1:-1] - t[1:-1]
    n = interior.numel()
    left = (interior == -1).float().mean().item()
    right = (interior == 1).float().mean().item()
    assert set(interior.unique().tolist()) <= {-1, 0, 1}
    # Binomial standard deviation of a rate around 0.06 over ~2e5 positions is ~5e-4.
    tol = 5 * (0.06 * 0.94 / n) ** 0.5
    assert abs(left - p / 2) < tol and abs(right - p / 2) < tol
    assert abs(left + right - p) < 2 * tol


def test_edges_clamp_and_padding_untouched():
    lengths = torch.tensor([5, 1, 0])
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        idx = jitter_indices(lengths, 8, 0.9, gen)
        assert torch.all(idx[0, :5] >= 0) and torch.all(idx[0, :5] <= 4)
        assert torch.equal(idx[0, 5:], torch.arange(5, 8))  # padding maps to itself
        assert torch.equal(idx[1], torch.arange(8))  # a one-frame utterance cannot move
        assert torch.equal(idx[2], torch.arange(8))
        assert torch.all((idx[0, :5] - torch.arange(5)).abs() <= 1)


def test_module_gathers_neighbours_in_training_and_is_identity_at_eval():
    x = torch.arange(2 * 50, dtype=torch.float32).view(2, 50, 1).repeat(1, 1, 3)
    lengths = torch.tensor([50, 30])
    jit = TimeJitter(0.5).train()
    y = jit(x, lengths, generator=torch.Generator().manual_seed(2))
    src = jitter_indices(lengths, 50, 0.5, torch.Generator().manual_seed(2))
    assert torch.equal(y, torch.gather(x, 1, src[..., None].expand_as(x)))
    assert not torch.equal(y, x)
    jit.eval()
    assert jit(x, lengths) is x
    assert TimeJitter(0.0).train()(x, lengths) is x
