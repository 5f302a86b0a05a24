"""What every front end shares: the registry, the output type, the base class.

A front end turns a batch of waveforms `(B, N)` into features `(B, T, D)` at a
fixed frame shift. It is built by name:

    fe = build_frontend("mfcc", {"num_ceps": 13, "frame_opts": {"snip_edges": False}})
    out = fe(waveform, lengths)          # Features(feats (B,T,D), lengths (B,), frame_shift)
    feats = fe.compute(samples_1d)       # (T, D), numpy in -> numpy out
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from speechunits.config import from_dict
from speechunits.registry import Registry
from speechunits.errors import ConfigError

FRONTENDS = Registry("front end")


@dataclass
class Features:
    """A batch of feature sequences and how to read it.

    feats: (B, T, D) float32, zero beyond each utterance's length
    lengths: (B,) int64, valid frames per utterance
    frame_shift: seconds between frames; frame i is centred at about (i + 0.5) * frame_shift
    """

    feats: torch.Tensor
    lengths: torch.Tensor
    frame_shift: float

    def unbatch(self) -> list[torch.Tensor]:
        """The utterances as a list of (T_b, D) tensors (views)."""
        return [self.feats[b, :n] for b, n in enumerate(self.lengths.tolist())]


def as_batch(waveform: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, list[int]]:
    """Check a `(B, N)` batch and its valid lengths; return float32 samples and lengths as ints."""
    if waveform.dim() != 2:
        raise ConfigError(f"expected waveform of shape (B, N), got {tuple(waveform.shape)}")
    if not waveform.is_floating_point():
        raise TypeError(f"expected floating-point samples in [-1, 1), got {waveform.dtype}")
    waveform = waveform.to(torch.float32)
    if lengths is None:
        return waveform, [waveform.shape[1]] * waveform.shape[0]
    lens = [int(n) for n in torch.as_tensor(lengths).tolist()]
    if len(lens) != waveform.shape[0] or any(n < 0 or n > waveform.shape[1] for n in lens):
        raise ConfigError(f"lengths {lens} do not fit a waveform batch of shape {tuple(waveform.shape)}")
    return waveform, lens


class FrontEnd(nn.Module):
    """Base class: a waveform -> features module with a known frame shift.

    Subclasses set `config_class`, implement `forward`, `num_frames`, and the
    properties `sample_rate`, `frame_shift` (seconds) and `feature_dim`.
    """

    config_class: ClassVar[type]

    @property
    def sample_rate(self) -> int:
        raise NotImplementedError

    @property
    def frame_shift(self) -> float:
        raise NotImplementedError

    @property
    def feature_dim(self) -> int:
        raise NotImplementedError

    def num_frames(self, num_samples: int) -> int:
        raise NotImplementedError

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> Features:
        raise NotImplementedError

    def compute(self, waveform: Any):
        """One utterance: `(N,)` samples -> `(T, D)` features.

        A numpy array gives a numpy array, a tensor gives a tensor (same device).
        """
        return compute_one(self, waveform)


def compute_one(module: nn.Module, waveform: Any):
    """Run `module` (whose forward returns Features) on one utterance `(N,)` -> `(T, D)`."""
    is_numpy = isinstance(waveform, np.ndarray)
    x = torch.from_numpy(np.ascontiguousarray(waveform)) if is_numpy else torch.as_tensor(waveform)
    if x.dim() != 1:
        raise ConfigError(f"compute() takes one utterance of shape (N,), got {tuple(x.shape)}")
    feats = module(x.unsqueeze(0)).feats[0]
    return feats.cpu().numpy() if is_numpy else feats


def build_frontend(name: str, config: Any = None) -> FrontEnd:
    """The registered front end `name`, configured by a dataclass, a dict, or None (defaults)."""
    cls = FRONTENDS.get(name)
    if config is None:
        config = cls.config_class()
    elif isinstance(config, dict):
        config = from_dict(cls.config_class, config, where=name)
    elif not isinstance(config, cls.config_class):
        raise TypeError(
            f"front end {name!r} takes a {cls.config_class.__name__} or a dict, got {type(config).__name__}"
        )
    return cls(config)
