"""Convolutional encoder: input frames (or samples) -> latent-rate features.

The default is the paper's stack (Chorowski et al. 2019), 768 channels, ReLU:

    k3, k3            two convolutions, kernel 3 (residual where shapes allow)
    k4s2              kernel 4, stride 2: 100 Hz -> 50 Hz
    k3, k3            residual
    k1 x 4            four 1x1 layers, residual

A layer is written "k<kernel>", "k<kernel>s<stride>" or "k<kernel>d<dilation>" (a
dilated convolution: taps `dilation` frames apart, so a stack k3d1, k3d2, k3d4, ...
sees exponentially more context at the same cost). A stride-1 layer whose
input and output widths agree adds its input back (residual); the first layer maps
the input dimension to `channels` so it cannot. Strides multiply: (2,) gives 50 Hz
latents from 100 Hz features, (2, 2, 2) gives 12.5 Hz. For raw waveform input
(input_dim 1, 16 kHz) put a strided front first whose strides multiply to 160,
e.g. `WAVEFORM_FRONT` = k8s4, k8s4, k10s10 (-> 100 Hz), then the usual stack.

Time alignment. Every layer pads so that output frame j of a stride-r layer is
centred on input frames [j r, (j+1) r): its window, spanning e = (k - 1) d + 1
inputs for kernel k and dilation d, starts at j r - (e - r)/2, hence e - r must be even. Chained, output frame j of the whole
stack (total stride R) is centred on input frames [j R, (j+1) R), so with the
convention "frame i covers [i s, (i+1) s)" the latent frame j covers
[j R s, (j+1) R s): the time convention holds at every rate, and an impulse at
input frame t has its strongest path to output frame t // R. Output lengths are
ceil(T / R). Batched inputs give the same valid outputs as one utterance at a
time: padding is zeroed before every layer with a kernel wider than 1 (and in the
output), which is exactly the zero padding a lone utterance would get.

`norm: layer` puts a LayerNorm over the channels between each convolution and its
activation (a deep dilated stack trained from scratch needs it; the paper's
9-layer stack does not). `norm: instance` normalises each channel over the valid
frames of its utterance instead (mean 0, variance 1, then a learned scale and
shift per channel): what stays constant through an utterance, as much of the
speaker's voice does, is taken out at every layer (the content encoders of
one-shot voice conversion use it for that).

`context.layers > 0` puts banded self-attention layers on top of the convolutions
(models/context.py: HuBERT's Transformer in a local form); each adds
`context.window` output frames of context on either side, so the receptive field
stays bounded and the alignment contract above holds unchanged.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import as_lengths, zero_padding
from speechunits.models.context import ContextConfig, LocalTransformer

__all__ = [
    "EncoderConfig",
    "Encoder",
    "EncoderOutput",
    "ConvSpec",
    "parse_layer",
    "PAPER_LAYERS",
    "WAVEFORM_FRONT",
]

PAPER_LAYERS = ("k3", "k3", "k4s2", "k3", "k3", "k1", "k1", "k1", "k1")
WAVEFORM_FRONT = ("k8s4", "k8s4", "k10s10")

_LAYER_RE = re.compile(r"^k(\d+)(?:d(\d+))?(?:s(\d+))?$")
NORMS = ("none", "layer", "instance")


@dataclass(frozen=True)
class ConvSpec:
    kernel: int
    stride: int = 1
    dilation: int = 1

    @property
    def span(self) -> int:
        """Input frames one output frame's window covers: (kernel - 1) * dilation + 1."""
        return (self.kernel - 1) * self.dilation + 1

    @property
    def pad_left(self) -> int:
        return (self.span - self.stride) // 2


def parse_layer(text: str) -> ConvSpec:
    """"k4s2" -> ConvSpec(4, 2), "k3d4" -> ConvSpec(3, 1, 4); checks that the layer can be
    centred (span - stride even, span >= stride)."""
    m = _LAYER_RE.match(text.strip())
    if not m:
        raise SpeechUnitsError(
            f"encoder layer {text!r}: expected 'k<kernel>', 'k<kernel>s<stride>' or 'k<kernel>d<dilation>', "
            "e.g. 'k4s2' or 'k3d4'"
        )
    spec = ConvSpec(int(m.group(1)), int(m.group(3) or 1), int(m.group(2) or 1))
    if spec.stride < 1 or spec.dilation < 1 or spec.kernel < 1 or spec.span < spec.stride:
        raise SpeechUnitsError(f"encoder layer {text!r}: need kernel >= stride >= 1 and dilation >= 1")
    if (spec.span - spec.stride) % 2:
        raise SpeechUnitsError(
            f"encoder layer {text!r}: (kernel - 1) * dilation + 1 - stride must be even so the window is "
            f"centred on its output frame's span (e.g. k3, k4s2, k3d4, k8s4, k10s10)"
        )
    return spec


@dataclass
class EncoderConfig:
    channels: int = 768
    layers: tuple[str, ...] = PAPER_LAYERS
    residual: bool = True
    activation: str = "relu"  # "relu" or "gelu"
    norm: str = "none"  # "none", "layer" (over channels) or "instance" (over time): before each activation
    context: ContextConfig = field(default_factory=ContextConfig)  # banded self-attention on top (models/context.py)

    def __post_init__(self):
        self.layers = tuple(self.layers)
        if not self.layers:
            raise SpeechUnitsError("encoder needs at least one layer")
        for layer in self.layers:
            parse_layer(layer)
        if self.activation not in ("relu", "gelu"):
            raise SpeechUnitsError(f"encoder activation must be relu or gelu, got {self.activation!r}")
        if self.norm not in NORMS:
            raise SpeechUnitsError(f"encoder norm must be one of {', '.join(NORMS)}, got {self.norm!r}")

    @property
    def specs(self) -> list[ConvSpec]:
        return [parse_layer(layer) for layer in self.layers]

    @property
    def total_stride(self) -> int:
        return math.prod(s.stride for s in self.specs)


