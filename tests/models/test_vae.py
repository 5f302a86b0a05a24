"""VAE and AE bottlenecks: KL against the closed form, free bits, sampling, padding."""

import numpy as np
import pytest
import torch

from speechunits.models.linear_bottleneck import AEBottleneck, AEConfig
from speechunits.models.vae import VAEBottleneck, VAEConfig, gaussian_kl


def test_gaussian_kl_closed_form_and_monte_carlo(rng):
    mu = rng.normal(size=50)
    logvar = rng.normal(size=50)
    var = np.exp(logvar)
    closed = 0.5 * (mu**2 + var - 1 - np.log(var))
    got = gaussian_kl(torch.from_numpy(mu), torch.from_numpy(logvar)).numpy()
    np.testing.assert_allclose(got, closed, rtol=1e-10)
    # Monte Carlo check of one element: E_q[log q(z) - log p(z)].
    m, lv = 0.7, -0.4
    z = m + np.exp(lv / 2) * rng.normal(size=400_000)
    log_q = -0.5 * (np.log(2 * np.pi) + lv + (z - m) ** 2 / np.exp(lv))
    log_p = -0.5 * (np.log(2 * np.pi) + z**2)
    mc = (log_q - log_p).mean()
    assert mc == pytest.approx(float(gaussian_kl(torch.tensor(m), torch.tensor(lv))), abs=5e-3)


def make(**kw):
    torch.manual_seed(0)
    return VAEBottleneck(5, VAEConfig(dim=4, **kw))


def test_kl_loss_is_per_frame_sum_over_dims_mean_over_valid_frames():
    vae = make(beta=0.5).train()
    x = torch.randn(2, 6, 5)
    lengths = torch.tensor([6, 2])
    out = vae(x, lengths)
    mean, logvar = vae.proj(x).chunk(2, -1)
    kl = gaussian_kl(mean, logvar).sum(-1)  # (B, T)
    mask = torch.arange(6)[None] < lengths[:, None]
    assert out.losses["kl"].item() == pytest.approx(kl[mask].mean().item(), rel=1e-5)
    assert out.loss_weights == {"kl": 0.5}
    assert out.weighted_loss().item() == pytest.approx(0.5 * kl[mask].mean().item(), rel=1e-5)
    torch.testing.assert_close(out.projected[mask], mean[mask])
    assert torch.all(out.latents[~mask] == 0)


def test_free_bits_floor_each_dimension():
    vae = make(free_bits=0.3).train()
    x = torch.randn(3, 5, 5) * 0.01
    with torch.no_grad():  # dims 0, 1 near the prior; dims 2, 3 far from it
        vae.proj.weight.zero_()
        vae.proj.bias.copy_(torch.tensor([0.0, 0.1, 2.0, -1.5, 0.0, 0.0, 0.0, 0.0]))
    out = vae(x)
    per_dim = 0.5 * np.array([0.0, 0.01, 4.0, 2.25])
    expect = np.maximum(per_dim, 0.3).sum()
    assert out.losses["kl"].item() == pytest.approx(expect, rel=1e-3)
    assert out.stats["kl_raw"].item() == pytest.approx(per_dim.sum(), rel=1e-3)
    out.losses["kl"].backward()
    g = vae.proj.bias.grad[:4]
    assert g[0] == 0 and g[1] == 0  # below the floor: no pull towards the prior
    assert g[2] > 0 and g[3] < 0


def test_samples_in_training_mean_at_eval():
    vae = make()
    x = torch.randn(1, 4, 5)
    vae.eval()
    out = vae(x)
    torch.testing.assert_close(out.latents, out.projected)
    vae.train()
    torch.manual_seed(1)
    samples = vae(x.expand(4000, 4, 5)).latents
    mean, logvar = vae.proj(x).chunk(2, -1)
    torch.testing.assert_close(samples.mean(0), mean[0], atol=0.1, rtol=0)
    torch.testing.assert_close(samples.var(0), logvar[0].exp(), atol=0.15, rtol=0.1)
    q = vae.quantize(x)  # inference path is deterministic even in training mode
    torch.testing.assert_close(q.latents, q.projected)


def test_ae_is_a_projection():
    torch.manual_seed(0)
    ae = AEBottleneck(5, AEConfig(dim=3))
    x = torch.randn(2, 4, 5)
    out = ae(x, torch.tensor([4, 2]))
    expect = ae.proj(x)
    torch.testing.assert_close(out.latents[0], expect[0])
    torch.testing.assert_close(out.latents[1, :2], expect[1, :2])
    assert torch.all(out.latents[1, 2:] == 0) and out.codes is None and out.losses == {}
