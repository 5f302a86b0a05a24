"""Kaldi-compatible framing: frame counts, frame positions, windows, edge reflection.

Shared by fbank and MFCC. The semantics follow Kaldi's feature-window.cc (and
kaldi-native-fbank, which copies it), so the same options give the same frames:

- frame length L = int(samp_freq * 0.001 * frame_length_ms) samples, shift S likewise
  (computed in float32, as Kaldi does, so odd settings truncate the same way);
- snip_edges=False (our default, the project's time convention): T = round(N / S)
  frames (integer arithmetic `(N + S // 2) // S`); frame t starts at
  t*S + S//2 - L//2, i.e. it is centred near (t + 0.5) * S; samples outside
  [0, N) are taken by reflecting the signal at its ends (-1 -> 0, -2 -> 1,
  N -> N-1, ...), repeatedly if the signal is shorter than a frame;
- snip_edges=True (HTK style): only frames that fit entirely, starting at sample 0:
  T = 1 + (N - L) // S, or 0 if N < L.

For speed, frames are never materialised one by one: for a chunk of consecutive
frames, the samples they read are copied once (edges reflected) into a small
buffer, and the frames are a strided view of it (`frame_chunk`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from speechunits.errors import ConfigError

WINDOW_TYPES = ("povey", "hanning", "hamming", "rectangular", "sine", "blackman")


@dataclass
class FrameOptions:
    """Framing and windowing options; names and meanings are Kaldi's.

    Differences from Kaldi's defaults, on purpose:
    - `dither` is 0.0 (Kaldi: 1.0); when used, the noise comes from a torch
      generator seeded with `seed` (None: torch's global generator).
    - `snip_edges` is False (Kaldi: True), so frame i is centred at about
      (i + 0.5) * shift, the project's time convention.
    - `waveform_scale`: input samples are floats in [-1, 1) and are multiplied by
      32768 before anything else, so energies and log values equal Kaldi's on
      int16-range audio. Use 1.0 for input that is already int16-scaled.
    """

    samp_freq: float = 16000.0
    frame_shift_ms: float = 10.0
    frame_length_ms: float = 25.0
    dither: float = 0.0
    seed: int | None = None
    preemph_coeff: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    round_to_power_of_two: bool = True
    blackman_coeff: float = 0.42
    snip_edges: bool = False
    waveform_scale: float = 32768.0

    def __post_init__(self) -> None:
        if self.window_type not in WINDOW_TYPES:
            raise ConfigError(f"window_type {self.window_type!r} is not one of {', '.join(WINDOW_TYPES)}")
        if self.window_shift < 1 or self.window_size < 2:
            raise ConfigError(
                f"frame_shift_ms={self.frame_shift_ms} and frame_length_ms={self.frame_length_ms} give "
                f"{self.window_shift} and {self.window_size} samples at {self.samp_freq} Hz; need >= 1 and >= 2"
            )
        if not 0.0 <= self.preemph_coeff <= 1.0:
            raise ConfigError(f"preemph_coeff must be in [0, 1], got {self.preemph_coeff}")
        if self.dither < 0:
            raise ConfigError(f"dither must be >= 0, got {self.dither}")

    @property
    def window_shift(self) -> int:
        """Frame shift in samples (Kaldi's WindowShift, float32 arithmetic)."""
        return int(np.float32(self.samp_freq) * np.float32(0.001) * np.float32(self.frame_shift_ms))

    @property
    def window_size(self) -> int:
        """Frame length in samples (Kaldi's WindowSize, float32 arithmetic)."""
        return int(np.float32(self.samp_freq) * np.float32(0.001) * np.float32(self.frame_length_ms))

    @property
    def padded_window_size(self) -> int:
        """FFT length: the frame length, rounded up to a power of two if asked."""
        n = self.window_size
        return 1 << (n - 1).bit_length() if self.round_to_power_of_two else n

    @property
    def frame_shift_seconds(self) -> float:
        return self.window_shift / float(self.samp_freq)


def feature_window(opts: FrameOptions) -> np.ndarray:
    """The analysis window (float32, length L), computed in float64 as Kaldi does."""
    n = opts.window_size
    i = np.arange(n, dtype=np.float64)
    a = 2.0 * math.pi / (n - 1)
    kind = opts.window_type
    if kind == "hanning":
        w = 0.5 - 0.5 * np.cos(a * i)
    elif kind == "sine":
        w = np.sin(0.5 * a * i)
    elif kind == "hamming":
        w = 0.54 - 0.46 * np.cos(a * i)
    elif kind == "povey":  # like hamming, but goes to zero at the edges
        w = (0.5 - 0.5 * np.cos(a * i)) ** 0.85
    elif kind == "rectangular":
        w = np.ones(n)
    else:  # blackman
        c = opts.blackman_coeff
        w = c - 0.5 * np.cos(a * i) + (0.5 - c) * np.cos(2.0 * a * i)
    return w.astype(np.float32)


@dataclass(frozen=True)
class FrameGeometry:
    """The integer facts of framing, computed once from FrameOptions (all in samples)."""

    length: int
    shift: int
    padded: int
    snip_edges: bool

    @classmethod
    def of(cls, opts: FrameOptions) -> "FrameGeometry":
        return cls(opts.window_size, opts.window_shift, opts.padded_window_size, opts.snip_edges)

    def num_frames(self, num_samples: int) -> int:
        """Number of frames Kaldi gives a signal of `num_samples` (flush=True)."""
        if self.snip_edges:
            return 0 if num_samples < self.length else 1 + (num_samples - self.length) // self.shift
        return (num_samples + self.shift // 2) // self.shift

    def first_sample(self, frame: int) -> int:
        """Index of the first sample of `frame` (negative near the start if snip_edges=False)."""
        if self.snip_edges:
            return frame * self.shift
        return frame * self.shift + self.shift // 2 - self.length // 2


def num_frames(num_samples: int, opts: FrameOptions) -> int:
    """Number of frames Kaldi gives a signal of `num_samples` (flush=True)."""
    return FrameGeometry.of(opts).num_frames(num_samples)


def num_frames_tensor(num_samples: torch.Tensor, opts: FrameOptions) -> torch.Tensor:
    """`num_frames` for a tensor of sample counts (any integer dtype, any device)."""
    shift, length = opts.window_shift, opts.window_size
    n = num_samples.long()
    if opts.snip_edges:
        return torch.where(n < length, torch.zeros_like(n), 1 + (n - length).clamp_min(0) // shift)
    return (n + shift // 2) // shift


def first_sample_of_frame(frame: int, opts: FrameOptions) -> int:
    """Index of the first sample of frame `frame` (negative near the start if snip_edges=False)."""
    return FrameGeometry.of(opts).first_sample(frame)


def reflect_index(index: torch.Tensor, n: int) -> torch.Tensor:
    """Map sample indices outside [0, n) into it by Kaldi's repeated reflection.

    Reflection with the edge sample repeated (-1 -> 0, n -> n - 1) is periodic with
    period 2n, so one modulo replaces Kaldi's loop of reflections.
    """
    m = torch.remainder(index, 2 * n)
    return torch.where(m < n, m, 2 * n - 1 - m)


def _reflected(x: torch.Tensor, a: int, z: int) -> torch.Tensor:
    """Samples a..z-1 of the 1-D signal x, all outside [0, n), by Kaldi's reflection."""
    n = x.shape[0]
    if z <= 0 and a >= -n:  # one reflection at the start: -1 -> 0, -2 -> 1, ...
        return x[-z : -a].flip(0)
    if a >= n and z <= 2 * n:  # one reflection at the end: n -> n-1, n+1 -> n-2, ...
        return x[2 * n - z : 2 * n - a].flip(0)
    return x.index_select(0, reflect_index(torch.arange(a, z, device=x.device), n))


def frame_chunk(
    x: torch.Tensor, first: int, count: int, geom: FrameGeometry, scale: float, buffer: torch.Tensor
) -> torch.Tensor:
    """Frames first..first+count-1 of the 1-D signal x, times `scale`: a (count, L) view.

    The samples those frames read (Kaldi's reflection at the edges included) are
    copied once into `buffer` (at least (count - 1) * shift + L long), and the frames
    are a strided view of it; a chunk at a time keeps the copy in cache.
    """
    n = x.shape[0]
    s0 = geom.first_sample(first)
    s1 = geom.first_sample(first + count - 1) + geom.length  # one past the last sample read
    seg = buffer[: s1 - s0]
    lo, hi = max(s0, 0), min(s1, n)  # samples copied directly
    if hi > lo:
        torch.mul(x[lo:hi], scale, out=seg[lo - s0 : hi - s0])
    if s0 < 0:  # reflected samples before sample 0
        z = min(0, s1)
        torch.mul(_reflected(x, s0, z), scale, out=seg[: z - s0])
    if s1 > n:  # reflected samples from sample n on
        a = max(n, s0)
        torch.mul(_reflected(x, a, s1), scale, out=seg[a - s0 :])
    return seg.unfold(0, geom.length, geom.shift)


def extract_frames(x: torch.Tensor, opts: FrameOptions) -> torch.Tensor:
    """All frames of the 1-D signal x as Kaldi extracts them (scaled): `(N,) -> (T, L)`."""
    geom = FrameGeometry.of(opts)
    count = geom.num_frames(x.shape[0])
    if count == 0:
        return x.new_zeros(0, geom.length)
    buffer = x.new_empty((count - 1) * geom.shift + geom.length)
    return frame_chunk(x, 0, count, geom, float(opts.waveform_scale), buffer).clone()
