"""The decoder interface and its registry ("wavenet", "fbank", "cluster").

A decoder reconstructs a target from the conditioning features, which the
autoencoder has already upsampled to the decoder's own rate (`target_rate`, in
Hz: the sample rate for a waveform decoder, 1 / frame shift for a frame decoder):

    @DECODERS.register("name")
    class MyDecoder(Decoder):
        config_class = MyConfig
        def __init__(self, cfg, cond_dim: int, speaker_dim: int): ...
        target_rate -> float
        def forward(self, cond, speaker, target, target_lengths) -> DecoderOutput
        def generate(self, cond, speaker, lengths, **options) -> Tensor

`cond` is (B, N, C) aligned with the target positions (position n of the target
is predicted with cond[:, n]); `speaker` is (B, S) or None. The reconstruction
loss is a mean over the valid target positions only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.config import from_dict, to_dict
from speechunits.errors import SpeechUnitsError
from speechunits.models.common import length_mask, zero_padding
from speechunits.registry import Registry

__all__ = [
    "DECODERS", "Decoder", "DecoderOutput", "build_decoder", "decoder_config", "resolve_decoder_config",
    "with_speaker", "residual_convs",
]

DECODERS = Registry("decoder")

_DECODER_MODULES = ("speechunits.models.wavenet", "speechunits.models.fbank_decoder", "speechunits.models.cluster_decoder")


@dataclass
class DecoderOutput:
    """loss: scalar mean over valid positions; predictions: (B, N, Q) logits or
    (B, T, F) frames; lengths: (B,) valid positions."""

    loss: Tensor
    predictions: Tensor
    lengths: Tensor


class Decoder(nn.Module):
    config_class: type = None  # type: ignore[assignment]
    #: what `target` is: "waveform" (B, N) floats in [-1, 1], "frames" (B, T, F), or
    #: "labels" (B, T) integer class ids (-1: not scored).
    target_kind: str = ""

    @property
    def target_rate(self) -> float:
        raise NotImplementedError

    def generate(self, cond: Tensor, speaker: Tensor | None, lengths: Tensor, **options) -> Tensor:
        raise NotImplementedError


def with_speaker(cond: Tensor, speaker: Tensor | None, lengths: Tensor, speaker_dim: int) -> Tensor:
    """cond (B, N, C) zeroed on padding, with the speaker embedding (B, S) appended to every
    frame when the decoder is speaker-conditioned (speaker_dim > 0) -> (B, N, C [+ S])."""
    x = zero_padding(cond, lengths)
    if not speaker_dim:
        return x
    if speaker is None:
        raise SpeechUnitsError("this decoder is conditioned on the speaker: pass a speaker embedding")
    return torch.cat([x, speaker[:, None, :].expand(-1, x.shape[1], -1).to(x.dtype)], dim=-1)


def residual_convs(x: Tensor, inp: nn.Conv1d, convs: nn.ModuleList, lengths: Tensor) -> Tensor:
    """x (B, N, C) -> (B, channels, N): relu(inp(x)), then h + relu(conv(h)) for each conv,
    with padding frames zeroed before every conv."""
    h = F.relu(inp(x.transpose(1, 2)))
    mask = length_mask(lengths, x.shape[1])[:, None, :].to(h.dtype)
    for conv in convs:
        h = h + F.relu(conv(h * mask))
    return h


def _import_decoder_modules() -> None:
    for name in _DECODER_MODULES:
        importlib.import_module(name)


def decoder_config(name: str, data: dict | None = None):
    _import_decoder_modules()
    return from_dict(DECODERS.get(name).config_class, data or {}, where="decoder_cfg")


def resolve_decoder_config(name: str, data: dict | None = None) -> dict:
    return to_dict(decoder_config(name, data))


def build_decoder(name: str, cfg: dict | object | None, cond_dim: int, speaker_dim: int) -> Decoder:
    _import_decoder_modules()
    cls = DECODERS.get(name)
    if cfg is None or isinstance(cfg, dict):
        cfg = from_dict(cls.config_class, cfg or {}, where="decoder_cfg")
    return cls(cfg, cond_dim, speaker_dim)
