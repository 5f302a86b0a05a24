"""Frozen activations of a trained model, cached per utterance for probing.

    taps = collect_taps(model, open_feature_source("feats/train/fbank"), utts, device="cpu")
    taps.values["bottleneck"]["spk01-0000"]     # (T', 64) float32 numpy
    taps.frame_shift["bottleneck"]              # 0.02

The model runs in eval mode under torch.no_grad (`SpeechAutoencoder.encode`: no
jitter, no sampling, no codebook updates), one utterance at a time, so padding
never leaks into a tap and no gradient can reach the model. The model's input
features themselves are kept as a fifth tap, "input": the baseline every learnt
representation is compared with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch

from speechunits.errors import SpeechUnitsError

log = logging.getLogger(__name__)

__all__ = ["TapSet", "collect_taps", "INPUT_TAP", "ALL_TAPS"]

INPUT_TAP = "input"
ALL_TAPS = (INPUT_TAP, "encoder", "projection", "bottleneck", "conditioning")


@dataclass
class TapSet:
    """values: tap -> utt -> (T, C) array; frame_shift: tap -> seconds; codes: utt -> (T',)
    code ids of a discrete bottleneck (else empty)."""

    values: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    frame_shift: dict[str, float] = field(default_factory=dict)
    codes: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        order = {t: i for i, t in enumerate(ALL_TAPS)}
        return sorted(self.values, key=lambda t: (order.get(t, len(order)), t))

    def dim(self, tap: str) -> int:
        first = next(iter(self.values[tap].values()))
        return int(first.shape[1])


@torch.no_grad()
def collect_taps(
    model,
    source,
    utts: Iterable[str],
    device: str | torch.device = "cpu",
    taps: Sequence[str] = ALL_TAPS,
    dtype=np.float32,
) -> TapSet:
    """Run `model.encode` on every utterance's features from `source` (a FeatureSource)
    and keep the requested taps as numpy arrays of `dtype`."""
    unknown = sorted(set(taps) - set(ALL_TAPS))
    if unknown:
        raise SpeechUnitsError(f"unknown tap(s) {', '.join(unknown)}; known: {', '.join(ALL_TAPS)}")
    cfg = model.cfg
    in_shift = source.frame_shift if source.frame_shift is not None else cfg.input_frame_shift
    if abs(in_shift - cfg.input_frame_shift) > 1e-9:
        raise SpeechUnitsError(
            f"the features have frame shift {in_shift:g} s but the model was trained on {cfg.input_frame_shift:g} s"
        )
    keep_input = INPUT_TAP in taps
    if keep_input and cfg.input_dim == 1:
        log.warning("waveform input: the 'input' tap (one sample per frame) is not probed")
        keep_input = False
    model_taps = [t for t in taps if t != INPUT_TAP]
    out = TapSet()
    if keep_input:
        out.values[INPUT_TAP], out.frame_shift[INPUT_TAP] = {}, float(in_shift)
    for t in model_taps:
        out.values[t], out.frame_shift[t] = {}, float(model.frame_shift)
    was_training = model.training
    model.eval()
    try:
        for utt in utts:
            feats = np.asarray(source.load(utt), dtype=np.float32)
            if feats.ndim == 1:
                feats = feats[:, None]
            if feats.shape[1] != cfg.input_dim:
                raise SpeechUnitsError(
                    f"utterance {utt}: features have {feats.shape[1]} dims, the model expects {cfg.input_dim}"
                )
            if keep_input:
                out.values[INPUT_TAP][utt] = feats.astype(dtype, copy=False)
            x = torch.from_numpy(feats)[None].to(device)
            enc = model.encode(x)
            n = int(enc.lengths[0])
            for t in model_taps:
                out.values[t][utt] = enc.taps[t].values[0, :n].float().cpu().numpy().astype(dtype, copy=False)
            if enc.codes is not None:
                out.codes[utt] = enc.codes[0, :n].cpu().numpy().astype(np.int64)
    finally:
        model.train(was_training)
    return out
