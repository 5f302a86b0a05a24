"""The part fbank and MFCC share: frames -> Kaldi's per-frame processing -> power spectrum.

Per frame, in Kaldi's order (feature-window.cc ProcessWindow, then the computer):
dither (Gaussian noise per frame), remove the DC offset, log energy of that frame
("raw" energy), pre-emphasis x[i] -= c*x[i-1] (x[0] -= c*x[0]), window, zero-pad to
the FFT length, real FFT, |X|^2 (or |X|). Subclasses turn the power spectrum into
features (`_frame_features`).

Why it is fast: frames are a strided view of one flat signal (no copy), processed
in chunks of ~512 frames so every intermediate stays in the CPU cache, with
preallocated buffers and `out=` writes; the DC offset is removed after
pre-emphasis (both are linear; pre-emphasis maps a constant c to (1 - coeff)*c),
which saves a pass when no raw energy is needed.

Precision: everything is float32, including the FFT (kaldi-native-fbank does its
FFT in float64). Values agree with it to ~1e-5, except in mel bins whose energy is
~1e-6 or less of the frame's: there float32 rounding noise dominates both (ours a
little more), and differences reach ~1e-3 (1e-11 of the frame energy: ~0.1).
"""

from __future__ import annotations

import numpy as np
import torch

from speechunits.frontends.base import Features, FrontEnd, as_batch
from speechunits.frontends.framing import (
    FrameOptions,
    feature_window,
    flatten_for_framing,
    num_frames,
    num_frames_tensor,
)

FLOAT_EPS = float(np.finfo(np.float32).eps)  # Kaldi floors energies at FLT_EPSILON before log


class KaldiSpectralFrontEnd(FrontEnd):
    """Base of the Kaldi-compatible front ends: framing and power spectra, chunked.

    need_energy: compute the log frame energy; raw_energy: before pre-emphasis and
    window (else after). Subclasses implement `_frame_features`.
    """

    cpu_chunk_frames = 512  # frames per chunk on CPU: keeps the working set in cache
    device_chunk_frames = 32768  # on accelerators, large chunks are better

    def __init__(self, frame_opts: FrameOptions, need_energy: bool, raw_energy: bool):
        super().__init__()
        self.frame_opts = frame_opts
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
        return num_frames(int(num_samples), self.frame_opts)

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
        opts = self.frame_opts
        flat = flatten_for_framing(x, lens, opts)
        rows = flat.num_rows
        out = x.new_empty(rows, self.feature_dim)
        if rows:
            self._compute_rows(flat.frames(), rows, out, self._generator(x.device, generator))
        if len(lens) == 1:
            feats = out.unsqueeze(0)
        else:
            feats = x.new_zeros(len(lens), max(flat.counts), self.feature_dim)
            for b, (o, t) in enumerate(zip(flat.offsets, flat.counts)):
                feats[b, :t] = out[o : o + t]
        counts = torch.tensor(flat.counts, dtype=torch.long, device=x.device)
        return Features(feats, counts, self.frame_shift)

    def _compute_rows(
        self, frames: torch.Tensor, rows: int, out: torch.Tensor, generator: torch.Generator | None
    ) -> None:
        """frames: (K, L) strided view -> features of rows [0, rows) into out: (rows, D)."""
        opts = self.frame_opts
        length, n_fft = opts.window_size, opts.padded_window_size
        coeff, dither = float(opts.preemph_coeff), float(opts.dither)
        chunk = self.cpu_chunk_frames if frames.device.type == "cpu" else self.device_chunk_frames
        chunk = min(chunk, rows)
        raw_energy = self.need_energy and self.raw_energy
        # buffers reused by every chunk; columns L..n_fft of `padded` stay zero
        padded = frames.new_zeros(chunk, n_fft)
        spec = torch.empty(chunk, n_fft // 2 + 1, dtype=torch.complex64, device=frames.device)
        squares = frames.new_empty(chunk, n_fft // 2 + 1, 2)
        power = frames.new_empty(chunk, n_fft // 2 + 1)
        work = frames.new_empty(chunk, length) if (dither > 0 or (raw_energy and opts.remove_dc_offset)) else None
        noise = frames.new_empty(chunk, length) if dither > 0 else None
        for k in range(0, rows, chunk):
            c = min(chunk, rows - k)
            src = frames[k : k + c]
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
            self._frame_features(pw, log_energy, out[k : k + c])
