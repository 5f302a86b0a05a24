"""Conditioning: upsampling alignment, speaker table and embedding checks."""

import pytest
import torch

from speechunits.errors import SpeechUnitsError
from speechunits.models.conditioning import Conditioning, ConditioningConfig, SpeakerTable, Upsampler, factorize


def test_repeat_upsampling_covers_the_span():
    up = Upsampler(2, 4, "repeat")
    x = torch.arange(6.0).view(1, 3, 2)
    y = up(x)
    assert y.shape == (1, 12, 2)
    for j in range(3):
        assert torch.all(y[0, 4 * j : 4 * (j + 1)] == x[0, j])


@pytest.mark.parametrize("factor", [2, 5, 12, 320])
def test_transposed_upsampling_is_centred_on_the_span(factor):
    torch.manual_seed(0)
    up = Upsampler(1, factor, "transpose")
    with torch.no_grad():
        for conv in up.stages:
            conv.weight.fill_(1.0)
            conv.bias.zero_()
    T, j = 9, 4
    x = torch.zeros(1, T, 1)
    x[0, j] = 1.0
    y = up(x)[0, :, 0]
    assert y.shape[0] == T * factor
    nz = (y.abs() > 0).nonzero().squeeze(1)
    lo, hi = int(nz.min()), int(nz.max())
    assert (lo + hi) / 2 == pytest.approx(j * factor + (factor - 1) / 2)
    assert lo <= j * factor and hi >= (j + 1) * factor - 1


def test_factorize():
    assert factorize(320) == [5, 2, 2, 2, 2, 2, 2]
    assert factorize(7) == [7]


def test_speaker_table():
    table = SpeakerTable(["f01", "m02", "f03"])
    assert table.id("m02") == 1 and table.ids(["f03", "f01"]).tolist() == [2, 0]
    with pytest.raises(SpeechUnitsError) as err:
        table.id("x99")
    assert "x99" in str(err.value) and "f01, m02, f03" in str(err.value)
    with pytest.raises(SpeechUnitsError, match="duplicate"):
        SpeakerTable(["a", "a"])


def test_conditioning_output_and_speaker_checks():
    torch.manual_seed(0)
    cond = Conditioning(4, ConditioningConfig(channels=6, speaker_dim=3), upsample_factor=3, n_speakers=2)
    lat = torch.randn(2, 5, 4)
    lengths = torch.tensor([5, 3])
    out = cond(lat, lengths, torch.tensor([0, 1]))
    assert out.frames.shape == (2, 5, 6) and out.upsampled.shape == (2, 15, 6) and out.speaker.shape == (2, 3)
    assert torch.all(out.frames[1, 3:] == 0)
    # the k3 conv is centred: frame 2 of utterance 1 sees latents 1..3 only (3 = padding -> zero)
    lat2 = lat.clone()
    lat2[1, 3:] = 9.0
    torch.testing.assert_close(cond(lat2, lengths, torch.tensor([0, 1])).frames, out.frames)
    with pytest.raises(SpeechUnitsError, match="speaker_ids"):
        cond(lat, lengths, None)
    with pytest.raises(SpeechUnitsError, match="out of range"):
        cond(lat, lengths, torch.tensor([0, 2]))
    nospk = Conditioning(4, ConditioningConfig(channels=6), upsample_factor=2, n_speakers=0)
    assert nospk(lat, lengths).speaker is None
