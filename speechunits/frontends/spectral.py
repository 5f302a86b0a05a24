"""The part fbank and MFCC share: frames -> Kaldi's per-frame processing -> power spectrum.

Per frame, in Kaldi's order (feature-window.cc ProcessWindow, then the computer):
dither (Gaussian noise per frame), remove the DC offset, log energy of that frame
("raw" energy), pre-emphasis x[i] -= c*x[i-1] (x[0] -= c*x[0]), window, zero-pad to
the FFT length, real FFT, |X|^2 (or |X|). Subclasses turn the power spectrum into
features (`_frame_features`).

Why it is fast: frames go in chunks of ~512, each a strided view of one small copy
of the samples it reads, so every intermediate stays in the CPU cache; buffers are
allocated once per thread and filled with `out=` writes; the DC offset is removed
after pre-emphasis (both are linear; pre-emphasis maps a constant m to (1 - c)*m),
which saves a pass when no raw energy is needed.

Precision: everything is float32, including the FFT (kaldi-native-fbank does its
FFT in float64). Log values agree with it to ~1e-5, except in mel bins far below
the frame's strongest ones, where float32 rounding noise dominates both: bins at
1e-6 of the frame energy differ by ~1e-3, bins at 1e-11 by up to ~0.1.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from speechunits.frontends.base import Features, FrontEnd, as_batch
from speechunits.frontends.framing import (
    FrameGeometry,
    FrameOptions,
    feature_window,
    frame_chunk,
    num_frames_tensor,
)

FLOAT_EPS = float(np.finfo(np.float32).eps)  # Kaldi floors energies at FLT_EPSILON before log


class _Buffers:
    """Per-chunk work buffers; the columns L..n_fft of `padded` are never written (stay zero)."""

    def __init__(self, device: torch.device, chunk: int, geom: FrameGeometry):
        bins = geom.padded // 2 + 1
        self.samples = torch.empty((chunk - 1) * geom.shift + geom.length, device=device)
        self.padded = torch.zeros(chunk, geom.padded, device=device)
        self.spec = torch.empty(chunk, bins, dtype=torch.complex64, device=device)
        self.squares = torch.empty(chunk, bins, 2, device=device)
        self.power = torch.empty(chunk, bins, device=device)
        self.work = torch.empty(chunk, geom.length, device=device)


_THREAD_BUFFERS = threading.local()


def _workspace(device: torch.device, chunk: int, geom: FrameGeometry) -> _Buffers:
    """This thread's buffers for this geometry, kept between calls.

    Allocating a few MB afresh on every call costs more than computing a short
    utterance (the allocator hands large blocks back to the OS, so each call pays
    page faults); one set per thread keeps concurrent callers apart.
    """
    cache = getattr(_THREAD_BUFFERS, "cache", None)
    if cache is None:
        cache = _THREAD_BUFFERS.cache = {}
    key = (str(device), chunk, geom.length, geom.shift, geom.padded)
    if key not in cache:
        cache[key] = _Buffers(device, chunk, geom)
    return cache[key]


class KaldiSpectralFrontEnd(FrontEnd):
    """Base of the Kaldi-compatible front ends: framing and power spectra, chunked.

    need_energy: compute the log frame energy; raw_energy: before pre-emphasis and
    window (else after). Subclasses implement `_frame_features`.
    """

    cpu_chunk_frames = 512  # frames per chunk on CPU: keeps the working set in cache
    device_chunk_frames = 8192  # on accelerators, large chunks are better

    def __init__(self, frame_opts: FrameOptions, need_energy: bool, raw_energy: bool):
        super().__init__()
        self.frame_opts = frame_opts
        self.geometry = FrameGeometry.of(frame_opts)
        self.need_energy = need_energy
        self.raw_energy = raw_energy
        self.register_buffer("window", torch.from_numpy(feature_window(frame_opts)), persistent=False)
        self._generators: dict[str, torch.Generator] = {}

    # -- what every front end exposes ---------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return int(self.frame_opts.samp_freq)

    @property
    def frame_shift(self) -> float:
        return self.frame_opts.frame_shift_seconds

    def num_frames(self, num_samples):
        """Frames for `num_samples` samples (an int, or a tensor of counts)."""
        if isinstance(num_samples, torch.Tensor):
            return num_frames_tensor(num_samples, self.frame_opts)
        return self.geometry.num_frames(int(num_samples))

    # -- subclass hook ------------------------------------------------------------------
    def _frame_features(self, power: torch.Tensor, log_energy: torch.Tensor | None, out: torch.Tensor) -> None:
        """power: (C, n_fft/2 + 1), log_energy: (C,) or None -> write (C, D) features into `out`."""
        raise NotImplementedError

    # -- the computation ----------------------------------------------------------------
    def _generator(self, device: torch.device, generator: torch.Generator | None) -> torch.Generator | None:
        if generator is not None or self.frame_opts.seed is None:
            return generator
        key = str(device)
        if key not in self._generators:
            gen = torch.Generator(device=device)
            gen.manual_seed(int(self.frame_opts.seed))
            self._generators[key] = gen
        return self._generators[key]

    @torch.no_grad()
    def forward(
        self,
        waveform: torch.Tensor,
        lengths: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Features:
        """waveform: (B, N) float in [-1, 1), lengths: (B,) valid samples -> Features (B, T, D).

        Each utterance gets exactly the frames of its own length (padding is never
        read). With dither, noise comes from `generator`, else from a generator
        seeded with `frame_opts.seed` (kept across calls), else torch's global one.
        Not differentiable (computed under no_grad).
        """
        x, lens = as_batch(waveform, lengths)
        counts = [self.geometry.num_frames(n) for n in lens]
        longest = max(counts, default=0)
        if len(lens) == 1:
            feats = x.new_empty(1, longest, self.feature_dim)
        else:  # padding frames must read as zeros
            feats = x.new_zeros(len(lens), longest, self.feature_dim)
        if longest:
            self._compute(x, lens, counts, feats, self._generator(x.device, generator))
        return Features(feats, torch.tensor(counts, dtype=torch.long, device=x.device), self.frame_shift)

    def _compute(
        self,
        x: torch.Tensor,
        lens: list[int],
        counts: list[int],
        feats: torch.Tensor,
        generator: torch.Generator | None,
    ) -> None:
        """x: (B, N) samples -> features of every frame into feats: (B, T, D), chunk by chunk."""
        opts, geom = self.frame_opts, self.geometry
        length = geom.length
        coeff, dither, scale = float(opts.preemph_coeff), float(opts.dither), float(opts.waveform_scale)
        chunk = self.cpu_chunk_frames if x.device.type == "cpu" else self.device_chunk_frames
        raw_energy = self.need_energy and self.raw_energy
        ws = _workspace(x.device, chunk, geom)
        samples, padded, spec, squares, power, work = ws.samples, ws.padded, ws.spec, ws.squares, ws.power, ws.work
        noise = x.new_empty(chunk, length) if dither > 0 else None
        for b, (n, count) in enumerate(zip(lens, counts)):
            for k in range(0, count, chunk):
                c = min(chunk, count - k)
                src = frame_chunk(x[b, :n], k, c, geom, scale, samples)
                if dither > 0:
                    src = work[:c].copy_(src)
                    torch.randn(c, length, generator=generator, out=noise[:c])
                    src.add_(noise[:c], alpha=dither)
                # (sum, then divide: Tensor.mean copies a strided view first)
                mean = src.sum(dim=1).div_(length) if opts.remove_dc_offset else None
                log_energy = None
                if raw_energy:
                    if mean is not None:  # energy of the DC-free frame: subtract now
                        src = torch.sub(src, mean.unsqueeze(1), out=work[:c])
                        mean = None
                    log_energy = torch.linalg.vector_norm(src, dim=1).square_().clamp_min_(FLOAT_EPS).log_()
                y = padded[:c, :length]
                if coeff != 0.0:
                    torch.sub(src[:, 1:], src[:, :-1], alpha=coeff, out=y[:, 1:])
                    torch.mul(src[:, 0], 1.0 - coeff, out=y[:, 0])
                else:
                    y.copy_(src)
                if mean is not None:
                    y.sub_(mean.mul_(1.0 - coeff).unsqueeze(1))
                y.mul_(self.window)
                if self.need_energy and not self.raw_energy:
                    log_energy = torch.linalg.vector_norm(y, dim=1).square_().clamp_min_(FLOAT_EPS).log_()
                torch.fft.rfft(padded[:c], out=spec[:c])
                ri = torch.view_as_real(spec[:c])
                sq = torch.mul(ri, ri, out=squares[:c])
                pw = torch.add(sq[:, :, 0], sq[:, :, 1], out=power[:c])
                self._frame_features(pw, log_energy, feats[b, k : k + c])
