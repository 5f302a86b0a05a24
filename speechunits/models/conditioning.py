"""Conditioning stack: latents -> decoder conditioning, plus the speaker.

Local conditioning: one convolution (kernel 3, 128 channels, as in the paper) over
the (jittered) latents at the latent rate; its output is the "conditioning" probe
tap. The decoder then needs it at its own rate (16 kHz samples for WaveNet, 100 Hz
frames for the filterbank decoder): `Upsampler` makes latent frame j cover target
positions [j f, (j+1) f) for an integer factor f, either by repetition or by
learned transposed convolutions centred on that span.

Global conditioning: a speaker embedding table over the training speakers. The
names live in the model config (`speakers`), `SpeakerTable` maps names to ids and
refuses unknown speakers with a message that lists the known ones: resynthesis for
an unseen speaker must name a training speaker to borrow the voice of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechunits.errors import SpeechUnitsError
from speechunits.models.common import as_lengths, zero_padding

__all__ = ["SpeakerTable", "ConditioningConfig", "Conditioning", "ConditioningOutput", "Upsampler", "factorize"]


class SpeakerTable:
    """Speaker name <-> embedding row. Names are kept in the order given (ids = positions)."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        if len(set(self.names)) != len(self.names):
            dupes = sorted({n for n in self.names if self.names.count(n) > 1})
            raise SpeechUnitsError(f"speaker table has duplicate names: {', '.join(dupes)}")
        self._index = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def id(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            known = ", ".join(self.names[:50]) + (f", ... ({len(self.names)} in all)" if len(self.names) > 50 else "")
            raise SpeechUnitsError(
                f"unknown speaker {name!r}: the model was trained on {known or '(no speakers)'}; "
                f"pick one of them to resynthesise with"
            ) from None

    def ids(self, names: Iterable[str], device: torch.device | str | None = None) -> Tensor:
        """Names -> (B,) long tensor of ids."""
        return torch.tensor([self.id(n) for n in names], dtype=torch.long, device=device)

    def name(self, idx: int) -> str:
        return self.names[idx]


@dataclass
class ConditioningConfig:
    channels: int = 128
    kernel_size: int = 3
    upsample: str = "repeat"  # "repeat" or "transpose" (learned transposed convolutions)
    speaker_dim: int = 64  # speaker embedding size (when the model has speakers)

    def __post_init__(self):
        if self.kernel_size % 2 != 1:
            raise SpeechUnitsError(f"conditioning kernel_size must be odd (centred), got {self.kernel_size}")
        if self.upsample not in ("repeat", "transpose"):
            raise SpeechUnitsError(f"conditioning upsample must be 'repeat' or 'transpose', got {self.upsample!r}")


@dataclass
class ConditioningOutput:
    """frames: (B, T', C) at the latent rate (the probe tap); lengths (B,);
    upsampled: (B, T' f, C) at the decoder's rate; speaker: (B, S) embedding or None."""

    frames: Tensor
    lengths: Tensor
    upsampled: Tensor
    speaker: Tensor | None


def factorize(n: int) -> list[int]:
    """Prime factors of n, largest first (320 -> [5, 2, 2, 2, 2, 2, 2])."""
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return sorted(out, reverse=True)


def _stage_factors(factor: int) -> list[int]:
    """Split an upsampling factor into a few stages of 2..16 (320 -> [5, 8, 8])."""
    primes = factorize(factor)
    stages: list[int] = []
    for p in primes:
        for i, s in enumerate(stages):
            if s * p <= 16:
                stages[i] = s * p
                break
        else:
            stages.append(p)
    return stages


class Upsampler(nn.Module):
    """(B, T, C) -> (B, T * factor, C); input frame j covers outputs [j f, (j+1) f).

    "repeat": each frame repeated f times. "transpose": one ConvTranspose1d per
    stage (stride s, kernel 2s with padding s/2 for even s, else kernel s), each
    centred on its frame's span, so the alignment is the same as for repetition.
    """

    def __init__(self, channels: int, factor: int, mode: str = "repeat"):
        super().__init__()
        if factor < 1:
            raise SpeechUnitsError(f"upsampling factor must be a positive integer, got {factor}")
        self.factor, self.mode = int(factor), mode
        self.stages = nn.ModuleList()
        if mode == "transpose":
            for s in _stage_factors(self.factor) if self.factor > 1 else []:
                if s % 2 == 0:
                    conv = nn.ConvTranspose1d(channels, channels, 2 * s, stride=s, padding=s // 2)
                else:
                    conv = nn.ConvTranspose1d(channels, channels, s, stride=s)
                self.stages.append(conv)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) -> (B, T * factor, C)."""
        if self.mode == "repeat" or self.factor == 1:
            return torch.repeat_interleave(x, self.factor, dim=1)
        h = x.transpose(1, 2)
        for i, conv in enumerate(self.stages):
            h = conv(h)
            if i < len(self.stages) - 1:
                h = F.leaky_relu(h, 0.4)
        return h.transpose(1, 2)


class Conditioning(nn.Module):
    """Latents (B, T', D) -> ConditioningOutput; see the module docstring."""

    def __init__(self, latent_dim: int, cfg: ConditioningConfig, upsample_factor: int, n_speakers: int = 0):
        super().__init__()
        self.cfg = cfg
        self.conv = nn.Conv1d(latent_dim, cfg.channels, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.upsampler = Upsampler(cfg.channels, upsample_factor, cfg.upsample)
        self.n_speakers = int(n_speakers)
        self.speaker_embedding = nn.Embedding(n_speakers, cfg.speaker_dim) if n_speakers > 0 else None
        self.out_dim = cfg.channels
        self.speaker_dim = cfg.speaker_dim if n_speakers > 0 else 0

    @property
    def upsample_factor(self) -> int:
        return self.upsampler.factor

    def speaker(self, speaker_ids: Tensor | None, batch: int) -> Tensor | None:
        """(B,) long -> (B, S) embeddings (None when the model has no speakers)."""
        if self.speaker_embedding is None:
            return None
        if speaker_ids is None:
            raise SpeechUnitsError("this model is conditioned on the speaker: pass speaker_ids (B,)")
        if speaker_ids.shape != (batch,):
            raise SpeechUnitsError(f"speaker_ids must have shape ({batch},), got {tuple(speaker_ids.shape)}")
        bad = (speaker_ids < 0) | (speaker_ids >= self.n_speakers)
        if bool(bad.any()):
            raise SpeechUnitsError(
                f"speaker id(s) {speaker_ids[bad].tolist()} out of range: the model knows {self.n_speakers} speakers"
            )
        return self.speaker_embedding(speaker_ids)

    def local(self, latents: Tensor, lengths: Tensor | None = None) -> Tensor:
        """latents: (B, T', D) -> (B, T', C) local conditioning at the latent rate (zero on padding)."""
        lengths = as_lengths(latents, lengths)
        frames = self.conv(zero_padding(latents, lengths).transpose(1, 2)).transpose(1, 2)
        return zero_padding(frames, lengths)

    def forward(self, latents: Tensor, lengths: Tensor | None = None, speaker_ids: Tensor | None = None) -> ConditioningOutput:
        """latents: (B, T', D), lengths (B,), speaker_ids (B,) -> ConditioningOutput."""
        lengths = as_lengths(latents, lengths)
        frames = self.local(latents, lengths)
        return ConditioningOutput(
            frames=frames,
            lengths=lengths,
            upsampled=self.upsampler(frames),
            speaker=self.speaker(speaker_ids, latents.shape[0]),
        )

