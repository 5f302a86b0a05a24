"""WaveNet: causality, receptive field, incremental == full forward, sampling == naive
generation, masked cross-entropy, the sampler."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechunits.models.mulaw import mulaw_encode
from speechunits.models.wavenet import (
    IncrementalWaveNet,
    WaveNet,
    WaveNetConfig,
    WaveNetDecoder,
    sample_codes,
    shift_right,
    silence_code,
)

Q = 16


def tiny(cond_dim=5, global_dim=3, dtype=torch.float64, cycles=2, layers=3):
    torch.manual_seed(0)
    cfg = WaveNetConfig(
        quantization_channels=Q, residual_channels=8, gate_channels=6, skip_channels=7, cycles=cycles, layers_per_cycle=layers
    )
    return WaveNet(cfg, cond_dim, global_dim).to(dtype)


def test_receptive_field_and_dilations():
    cfg = WaveNetConfig()
    assert cfg.dilations == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] * 2
    assert cfg.receptive_field == 2047  # 128 ms at 16 kHz


def test_logits_at_t_depend_only_on_earlier_samples():
    dec = WaveNetDecoder(
        WaveNetConfig(quantization_channels=Q, residual_channels=8, gate_channels=8, skip_channels=8, layers_per_cycle=3),
        cond_dim=4,
        speaker_dim=0,
    ).double()
    N, t0 = 60, 30
    g = torch.Generator().manual_seed(0)
    wav = (torch.rand(1, N, generator=g, dtype=torch.float64) * 0.8 + 0.2) * torch.where(torch.rand(1, N, generator=g) < 0.5, -1, 1)
    cond = torch.randn(1, N, 4, generator=g, dtype=torch.float64)
    base = dec(cond, None, wav).predictions
    future = wav.clone()
    future[0, t0:] = -wav[0, t0:]  # perturb samples >= t0 (a sign flip always changes the code)
    pert = dec(cond, None, future).predictions
    torch.testing.assert_close(pert[0, : t0 + 1], base[0, : t0 + 1])  # logits at t <= t0 see samples < t0 only
    assert not torch.allclose(pert[0, t0 + 1], base[0, t0 + 1])
    # conditioning is local: cond at > t does not reach the logits at t
    c2 = cond.clone()
    c2[0, t0 + 1 :] += 1.0
    torch.testing.assert_close(dec(c2, None, wav).predictions[0, : t0 + 1], base[0, : t0 + 1])


def test_receptive_field_is_exact():
    net = tiny(cond_dim=0, global_dim=0, layers=4)  # RF = 1 + 2 * 15 = 31
    rf = net.receptive_field
    assert rf == 31
    N = 80
    inp = torch.randint(0, Q, (1, N))
    base = net(inp)[0, -1]
    far = inp.clone()
    far[0, : N - rf] = (far[0, : N - rf] + 3) % Q  # outside the field: no effect
    assert torch.equal(net(far)[0, -1], base)
    near = inp.clone()
    near[0, N - rf] = (near[0, N - rf] + 3) % Q  # the oldest input inside the field
    assert (net(near)[0, -1] - base).abs().max() > 0  # one long path: a small but real effect


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_incremental_equals_full_forward(dtype, tol):
    net = tiny(dtype=dtype)
    B, N = 3, 70
    cond = torch.randn(B, N, 5, dtype=dtype)
    glob = torch.randn(B, 3, dtype=dtype)
    codes = torch.randint(0, Q, (B, N))
    inputs = shift_right(codes, silence_code(Q))
    with torch.no_grad():
        full = net(inputs, cond, glob)
    state = IncrementalWaveNet(net, cond, glob)
    state.chunk = 16  # exercise the chunked conditioning projection
    inc = torch.stack([state.step(inputs[:, t]) for t in range(N)], 1)
    assert (inc - full).abs().max().item() < tol


def test_incremental_without_conditioning():
    net = tiny(cond_dim=0, global_dim=0)
    inputs = torch.randint(0, Q, (2, 40))
    state = IncrementalWaveNet(net, None, None, batch_size=2)
    inc = torch.stack([state.step(inputs[:, t]) for t in range(40)], 1)
    torch.testing.assert_close(inc, net(inputs))


@pytest.mark.slow  # one of the heaviest single tests: in the full suite, not the fast subset
@pytest.mark.parametrize("greedy", [False, True])
def test_generation_matches_naive_generation(greedy):
    net = tiny()
    B, N = 2, 50
    cond = torch.randn(B, N, 5, dtype=torch.float64)
    glob = torch.randn(B, 3, dtype=torch.float64)
    runs = []
    for kind in ("incremental", "naive", "window"):
        gen = torch.Generator().manual_seed(7)
        if kind == "incremental":
            runs.append(net.generate(N, cond, glob, temperature=0.8, greedy=greedy, generator=gen))
        else:
            window = net.receptive_field if kind == "window" else None
            runs.append(net.generate_naive(N, cond, glob, temperature=0.8, greedy=greedy, generator=gen, window=window))
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    assert runs[0].shape == (B, N) and len(runs[0].unique()) > 1


def test_sampler_inverse_cdf_and_frequencies():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]]))
    assert sample_codes(logits, greedy=True).tolist() == [3]
    assert sample_codes(logits, temperature=0).tolist() == [3]
    gen = torch.Generator().manual_seed(0)
    draws = torch.cat([sample_codes(logits.expand(1000, 4), generator=gen) for _ in range(20)])
    freq = np.bincount(draws.numpy(), minlength=4) / draws.numel()
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.015)
    # u from the same generator state picks the same category as a hand inversion
    gen = torch.Generator().manual_seed(5)
    u = torch.rand(1, 1, generator=gen, dtype=torch.float64).item()
    expect = int(np.searchsorted(np.cumsum([0.1, 0.2, 0.3, 0.4]), u))
    assert sample_codes(logits, generator=torch.Generator().manual_seed(5)).item() == expect
    # temperature sharpens
    cold = torch.cat([sample_codes(logits.expand(1000, 4), temperature=0.3, generator=gen) for _ in range(5)])
    assert (cold == 3).float().mean() > 0.6


def test_decoder_loss_is_masked_cross_entropy():
    dec = WaveNetDecoder(
        WaveNetConfig(quantization_channels=Q, residual_channels=8, gate_channels=8, skip_channels=8, layers_per_cycle=2),
        cond_dim=3,
        speaker_dim=2,
    )
    B, N = 2, 30
    wav = torch.rand(B, N) * 2 - 1
    lengths = torch.tensor([30, 12])
    cond, spk = torch.randn(B, N, 3), torch.randn(B, 2)
    out = dec(cond, spk, wav, lengths)
    codes = mulaw_encode(wav, Q)
    logp = F.log_softmax(out.predictions, -1).gather(-1, codes[..., None]).squeeze(-1)
    mask = torch.arange(N)[None] < lengths[:, None]
    assert out.loss.item() == pytest.approx(-logp[mask].mean().item(), rel=1e-5)
    wav2 = wav.clone()
    wav2[1, 12:] = 0.9  # padding samples do not count
    assert dec(cond, spk, wav2, lengths).loss.item() == pytest.approx(out.loss.item(), rel=1e-6)
    # generation: zeros past each length, values are mu-law levels in [-1, 1]
    gen = dec.generate(cond, spk, lengths, generator=torch.Generator().manual_seed(0))
    assert gen.shape == (B, 30) and torch.all(gen[1, 12:] == 0) and gen.abs().max() <= 1
