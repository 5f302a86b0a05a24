"""fit_probe on toy problems with known answers, early stopping, determinism."""

import numpy as np
import pytest
import torch

from speechunits.eval.probes.fit import ProbeTrainConfig, fit_probe
from speechunits.eval.probes.heads import HeadConfig

N_CLASSES = 10


def toy(rng, n, informative: bool, noise: float = 0.3, dim: int = 16):
    y = rng.integers(0, N_CLASSES, n)
    x = rng.standard_normal((n, dim)) * noise
    if informative:
        x[np.arange(n), y] += 3.0  # one-hot of the label, plus noise
    else:
        x = rng.standard_normal((n, dim))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


FAST = ProbeTrainConfig(max_epochs=15, patience=3, batch_size=256, head=HeadConfig(hidden=64))


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_one_hot_plus_noise_is_learnt(head, rng):
    xtr, ytr = toy(rng, 3000, True)
    xdv, ydv = toy(rng, 500, True)
    xte, yte = toy(rng, 2000, True)
    probe = fit_probe(head, "classification", xtr, ytr, xdv, ydv, N_CLASSES, FAST, seed=0)
    acc = float((probe.predict(xte) == yte).float().mean())
    assert acc > 0.97


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_noise_stays_near_chance(head, rng):
    xtr, ytr = toy(rng, 3000, False)
    xdv, ydv = toy(rng, 500, False)
    xte, yte = toy(rng, 3000, False)
    probe = fit_probe(head, "classification", xtr, ytr, xdv, ydv, N_CLASSES, FAST, seed=0)
    acc = float((probe.predict(xte) == yte).float().mean())
    assert acc < 0.15  # chance 0.10; the standard error over 3000 frames is 0.0055


def test_regression_recovers_a_linear_map(rng):
    w = rng.standard_normal((8, 5))
    x = rng.standard_normal((2000, 8))
    y = x @ w * 10 + 50 + 0.01 * rng.standard_normal((2000, 5))  # far from zero mean / unit scale
    t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    cfg = ProbeTrainConfig(max_epochs=40, patience=5, batch_size=128, lr=1e-2)
    probe = fit_probe("linear", "regression", t(x[:1500]), t(y[:1500]), t(x[1500:1800]), t(y[1500:1800]), 5, cfg)
    pred = probe.predict(t(x[1800:])).numpy()
    r2 = 1 - ((pred - y[1800:]) ** 2).sum() / ((y[1800:] - y[:1500].mean(0)) ** 2).sum()
    assert r2 > 0.99


def test_early_stopping_keeps_the_best_epoch(rng):
    # random labels: an MLP memorises the training frames and the dev loss rises
    x = torch.tensor(rng.standard_normal((300, 20)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 5, 300))
    xdv = torch.tensor(rng.standard_normal((300, 20)), dtype=torch.float32)
    ydv = torch.tensor(rng.integers(0, 5, 300))
    cfg = ProbeTrainConfig(max_epochs=200, patience=3, batch_size=32, lr=1e-2, min_delta=0.0,
                           head=HeadConfig(hidden=256, dropout=0.0))
    probe = fit_probe("mlp", "classification", x, y, xdv, ydv, 5, cfg, seed=1)
    dev = [h["dev_loss"] for h in probe.history]
    assert probe.stopped_early
    assert probe.epochs == len(dev) < cfg.max_epochs
    assert probe.best_epoch == int(np.argmin(dev)) + 1
    assert probe.epochs == probe.best_epoch + cfg.patience  # stopped after `patience` epochs without improvement
    assert all(d >= dev[probe.best_epoch - 1] for d in dev[probe.best_epoch:])
    # the returned weights are the best epoch's: their dev loss is the recorded minimum
    logits = probe.outputs(xdv)
    loss = float(torch.nn.functional.cross_entropy(logits, ydv))
    assert loss == pytest.approx(min(dev), rel=1e-5)


def test_without_dev_frames_trains_max_epochs(rng):
    x, y = toy(rng, 200, True)
    cfg = ProbeTrainConfig(max_epochs=4, patience=1)
    probe = fit_probe("linear", "classification", x, y, None, None, N_CLASSES, cfg)
    assert probe.epochs == 4 and not probe.stopped_early and probe.best_epoch == 4


def test_seeded_and_leaves_the_global_rng_alone(rng):
    x, y = toy(rng, 500, True)
    xd, yd = toy(rng, 100, True)
    before = torch.get_rng_state()
    a = fit_probe("mlp", "classification", x, y, xd, yd, N_CLASSES, FAST, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    b = fit_probe("mlp", "classification", x, y, xd, yd, N_CLASSES, FAST, seed=3)
    c = fit_probe("mlp", "classification", x, y, xd, yd, N_CLASSES, FAST, seed=4)
    assert a.history == b.history
    assert torch.equal(a.outputs(xd), b.outputs(xd))
    assert not torch.equal(a.outputs(xd), c.outputs(xd))


def test_standardisation_makes_scale_irrelevant(rng):
    x, y = toy(rng, 1000, True)
    xd, yd = toy(rng, 200, True)
    a = fit_probe("linear", "classification", x, y, xd, yd, N_CLASSES, FAST, seed=0)
    b = fit_probe("linear", "classification", x * 1000 + 7, y, xd * 1000 + 7, yd, N_CLASSES, FAST, seed=0)
    assert torch.equal(a.predict(xd), b.predict(xd * 1000 + 7))
