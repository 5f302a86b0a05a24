"""Encoder: shapes, lengths, time alignment at several rates, batching, padding."""

import pytest
import torch

from speechunits.errors import SpeechUnitsError
from speechunits.models.context import ContextConfig, LocalTransformer
from speechunits.models.encoder import Encoder, EncoderConfig, parse_layer


def make(layers, channels=8, input_dim=5, shift=0.01, norm="none"):
    torch.manual_seed(0)
    return Encoder(input_dim, EncoderConfig(channels=channels, layers=tuple(layers), norm=norm), shift)


STACKS = {
    1: ["k3", "k3", "k1"],
    2: ["k3", "k3", "k4s2", "k3", "k3", "k1", "k1", "k1", "k1"],  # the paper's stack
    4: ["k3", "k4s2", "k3", "k4s2", "k1"],
    8: ["k4s2", "k6s2", "k3", "k4s2", "k1"],
    3: ["k5s3", "k3"],
    "dilated": ["k3", "k3d2", "k3d4", "k4s2", "k3d3", "k1"],  # total stride 2
}


def stride_of(name):
    return 2 if name == "dilated" else name


@pytest.mark.parametrize("name", list(STACKS))
def test_lengths_and_frame_shift(name):
    enc, stride = make(STACKS[name]), stride_of(name)
    assert enc.total_stride == stride
    x = torch.randn(3, 37, 5)
    lengths = torch.tensor([37, 20, 1])
    out = enc(x, lengths)
    expect = [-(-n // stride) for n in (37, 20, 1)]
    assert out.lengths.tolist() == expect
    assert out.values.shape == (3, expect[0], 8)
    assert out.frame_shift == pytest.approx(0.01 * stride)
    assert torch.all(out.values[1, expect[1] :] == 0)


def _tent_weights(enc):
    """Positive symmetric tent kernels (peak at the window centre), zero biases."""
    with torch.no_grad():
        for layer in enc.layers:
            k = layer.conv.kernel_size[0]
            i = torch.arange(k, dtype=torch.float32)
            tent = k / 2 + 0.5 - (i - (k - 1) / 2).abs()
            w = layer.conv.weight
            w.copy_(tent.expand_as(w) / (tent.sum() * w.shape[1]))
            layer.conv.bias.zero_()


@pytest.mark.parametrize("name", list(STACKS))
def test_impulse_reaches_output_frame_t_div_r_most(name):
    """With positive tent-shaped kernels every layer's response is a symmetric hill peaking
    on its output frame's span, so the output that an impulse at t drives most is t // R."""
    enc, stride = make(STACKS[name], channels=4, input_dim=1), stride_of(name)
    _tent_weights(enc)
    T = 48
    for t in range(8, 40):
        x = torch.zeros(1, T, 1)
        x[0, t, 0] = 1.0
        resp = enc(x).values[0].sum(-1)
        best = resp.max()
        winners = (resp >= best - 1e-6 * best).nonzero().squeeze(1).tolist()
        assert winners == [t // stride], (t, resp)


@pytest.mark.parametrize("name", list(STACKS))
def test_receptive_field_centred_on_span(name):
    """Output frame j sees a window symmetric about the centre of [j R, (j+1) R)."""
    enc, stride = make(STACKS[name]), stride_of(name)
    T = 64
    x = torch.randn(1, T, 5, requires_grad=True)
    out = enc(x).values
    j = (T // stride) // 2
    out[0, j].sum().backward()
    seen = (x.grad[0].abs().sum(-1) > 0).nonzero().squeeze(1)
    lo, hi = int(seen.min()), int(seen.max())
    assert (lo + hi) / 2 == pytest.approx(j * stride + (stride - 1) / 2)


def test_batched_equals_one_at_a_time_and_padding_is_ignored():
    enc = make(STACKS[2])
    lengths = torch.tensor([30, 17, 9])
    x = torch.randn(3, 30, 5)
    out = enc(x, lengths)
    garbage = x.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 100.0
        alone = enc(x[b : b + 1, :n])
        m = int(out.lengths[b])
        torch.testing.assert_close(out.values[b, :m], alone.values[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(enc(garbage, lengths).values, out.values)


def test_waveform_front_brings_samples_to_latent_rate():
    layers = ["k8s4", "k8s4", "k10s10", "k3", "k4s2", "k1"]
    enc = make(layers, input_dim=1, shift=1 / 16000)
    assert enc.total_stride == 320 and enc.frame_shift == pytest.approx(0.02)
    wav = torch.randn(2, 16000)
    out = enc(wav, torch.tensor([16000, 3300]))
    assert out.values.shape == (2, 50, 8)
    assert out.lengths.tolist() == [50, 11]


def test_bad_layers_are_rejected():
    with pytest.raises(SpeechUnitsError, match="even"):
        parse_layer("k3s2")
    with pytest.raises(SpeechUnitsError, match="even"):
        parse_layer("k2d3")  # window of 4 frames at stride 1 cannot be centred
    assert parse_layer("k3d4").span == 9 and parse_layer("k3d4").pad_left == 4
    with pytest.raises(SpeechUnitsError, match="norm"):
        EncoderConfig(norm="batch")
    with pytest.raises(SpeechUnitsError, match="expected"):
        parse_layer("conv3")
    with pytest.raises(SpeechUnitsError):
        EncoderConfig(layers=())
    enc = make(STACKS[1])
    with pytest.raises(SpeechUnitsError, match="5-dim"):
        enc(torch.randn(1, 10, 7))


def test_residual_only_where_shapes_allow():
    enc = make(STACKS[2])
    flags = [layer.residual for layer in enc.layers]
    assert flags == [False, True, False, True, True, True, True, True, True]


def _reference_encoder(enc, x, lengths):
    """The alignment contract written out with conv1d on (B, C, T): each layer pads
    (e - s) / 2 frames on the left (e = (k - 1) d + 1, the dilated window) and enough on
    the right for ceil(T / s) outputs, normalises over channels when asked, adds its input
    back when residual, and padding frames are zeroed before every layer."""
    import torch.nn.functional as F

    def zero(h, lens):  # h: (B, C, T)
        mask = torch.arange(h.shape[-1])[None, :] < lens[:, None]
        return h * mask[:, None, :]

    h = zero(x.transpose(1, 2), lengths)
    for layer in enc.layers:
        k, s, d = layer.spec.kernel, layer.spec.stride, layer.spec.dilation
        e = (k - 1) * d + 1
        left = (e - s) // 2
        T = h.shape[-1]
        t_out = -(-T // s)
        right = (t_out - 1) * s + e - T - left
        y = F.conv1d(F.pad(h, (left, right)), layer.conv.weight, layer.conv.bias, stride=s, dilation=d)
        lengths = -(-lengths // s)
        if isinstance(layer.norm, torch.nn.LayerNorm):
            y = F.layer_norm(y.transpose(1, 2), (y.shape[1],), layer.norm.weight, layer.norm.bias).transpose(1, 2)
        elif layer.norm is not None:  # instance norm: each utterance alone, over its valid frames
            rows = []
            for b, n in enumerate(lengths.tolist()):
                valid = y[b, :, :n]  # (C, n); statistics as torch.var(unbiased=False)
                z = (valid - valid.mean(1, keepdim=True)) / torch.sqrt(valid.var(1, unbiased=False, keepdim=True) + 1e-5)
                rows.append(F.pad(z * layer.norm.weight[:, None] + layer.norm.bias[:, None], (0, y.shape[-1] - n)))
            y = torch.stack(rows)
        y = torch.relu(y)
        if layer.residual:
            y = y + h
        h = zero(y, lengths)
    return h.transpose(1, 2), lengths


@pytest.mark.parametrize("name,norm", [(n, "none") for n in STACKS]
                         + [("dilated", "layer"), (2, "layer"), ("dilated", "instance"), (2, "instance")])
def test_matches_reference_conv1d_with_gradients(name, norm):
    """Values and input gradients equal the conv1d reference (the encoder runs its convolutions
    as channels-last conv2d on (B, T, C) activations)."""
    enc = make(STACKS[name], channels=16, input_dim=5, norm=norm)
    if norm != "none":  # not the identity scale and shift of a fresh module
        with torch.no_grad():
            for layer in enc.layers:
                layer.norm.weight.uniform_(0.5, 1.5)
                layer.norm.bias.uniform_(-0.2, 0.2)
    lengths = torch.tensor([41, 40, 17, 1])
    x = torch.randn(4, 41, 5, requires_grad=True)
    ref, ref_lengths = _reference_encoder(enc, x, lengths)
    out = enc(x, lengths)
    assert out.lengths.tolist() == ref_lengths.tolist()
    torch.testing.assert_close(out.values, ref, atol=1e-5, rtol=1e-5)
    (g,) = torch.autograd.grad((out.values * torch.linspace(-1, 1, out.values.shape[-1])).sum(), x)
    (g_ref,) = torch.autograd.grad((ref * torch.linspace(-1, 1, ref.shape[-1])).sum(), x)
    torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the in-place inference path gives the same values
        torch.testing.assert_close(enc(x, lengths).values, ref.detach(), atol=1e-5, rtol=1e-5)
    equal = enc(x[:2, :40], None).values  # no lengths: no masking at all
    torch.testing.assert_close(equal, _reference_encoder(enc, x[:2, :40], torch.tensor([40, 40]))[0])


# ---------------------------------------------------------------- context network (models/context.py)


def _reference_context(net: LocalTransformer, x: torch.Tensor) -> torch.Tensor:
    """One utterance (T, C) through the banded attention layers, frame by frame with explicit
    loops over the allowed keys: the brute-force definition of models/context.py."""
    W, H = net.cfg.window, net.cfg.heads
    T, C = x.shape
    d = C // H
    for i, block in enumerate(net.blocks):
        q, k, v = block.qkv(block.norm1(x)).split(C, dim=-1)
        rows = []
        for t in range(T):
            keys = list(range(max(0, t - W), min(T, t + W + 1)))
            heads = []
            for h in range(H):
                sl = slice(h * d, (h + 1) * d)
                scores = torch.stack([q[t, sl] @ k[s, sl] / d ** 0.5 + net.position_bias[i, h, s - t + W] for s in keys])
                weights = torch.softmax(scores, 0)
                heads.append(sum(w * v[s, sl] for w, s in zip(weights, keys)))
            rows.append(torch.cat(heads))
        x = x + block.out(torch.stack(rows))
        x = x + block.feed_forward(x)
    return net.norm(x)


@pytest.mark.parametrize("tile", [512, 4, 1])  # one tile (dense); blocks of 4 query frames; one frame per tile
def test_context_matches_brute_force_and_batches_exactly(tile):
    torch.manual_seed(0)
    net = LocalTransformer(8, ContextConfig(layers=2, heads=2, window=3, tile=tile)).eval()
    with torch.no_grad():
        net.position_bias.normal_()
    lengths = torch.tensor([11, 6, 1])
    x = torch.randn(3, 11, 8)
    garbage = x.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 50.0
    with torch.no_grad():
        out = net(garbage, lengths)
        for b, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(out[b, :n], _reference_context(net, x[b, :n]), atol=1e-5, rtol=1e-5)
            assert torch.all(out[b, n:] == 0)


def test_context_tiles_give_the_dense_result_and_gradients():
    """Tiling the queries changes memory, not results: outputs and gradients of a long batch
    with tiles of 16 frames equal those of one dense tile."""
    torch.manual_seed(0)
    dense = LocalTransformer(8, ContextConfig(layers=2, heads=2, window=10, tile=512))
    tiled = LocalTransformer(8, ContextConfig(layers=2, heads=2, window=10, tile=16))
    with torch.no_grad():
        dense.position_bias.normal_()
    tiled.load_state_dict(dense.state_dict())
    x = torch.randn(2, 100, 8)
    lengths = torch.tensor([100, 37])
    outs = []
    for net in (dense, tiled):
        xi = x.clone().requires_grad_(True)
        out = net(xi, lengths)
        (out * torch.linspace(-1, 1, 8)).sum().backward()
        outs.append((out, xi.grad, net.position_bias.grad))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert tiled(torch.zeros(2, 0, 8), torch.tensor([0, 0])).shape == (2, 0, 8)  # no frames: one empty tile


def test_context_attends_tile_by_tile(monkeypatch):
    """The scores are made one tile at a time: ceil(T / tile) attention calls per layer, each
    with at most `tile` queries and tile + 2 x window keys."""
    import speechunits.models.context as context

    calls, real = [], context.F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        calls.append((q.shape[2], k.shape[2], tuple(kwargs["attn_mask"].shape)))
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(context.F, "scaled_dot_product_attention", spy)
    net = LocalTransformer(8, ContextConfig(layers=2, heads=2, window=5, tile=16)).eval()
    with torch.no_grad():
        net(torch.randn(3, 70, 8), torch.tensor([70, 50, 3]))
    assert len(calls) == 2 * 5  # 70 frames in tiles of 16: 5 per layer
    assert all(q <= 16 and k <= 16 + 2 * 5 and mask == (3, 2, q, k) for q, k, mask in calls)
    assert [q for q, _, _ in calls[:5]] == [16, 16, 16, 16, 6] and [k for _, k, _ in calls[:5]] == [21, 26, 26, 26, 11]


def test_encoder_with_context_batches_and_backpropagates():
    torch.manual_seed(0)
    cfg = EncoderConfig(channels=8, layers=("k3", "k3d2"), norm="layer", context=ContextConfig(layers=1, heads=2, window=4))
    enc = Encoder(5, cfg)
    lengths = torch.tensor([30, 17])
    x = torch.randn(2, 30, 5, requires_grad=True)
    out = enc(x, lengths)
    alone = enc(x[1:, :17])
    torch.testing.assert_close(out.values[1, :17], alone.values[0], atol=1e-5, rtol=1e-5)
    out.values.sum().backward()
    assert enc.context.position_bias.grad is not None and enc.context.position_bias.grad.abs().sum() > 0
    assert torch.all(x.grad[1, 17:] == 0)  # padding feeds nothing


def test_context_config_is_checked():
    with pytest.raises(SpeechUnitsError, match="window"):
        ContextConfig(layers=1, window=0)
    with pytest.raises(SpeechUnitsError, match="tile"):
        ContextConfig(layers=1, tile=0)
    with pytest.raises(SpeechUnitsError, match="divide"):
        LocalTransformer(10, ContextConfig(layers=1, heads=3))


def test_encode_has_no_dropout_in_training_mode():
    """encode() promises inference behaviour whatever the mode: the context network's dropout
    is off there, and on in training forward passes."""
    torch.manual_seed(0)
    cfg = EncoderConfig(channels=8, layers=("k3",), context=ContextConfig(layers=1, heads=2, window=3, dropout=0.5))
    enc = Encoder(5, cfg).train()
    x = torch.randn(2, 20, 5)
    first, second = enc(x, inference=True).values, enc(x, inference=True).values
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first, enc.eval()(x).values)
    enc.train()
    assert not torch.allclose(enc(x).values, first)
