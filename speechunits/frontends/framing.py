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

For speed, a whole batch is laid out once as one flat, padded 1-D signal in which
every utterance's frames are a contiguous run of a single strided view
(`FlatFrames`); fbank and MFCC then process that view in cache-sized chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

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
            raise ValueError(f"window_type {self.window_type!r} is not one of {', '.join(WINDOW_TYPES)}")
        if self.window_shift < 1 or self.window_size < 2:
            raise ValueError(
                f"frame_shift_ms={self.frame_shift_ms} and frame_length_ms={self.frame_length_ms} give "
                f"{self.window_shift} and {self.window_size} samples at {self.samp_freq} Hz; need >= 1 and >= 2"
            )
        if not 0.0 <= self.preemph_coeff <= 1.0:
            raise ValueError(f"preemph_coeff must be in [0, 1], got {self.preemph_coeff}")
        if self.dither < 0:
            raise ValueError(f"dither must be >= 0, got {self.dither}")

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


def num_frames(num_samples: int, opts: FrameOptions) -> int:
    """Number of frames Kaldi gives a signal of `num_samples` (flush=True)."""
    shift, length = opts.window_shift, opts.window_size
    if opts.snip_edges:
        return 0 if num_samples < length else 1 + (num_samples - length) // shift
    return (num_samples + shift // 2) // shift


def num_frames_tensor(num_samples: torch.Tensor, opts: FrameOptions) -> torch.Tensor:
    """`num_frames` for a tensor of sample counts (any integer dtype, any device)."""
    shift, length = opts.window_shift, opts.window_size
    n = num_samples.long()
    if opts.snip_edges:
        return torch.where(n < length, torch.zeros_like(n), 1 + (n - length).clamp_min(0) // shift)
    return (n + shift // 2) // shift


def first_sample_of_frame(frame: int, opts: FrameOptions) -> int:
    """Index of the first sample of frame `frame` (negative near the start if snip_edges=False)."""
    shift = opts.window_shift
    if opts.snip_edges:
        return frame * shift
    return frame * shift + shift // 2 - opts.window_size // 2


def reflect_index(index: torch.Tensor, n: int) -> torch.Tensor:
    """Map sample indices outside [0, n) into it by Kaldi's repeated reflection.

    Reflection with the edge sample repeated (-1 -> 0, n -> n - 1) is periodic with
    period 2n, so one modulo replaces Kaldi's loop of reflections.
    """
    m = torch.remainder(index, 2 * n)
    return torch.where(m < n, m, 2 * n - 1 - m)


@dataclass
class FlatFrames:
    """A batch laid out for framing: `frames()` is one strided (K, L) view.

    Utterance b's frames are rows `offsets[b] : offsets[b] + counts[b]` of that view;
    rows between utterances are filler and are discarded.
    """

    signal: torch.Tensor  # (S_total,) float32, scaled, edges reflected
    offsets: list[int]  # first row of each utterance
    counts: list[int]  # frames of each utterance
    frame_length: int
    frame_shift: int

    @property
    def num_rows(self) -> int:
        """Rows of the strided view that must be computed (through the last utterance's frames)."""
        return self.offsets[-1] + self.counts[-1] if self.counts else 0

    def frames(self) -> torch.Tensor:
        """(K, L) strided view of the flat signal: row k starts at sample k * shift."""
        return self.signal.unfold(0, self.frame_length, self.frame_shift)


def flatten_for_framing(
    waveform: torch.Tensor, lengths: list[int], opts: FrameOptions
) -> FlatFrames:
    """Lay out a padded batch `waveform: (B, N)` (valid samples `lengths`) as `FlatFrames`.

    Each utterance gets a segment holding exactly the samples its frames read, from
    the first sample of frame 0 to the last sample of its last frame, with Kaldi's
    edge reflection; segments start at multiples of the shift, so a single strided
    view frames them all. Samples are multiplied by `opts.waveform_scale` here.
    """
    length, shift = opts.window_size, opts.window_shift
    start = first_sample_of_frame(0, opts)
    counts = [num_frames(n, opts) for n in lengths]
    offsets, total_rows = [], 0
    for t in counts:
        offsets.append(total_rows)
        seg = (t - 1) * shift + length if t > 0 else 0
        total_rows += -(-seg // shift)
    # room for the last frame of the last row of the strided view; filler is zeroed
    signal = waveform.new_empty(total_rows * shift + length)
    scale = float(opts.waveform_scale)
    filled = 0
    for b, (n, t) in enumerate(zip(lengths, counts)):
        if t == 0:
            continue
        base = offsets[b] * shift  # flat position of sample `start` of utterance b
        seg = (t - 1) * shift + length
        signal[filled:base].zero_()
        filled = base + seg
        lo, hi = max(start, 0), min(start + seg, n)  # directly copied samples
        if hi > lo:
            torch.mul(waveform[b, lo:hi], scale, out=signal[base + lo - start : base + hi - start])
        # the reflected samples: before sample 0, and from sample n on
        pieces = []
        if start < 0:
            pieces.append((start, min(0, start + seg)))
        if start + seg > n:
            pieces.append((max(n, start), start + seg))
        for a, z in pieces:
            idx = reflect_index(torch.arange(a, z, device=waveform.device), n)
            signal[base + a - start : base + z - start] = waveform[b].index_select(0, idx) * scale
    signal[filled:].zero_()
    return FlatFrames(signal, offsets, counts, length, shift)
