"""Framing against a literal transcription of Kaldi's ExtractWindow loop."""

import numpy as np
import pytest
import torch

from speechunits.frontends import FrameOptions
from speechunits.frontends.framing import (
    FrameGeometry,
    extract_frames,
    first_sample_of_frame,
    frame_chunk,
    num_frames,
    num_frames_tensor,
    reflect_index,
)


def kaldi_frames(x: np.ndarray, snip_edges: bool, length=400, shift=160) -> np.ndarray:
    """Frames as Kaldi extracts them: count rule, start rule, reflection loop."""
    n = len(x)
    if snip_edges:
        count = 0 if n < length else 1 + (n - length) // shift
    else:
        count = (n + shift // 2) // shift
    out = np.zeros((count, length), dtype=x.dtype)
    for f in range(count):
        start = f * shift if snip_edges else f * shift + shift // 2 - length // 2
        for s in range(length):
            i = start + s
            while i < 0 or i >= n:
                i = -i - 1 if i < 0 else 2 * n - 1 - i
            out[f, s] = x[i]
    return out


@pytest.mark.parametrize("snip_edges", [False, True])
@pytest.mark.parametrize("n", [1000, 37, 80, 400, 2345, 161, 0, 279, 320, 559, 560])
def test_frames_equal_kaldi_frames(n, snip_edges, rng):
    opts = FrameOptions(snip_edges=snip_edges, waveform_scale=1.0)
    x = rng.standard_normal(n).astype(np.float32)
    expected = kaldi_frames(x, snip_edges)
    assert len(expected) == num_frames(n, opts)
    np.testing.assert_array_equal(extract_frames(torch.from_numpy(x), opts).numpy(), expected)


@pytest.mark.parametrize("snip_edges", [False, True])
def test_chunks_of_frames_equal_kaldi_frames_scaled(snip_edges, rng):
    opts = FrameOptions(snip_edges=snip_edges)
    geom = FrameGeometry.of(opts)
    x = rng.standard_normal(5000).astype(np.float32)
    expected = kaldi_frames(x, snip_edges) * np.float32(32768.0)
    buffer = torch.empty(6 * 160 + 400)
    for first in range(0, len(expected), 7):
        count = min(7, len(expected) - first)
        got = frame_chunk(torch.from_numpy(x), first, count, geom, 32768.0, buffer)
        np.testing.assert_array_equal(got.numpy(), expected[first : first + count])


def test_frame_counts_follow_kaldi_rules():
    keep, snip = FrameOptions(), FrameOptions(snip_edges=True)
    # snip_edges=False: round(N / 160); frame t centred near (t + 0.5) * 160
    assert [num_frames(n, keep) for n in (0, 79, 80, 239, 240, 16000)] == [0, 0, 1, 1, 2, 100]
    assert [num_frames(n, snip) for n in (0, 399, 400, 559, 560, 16000)] == [0, 0, 1, 1, 2, 98]
    assert first_sample_of_frame(0, keep) == -120 and first_sample_of_frame(3, keep) == 360
    assert first_sample_of_frame(3, snip) == 480
    counts = torch.tensor([0, 79, 80, 400, 16000, 399, 560])
    for opts in (keep, snip):
        assert num_frames_tensor(counts, opts).tolist() == [num_frames(int(n), opts) for n in counts]


def test_reflect_index_equals_repeated_reflection():
    for n in (1, 2, 5, 13):
        for i in range(-40, 40):
            j = i
            while j < 0 or j >= n:
                j = -j - 1 if j < 0 else 2 * n - 1 - j
            assert reflect_index(torch.tensor(i), n).item() == j


def test_window_sizes_use_kaldi_float32_arithmetic():
    opts = FrameOptions(samp_freq=16000, frame_shift_ms=10, frame_length_ms=25)
    assert (opts.window_shift, opts.window_size, opts.padded_window_size) == (160, 400, 512)
    assert FrameOptions(round_to_power_of_two=False).padded_window_size == 400
    assert FrameOptions(samp_freq=8000).window_size == 200
    assert FrameOptions().frame_shift_seconds == 0.01
    with pytest.raises(ValueError):
        FrameOptions(window_type="kaiser")


@pytest.mark.parametrize("bins", [23, 40, 80])
def test_banded_mel_filterbank_equals_the_dense_product(bins, rng):
    from speechunits.frontends import MelOptions
    from speechunits.frontends.mel import MelFilterbank, kaldi_mel_banks

    weights = kaldi_mel_banks(MelOptions(num_bins=bins), FrameOptions())
    assert weights.shape == (bins, 257) and np.all(weights[:, -1] == 0)  # Nyquist bin unused, as in Kaldi
    # every FFT bin inside the mel range feeds at most two neighbouring triangles
    assert (np.count_nonzero(weights, axis=0) <= 2).all()
    power = torch.from_numpy(rng.random((37, 257)).astype(np.float32) * 1e6)
    expected = power.double() @ torch.from_numpy(weights).double().T
    np.testing.assert_allclose(MelFilterbank(weights)(power).numpy(), expected.numpy(), rtol=1e-5)