@dataclass
class EncoderOutput:
    """values: (B, T', C); lengths: (B,) = ceil(lengths_in / total_stride); frame_shift in s."""

    values: Tensor
    lengths: Tensor
    frame_shift: float


class _ConvLayer(nn.Module):
    """One layer on time-major activations (B, T, C).

    The weights are an nn.Conv1d's (checkpoint names layers.<i>.conv.weight/bias),
    applied as a 2-D convolution over the channels-last view (B, C, 1, T) of the
    (B, T, C) tensor: no transposes between layers, and on CPU oneDNN's channels-last
    kernels measured 1.6-2.5x faster than conv1d on (B, C, T) for the 100 Hz layers."""

    def __init__(self, in_ch: int, out_ch: int, spec: ConvSpec, residual: bool, act: str, norm: str = "none"):
        super().__init__()
        self.spec = spec
        self.conv = nn.Conv1d(in_ch, out_ch, spec.kernel, stride=spec.stride, dilation=spec.dilation)
        self.norm = {"layer": nn.LayerNorm, "instance": _InstanceNorm}.get(norm, lambda c: None)(out_ch)
        self.residual = residual and spec.stride == 1 and in_ch == out_ch
        self.act = nn.ReLU(inplace=True) if act == "relu" else nn.GELU()

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, T, C_in) with zero padding -> (B, ceil(T / s), C_out), new lengths."""
        s, left = self.spec.stride, self.spec.pad_left
        T = x.shape[1]
        extra = -(-T // s) * s - T  # the last window needs `left + extra` frames of padding on the right
        h = F.pad(x, (0, 0, 0, extra)) if extra else x  # the convolution pads `left` on each side
        view = h.transpose(1, 2).unsqueeze(2)  # (B, C_in, 1, T): channels-last in memory
        y = F.conv2d(
            view, self.conv.weight.unsqueeze(2), self.conv.bias, stride=(1, s), padding=(0, left),
            dilation=(1, self.spec.dilation),
        )
        y = y.squeeze(2).transpose(1, 2)  # (B, ceil(T / s), C_out)
        new_lengths = torch.div(lengths + s - 1, s, rounding_mode="floor")
        if isinstance(self.norm, _InstanceNorm):
            y = self.norm(y, new_lengths)
        elif self.norm is not None:
            y = self.norm(y)
        y = self.act(y)  # contiguous
        if self.residual:  # in place when no graph is recorded (autograd needs the activation's output)
            y = y.add_(x) if not torch.is_grad_enabled() else y + x
        return y, new_lengths


class _InstanceNorm(nn.Module):
    """Each channel normalised over the valid frames of its utterance, then scaled and shifted."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, y: Tensor, lengths: Tensor) -> Tensor:
        """y: (B, T, C), lengths: (B,) valid frames -> (B, T, C); padding frames are left
        to the caller's zeroing."""
        mask = (torch.arange(y.shape[1], device=y.device)[None, :] < lengths[:, None]).unsqueeze(-1).to(y.dtype)
        count = lengths.clamp(min=1).to(y.dtype)[:, None]
        mean = (y * mask).sum(1) / count  # (B, C)
        var = (((y - mean[:, None]) * mask) ** 2).sum(1) / count
        return (y - mean[:, None]) * torch.rsqrt(var[:, None] + self.eps) * self.weight + self.bias


class Encoder(nn.Module):
    """Strided 1-D conv stack; see the module docstring for the alignment contract."""

    def __init__(self, input_dim: int, cfg: EncoderConfig, input_frame_shift: float = 0.01):
        super().__init__()
        self.cfg, self.input_dim, self.input_frame_shift = cfg, int(input_dim), float(input_frame_shift)
        layers, width = [], self.input_dim
        for spec in cfg.specs:
            layers.append(_ConvLayer(width, cfg.channels, spec, cfg.residual, cfg.activation, cfg.norm))
            width = cfg.channels
        self.layers = nn.ModuleList(layers)
        self.context = LocalTransformer(cfg.channels, cfg.context) if cfg.context.layers > 0 else None
        self.out_dim = cfg.channels

    @property
    def total_stride(self) -> int:
        return self.cfg.total_stride

    @property
    def frame_shift(self) -> float:
        """Seconds between output frames."""
        return self.input_frame_shift * self.total_stride

    def forward(self, x: Tensor, lengths: Tensor | None = None, inference: bool = False) -> EncoderOutput:
        """x: (B, T, F) frames (or (B, N) / (B, N, 1) waveform), lengths: (B,) -> (B, T', C).

        T' = ceil(T / total_stride); padding frames of the output are zero. `inference`:
        no dropout (the context network's) even in training mode.
        """
        if x.dim() == 2:
            x = x.unsqueeze(-1)
        if x.shape[-1] != self.input_dim:
            raise SpeechUnitsError(f"encoder expects {self.input_dim}-dim input frames, got shape {tuple(x.shape)}")
        padded = lengths is not None and bool((lengths != x.shape[1]).any())  # else no masking needed
        lengths = as_lengths(x, lengths)
        h = x
        for layer in self.layers:
            if padded and layer.spec.kernel > 1:  # a 1x1 layer never mixes padding into valid frames
                h = zero_padding(h, lengths)
            h, lengths = layer(h, lengths)
        if padded:
            h = zero_padding(h, lengths)
        if self.context is not None:
            h = self.context(h, lengths, inference=inference)
        return EncoderOutput(h, lengths, self.frame_shift)
