"""Chunked encoding: the receptive field from the layer list agrees with the dependencies
measured by perturbing single input frames, and chunked encoding equals whole-utterance
encoding (encoder output, and for pcvq the whole-utterance DP after chunked encoding)."""

import numpy as np
import pytest
import torch
from units_fixtures import tiny_model

from speechunits.models.context import ContextConfig
from speechunits.models.encoder import PAPER_LAYERS, WAVEFORM_FRONT, Encoder, EncoderConfig
from speechunits.units.chunking import chunk_spans, encode_chunked, receptive_field
from speechunits.units.extractor import UnitExtractor

LAYER_SETS = [
    PAPER_LAYERS,
    ("k3", "k4s2", "k4s2", "k3"),
    ("k5", "k6s2", "k3", "k3s3", "k1"),
    WAVEFORM_FRONT + ("k3", "k4s2"),
    ("k3", "k3d2", "k4s2", "k3d4", "k3d3"),  # dilated, as pipelines/masked.yaml
    ("k3", "k4d3s2", "k3d2"),  # a layer both dilated and strided
]


def measured_field(encoder: Encoder, T: int, j: int) -> tuple[int, int]:
    """Input frames whose change moves output frame j: (first, last), by brute force."""
    torch.manual_seed(1)
    x = torch.randn(1, T, encoder.input_dim)
    base = encoder(x).values[0, j]
    hits = []
    for t in range(T):
        y = x.clone()
        y[0, t] += 10.0
        if not torch.allclose(encoder(y).values[0, j], base, atol=0, rtol=0):
            hits.append(t)
    return min(hits), max(hits)


@pytest.mark.parametrize("layers", LAYER_SETS[:3] + LAYER_SETS[4:], ids=["paper", "two-strides", "odd", "dilated", "dilated-strided"])
def test_receptive_field_matches_perturbation(layers):
    cfg = EncoderConfig(channels=8, layers=layers)
    torch.manual_seed(0)
    enc = Encoder(3, cfg).eval()
    # no ReLU dead zones in the way of the measurement: residual nets with random
    # weights pass perturbations through; use a big perturbation and several frames
    field = receptive_field(cfg)
    R = cfg.total_stride
    T = 12 * R + field.left + field.right + 4 * R
    j = (field.left // R) + 3  # far from both edges
    first, last = measured_field(enc, T, j)
    assert first == j * R - field.left
    assert last == j * R + R - 1 + field.right


def _with_context(channels: int) -> tuple[EncoderConfig, Encoder]:
    """A strided conv stack with two banded attention layers on top, random position biases."""
    cfg = EncoderConfig(channels=channels, layers=("k3", "k4s2", "k3d2"), context=ContextConfig(layers=2, heads=2, window=3))
    torch.manual_seed(0)
    enc = Encoder(3, cfg).eval()
    with torch.no_grad():
        enc.context.position_bias.normal_()
    return cfg, enc


def test_receptive_field_with_context_matches_perturbation():
    cfg, enc = _with_context(8)
    field = receptive_field(cfg)
    assert (field.left, field.right) == (receptive_field(EncoderConfig(layers=cfg.layers)).left + 2 * 3 * 2,
                                          receptive_field(EncoderConfig(layers=cfg.layers)).right + 2 * 3 * 2)
    T = 12 * 2 + field.left + field.right + 8
    j = field.left // 2 + 3
    first, last = measured_field(enc, T, j)
    assert (first, last) == (j * 2 - field.left, j * 2 + 1 + field.right)


@pytest.mark.parametrize("T", [97, 100])
def test_chunked_equals_whole_with_context(T):
    _, enc = _with_context(16)
    x = torch.randn(T, 3)
    with torch.no_grad():
        whole = enc(x.unsqueeze(0)).values[0]
    for chunk in (4, 11):
        torch.testing.assert_close(encode_chunked(enc, x, chunk), whole, atol=1e-5, rtol=1e-5)


def test_paper_encoder_field_hand_computed():
    # k3, k3, k4s2, k3, k3, k1 x 4: 1 + 1 frames before the strided layer (x2) + its own
    # 1 frame of left padding + 2 frames after it at stride 2 (x2) = 7 input frames
    f = receptive_field(EncoderConfig(layers=PAPER_LAYERS))
    assert (f.left, f.right, f.stride) == (7, 7, 2)
    assert (f.padded_left, f.padded_right) == (8, 8)


def test_chunk_spans_cover_outputs_once():
    f = receptive_field(EncoderConfig(layers=("k3", "k4s2", "k4s2")))
    spans = chunk_spans(101, f, 7)
    outs = [j for j0, j1, _, _ in spans for j in range(j0, j1)]
    assert outs == list(range(26))  # ceil(101 / 4)
    assert all(a % 4 == 0 and 0 <= a < b <= 101 for _, _, a, b in spans)


@pytest.mark.parametrize("layers", LAYER_SETS, ids=["paper", "two-strides", "odd", "waveform", "dilated", "dilated-strided"])
@pytest.mark.parametrize("T", [997, 1000])
def test_chunked_equals_whole(layers, T):
    cfg = EncoderConfig(channels=16, layers=layers)
    torch.manual_seed(0)
    dim = 1 if layers[0] == WAVEFORM_FRONT[0] else 5
    enc = Encoder(dim, cfg).eval()
    x = torch.randn(T if dim > 1 else 40 * T, dim)
    with torch.no_grad():
        whole = enc(x.unsqueeze(0)).values[0]
    for chunk in (5, 37):
        chunked = encode_chunked(enc, x, chunk)
        assert chunked.shape == whole.shape
        torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bottleneck", ["vq", "pcvq"])
@pytest.mark.parametrize("tap", ["encoder", "bottleneck", "conditioning"])
def test_extractor_chunked_equals_whole(bottleneck, tap):
    from units_fixtures import signal

    model, feats = tiny_model(bottleneck)
    x = signal(6.0, seed=3)
    whole = UnitExtractor(model, feats, tap=tap, chunk_seconds=1000.0)(x)
    chunked = UnitExtractor(model, feats, tap=tap, chunk_seconds=0.5)(x)  # 12 chunks
    np.testing.assert_allclose(chunked.dense, whole.dense, atol=1e-5, rtol=1e-5)
    assert np.array_equal(chunked.frame_codes, whole.frame_codes)
    assert np.array_equal(chunked.units, whole.units) and np.array_equal(chunked.durations, whole.durations)
    assert len(whole.units) > 5  # the test means something: several units


def test_instance_norm_encoders_are_encoded_whole():
    """Instance norm takes its statistics over the whole utterance, which no chunk sees: the
    chunked path encodes such an encoder in one pass instead of giving other numbers."""
    cfg = EncoderConfig(channels=8, layers=("k3", "k3d2"), norm="instance")
    torch.manual_seed(0)
    enc = Encoder(3, cfg).eval()
    x = torch.randn(120, 3)
    with torch.no_grad():
        whole = enc(x.unsqueeze(0)).values[0]
    torch.testing.assert_close(encode_chunked(enc, x, 10), whole)
