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

from torch import Tensor, nn

from speechunits.config import from_dict, to_dict
from speechunits.registry import Registry

__all__ = ["DECODERS", "Decoder", "DecoderOutput", "build_decoder", "decoder_config", "resolve_decoder_config"]

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
