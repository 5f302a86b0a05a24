"""Audio -> units: the trained model's encoder and bottleneck applied to new audio.

    ex = UnitExtractor.from_checkpoint("exp/vqvae/best.pt", device="cpu")
    u = ex(samples, sample_rate=22050)     # any rate: resampled to the model's
    u.units, u.durations, u.starts         # codes with repeats removed, frames, seconds
    u.frame_codes, u.dense, u.frame_shift  # per latent frame; the tap's values (T', C)
    many = ex.extract_batch([x1, x2, x3])  # padded batches (+ lengths) for speed

The input features are recomputed from the waveform exactly as for training (the
FeaturePipelineConfig the run recorded: front end, CMVN, deltas), then the model's
inference path (`SpeechAutoencoder.encode`: no jitter, no sampling, no codebook
updates) gives the four taps and the codes. `tap` chooses which tap `dense` holds.

Units. For a VQ bottleneck the frame codes are run-length coded: `units` are the
codes with consecutive repeats removed and `durations` the latent frames each
lasts. For the piecewise-constant bottleneck ("pcvq") the frame codes are constant
over the segments its inference DP chose, and the DP never puts two segments with
the same code side by side, so the runs are exactly the DP's segments: units and
durations are the segments' codes and lengths. `dedup=False` keeps one unit per
frame (durations all 1). Continuous bottlenecks (ae, vae) have no units of their
own: only `dense` is set, unless a k-means model over the tap is given (`kmeans=`,
`speechunits extract --kmeans KM.pt`, fitted by `speechunits kmeans fit` on the
tap's dense features): then the frame codes are each frame's nearest centroid,
run-length coded like VQ codes. This is how the masked-prediction model
(pipelines/masked.yaml) gives units, and it works on any model's tap.

Read-outs of the tap. `readout=` (a centroid regression, `speechunits kmeans
regress`) maps each frame before anything else; `deltas=B` appends to `dense` each
frame's deltas, scaled per utterance to B times the frames' RMS (the dynamic
read-out: on speechocean762 it lowers the masked models' across-speaker ABX by
0.8-2 points). The units are computed before the deltas are appended.

Per-speaker CMVN (input features with cmvn=speaker) needs the statistics of all of
a speaker's utterances, which a lone waveform cannot give: pass the speaker's
statistics (`speaker_stats(waveforms)`, or `cmvn_stats=` per call; the extract job
computes them per speaker of a data dir like `speechunits features`). Without
them the utterance is normalised with its own statistics (per-utterance CMVN) and
a warning is logged once: the units then differ somewhat from what the model saw
in training, most for short utterances.

Long audio is encoded in chunks with the encoder's receptive field as context
(speechunits/units/chunking.py), so the result equals whole-file encoding while
the encoder's activations stay bounded; the bottleneck (the pcvq DP over the whole
utterance) and the conditioning tap then run on the whole latent sequence.
Batches are padded with lengths; the encoder zeroes padding before every layer,
so a batched utterance gets the same outputs as one encoded alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from speechunits.errors import SpeechUnitsError
from speechunits.frontends.base import Features
from speechunits.frontends.cmvn import CmvnStats
from speechunits.frontends.deltas import balanced_deltas, check_balance
from speechunits.frontends.pipeline import FeaturePipeline, FeaturePipelineConfig
from speechunits.models.autoencoder import TAP_NAMES, SpeechAutoencoder
from speechunits.units.chunking import encode_chunked
from speechunits.units.formats import UnitSequence, run_length, unit_starts
from speechunits.units.kmeans.regression import check_pairing

log = logging.getLogger(__name__)

DELTA_WINDOW = 2  # frames on either side of the dense features' deltas (Kaldi's add-deltas default)

__all__ = ["Units", "UnitExtractor", "TAP_NAMES"]


@dataclass
class Units:
    """One utterance's extraction result.

    units:       (U,) int64 codes, consecutive repeats removed (frame codes with dedup=False);
                 None for a continuous bottleneck.
    durations:   (U,) int64 latent frames per unit (ones with dedup=False).
    starts:      (U,) float64 start time of each unit in seconds (cumulative durations * shift).
    frame_codes: (T',) int64 code of every latent frame (None when continuous).
    dense:       (T', C) float32 values of the chosen tap at the latent rate.
    frame_shift: seconds per latent frame; frame i covers [i, i + 1) * frame_shift.
    tap:         which tap `dense` holds.
    """

    units: np.ndarray | None
    durations: np.ndarray | None
    starts: np.ndarray | None
    frame_codes: np.ndarray | None
    dense: np.ndarray
    frame_shift: float
    tap: str

    @property
    def num_frames(self) -> int:
        return int(self.dense.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered by the latent frames."""
        return self.num_frames * self.frame_shift

    def sequence(self, utt: str) -> UnitSequence | None:
        """As a UnitSequence (for the unit files), or None when continuous."""
        if self.units is None:
            return None
        return UnitSequence(utt, self.units, self.durations, self.frame_shift)


def make_units(dense: np.ndarray, codes: np.ndarray | None, frame_shift: float, tap: str, dedup: bool) -> Units:
    """Assemble a Units record from a tap's values and the frame codes."""
    if codes is None:
        return Units(None, None, None, None, dense, frame_shift, tap)
    codes = np.asarray(codes, dtype=np.int64)
    if dedup:
        units, durations = run_length(codes)
    else:
        units, durations = codes.copy(), np.ones_like(codes)
    return Units(units, durations, unit_starts(durations, frame_shift), codes, dense, frame_shift, tap)


def _as_samples(waveform, sample_rate: int | None) -> tuple[Tensor, int | None]:
    """numpy / tensor / Audio -> (N,) float32 tensor and its rate (None: the model's)."""
    rate = sample_rate
    if hasattr(waveform, "samples") and hasattr(waveform, "sample_rate"):  # speechunits.audio.Audio
        rate = waveform.sample_rate if sample_rate is None else sample_rate
        waveform = waveform.samples
    if isinstance(waveform, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(waveform))
    else:
        x = torch.as_tensor(waveform)
    if x.dim() == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.dim() != 1:
        raise SpeechUnitsError(f"expected a mono waveform (N,), got shape {tuple(x.shape)} (mix it down first)")
    if not x.is_floating_point():
        raise SpeechUnitsError(f"expected float samples in [-1, 1), got {x.dtype}")
    return x.float(), rate


class UnitExtractor:
    """Units, durations and dense features for new audio; see the module docstring.

    model: a SpeechAutoencoder (its inference path is used whatever its mode);
    input_features: how its input features are computed from audio;
    tap: which tap `dense` holds (encoder | projection | bottleneck | conditioning);
    device: where to run (default: the model's device; the model is moved there);
    dedup: remove consecutive repeats from `units` (default for every call);
    chunk_seconds: longer utterances are encoded in chunks of this much audio;
    batch_seconds: padded audio per batched forward pass (utterances x longest);
        default 30 s on CPU (bigger batches measured slower there: a 10 s utterance
        is already a 1000-frame matrix product, and big activations leave the cache),
        300 s on accelerators;
    max_batch: utterances per batched forward pass;
    kmeans: a k-means model (speechunits.units.kmeans.KMeans) over the tap's values:
        units are its nearest centroids instead of the bottleneck's codes;
    kmeans_penalty: with `kmeans`, duration-penalised units (KMeans.predict's penalty;
        0: the nearest centroid of each frame);
    readout: a centroid regression (speechunits.units.kmeans.regression.CentroidRegression,
        `speechunits kmeans regress`) applied to the tap's frames: `dense` holds the mapped
        frames, and `kmeans` units are those of the mapped frames;
    deltas: when > 0, `dense` holds each (mapped) frame with its order-1 deltas appended,
        scaled per utterance so that their RMS is `deltas` times the frames'
        (speechunits.frontends.deltas.balanced_deltas; (T, D) -> (T, 2 D)). The units
        are those of the frames without them.
    """

    def __init__(
        self,
        model: SpeechAutoencoder,
        input_features: FeaturePipelineConfig | None,
        tap: str = "bottleneck",
        device: str | torch.device | None = None,
        *,
        dedup: bool = True,
        chunk_seconds: float = 30.0,
        batch_seconds: float | None = None,
        max_batch: int = 64,
        kmeans=None,
        kmeans_penalty: float = 0.0,
        readout=None,
        deltas: float = 0.0,
    ):
        if tap not in TAP_NAMES:
            raise SpeechUnitsError(f"unknown tap {tap!r}; choose one of {', '.join(TAP_NAMES)}")
        if input_features is None:
            raise SpeechUnitsError(
                "the model's input features are unknown (the checkpoint does not record data.input_features): "
                "pass them (API: input_features=FeaturePipelineConfig(...); CLI: --input-features TYPE)"
            )
        if isinstance(input_features, dict):
            from speechunits.config import from_dict

            input_features = from_dict(FeaturePipelineConfig, input_features, where="input_features")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device)
        self.input_features = input_features
        self.pipeline = FeaturePipeline(input_features).to(self.device)
        self.tap = tap
        self.dedup = dedup
        cfg = model.cfg
        if self.pipeline.feature_dim != cfg.input_dim:
            raise SpeechUnitsError(
                f"input features give {self.pipeline.feature_dim}-dim frames, the model expects {cfg.input_dim}"
            )
        if abs(self.pipeline.frame_shift - cfg.input_frame_shift) > 1e-9:
            raise SpeechUnitsError(
                f"input features have frame shift {self.pipeline.frame_shift:g} s, the model expects "
                f"{cfg.input_frame_shift:g} s"
            )
        self.chunk_outputs = max(1, int(round(chunk_seconds / model.frame_shift)))
        if batch_seconds is None:  # see the class docstring
            batch_seconds = 30.0 if self.device.type == "cpu" else 300.0
        self.batch_inputs = max(1, int(round(batch_seconds / cfg.input_frame_shift)))
        self.max_batch = max(1, int(max_batch))
        self.kmeans = None
        if kmeans is not None:
            width = self.tap_dim
            if kmeans.frame_dim != width:
                raise SpeechUnitsError(
                    f"the k-means model's centroids take {kmeans.frame_dim}-dim frames but the {tap} tap gives "
                    f"{width}-dim frames: "
                    f"fit it on this model's {tap} features (speechunits extract --tap {tap}, then kmeans fit on dense/)"
                )
            self.kmeans = kmeans.to(self.device)
            self.kmeans.segment_cost(kmeans_penalty)  # a bad penalty fails here, before any audio
        elif kmeans_penalty:
            raise SpeechUnitsError("a duration penalty applies to k-means units: give a k-means model too (--kmeans)")
        self.kmeans_penalty = float(kmeans_penalty)
        if readout is not None and readout.dim != self.tap_dim:
            raise SpeechUnitsError(
                f"the read-out maps {readout.dim}-dim frames but the {tap} tap gives {self.tap_dim}-dim frames: "
                f"fit it (speechunits kmeans regress) on this model's {tap} features"
            )
        if self.kmeans is not None:
            check_pairing(self.kmeans, None if readout is None else readout.describe())
        self.readout = readout
        self.deltas = check_balance(deltas, "deltas (the balance of the dense features' deltas)")
        self.step: int | None = None  # training step, when loaded from a checkpoint
        self.experiment_config: dict | None = None  # the run's experiment config (plain data), from a checkpoint
        self._warned_cmvn = False

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        tap: str = "bottleneck",
        input_features: FeaturePipelineConfig | None = None,
        **options,
    ) -> "UnitExtractor":
        """Load a checkpoint (or an experiment dir: best.pt, else last.pt). `input_features`
        overrides (or, for runs that did not record them, supplies) the input features."""
        from speechunits.models.checkpoint import load_model

        bundle = load_model(path, device=device)
        ex = cls(bundle.model, input_features or bundle.input_features, tap=tap, device=device, **options)
        ex.step = bundle.step
        ex.experiment_config = bundle.config
        return ex

    # ------------------------------------------------------------------ properties
    @property
    def frame_shift(self) -> float:
        """Seconds per latent frame (all taps)."""
        return self.model.frame_shift

    @property
    def sample_rate(self) -> int:
        """The rate the input features need; other rates are resampled."""
        return self.pipeline.sample_rate

    @property
    def tap_dim(self) -> int:
        """Channels of the chosen tap."""
        model = self.model
        if self.tap == "encoder":
            return model.encoder.out_dim
        if self.tap == "conditioning":
            return model.cfg.conditioning.channels
        return model.bottleneck.dim

    @property
    def discrete(self) -> bool:
        """True when units are written: a discrete bottleneck, or a k-means model over the tap."""
        return self.model.discrete or self.kmeans is not None

    @property
    def needs_speaker_stats(self) -> bool:
        return self.pipeline.needs_speaker_pass

    def describe(self) -> dict:
        """What to record beside extracted features (meta.json)."""
        from speechunits.config import to_dict

        return {
            "tap": self.tap,
            "frame_shift": self.frame_shift,
            "dedup": self.dedup,
            "bottleneck": self.model.cfg.bottleneck,
            "discrete": self.discrete,
            "kmeans": None if self.kmeans is None else {"k": self.kmeans.k, "id": self.kmeans.model_id(),
                                                        **({"penalty": self.kmeans_penalty} if self.kmeans_penalty else {})},
            "input_features": to_dict(self.input_features),
            "step": self.step,
            **({} if self.readout is None else {"readout": self.readout.describe()}),  # absent without one
            **({"dense_deltas": {"balance": self.deltas, "window": DELTA_WINDOW}} if self.deltas else {}),
        }

    # ------------------------------------------------------------------ features
    def samples(self, waveform, sample_rate: int | None = None) -> Tensor:
        """(N,) float32 samples at the model's rate (resampled with soxr when needed)."""
        x, rate = _as_samples(waveform, sample_rate)
        if rate is not None and int(rate) != self.sample_rate:
            if x.device.type == "cpu":
                from speechunits.resample import resample

                x = torch.from_numpy(resample(x.numpy(), int(rate), self.sample_rate))
            else:
                from speechunits.resample import resample_torch

                x = resample_torch(x, int(rate), self.sample_rate)
        return x.to(self.device)

    @torch.no_grad()
    def static_features(self, waveform, sample_rate: int | None = None) -> Tensor:
        """The front end alone (T, D0): what per-speaker CMVN statistics are accumulated over."""
        return self.pipeline.compute_static(self.samples(waveform, sample_rate))

    def speaker_stats(self, waveforms: Sequence, sample_rates: Sequence[int | None] | None = None) -> CmvnStats:
        """CMVN statistics over one speaker's utterances (for cmvn=speaker)."""
        stats = None
        for i, w in enumerate(waveforms):
            s = self.static_features(w, sample_rates[i] if sample_rates else None)
            stats = stats or CmvnStats(s.shape[1])
            stats.accumulate(s)
        if stats is None:
            raise SpeechUnitsError("speaker_stats: no utterances")
        return stats

    @torch.no_grad()
    def features(self, waveform, sample_rate: int | None = None, cmvn_stats: CmvnStats | None = None) -> Tensor:
        """The model's input features (T, F) for one waveform (see the module docstring on CMVN)."""
        x = self.samples(waveform, sample_rate)
        if not self.pipeline.needs_speaker_pass:
            if cmvn_stats is not None:
                raise SpeechUnitsError(
                    f"cmvn_stats given, but the model's input features use cmvn={self.input_features.cmvn}"
                )
            feats = self.pipeline.compute(x)
        else:
            static = self.pipeline.compute_static(x)
            if cmvn_stats is None:
                if not self._warned_cmvn:
                    log.warning(
                        "the model's input features use per-speaker CMVN, but no speaker statistics were given: "
                        "normalising each utterance with its own statistics (per-utterance CMVN)"
                    )
                    self._warned_cmvn = True
                cmvn_stats = CmvnStats(static.shape[1]).accumulate(static)
            one = Features(static.unsqueeze(0), torch.tensor([static.shape[0]], device=static.device),
                           self.pipeline.frame_shift)
            feats = self.pipeline.finish(one, cmvn_stats).feats[0]
        if not torch.isfinite(feats).all():
            raise SpeechUnitsError("input features contain NaN or Inf")
        return feats

    # ------------------------------------------------------------------ extraction
    def __call__(
        self,
        waveform,
        sample_rate: int | None = None,
        *,
        cmvn_stats: CmvnStats | None = None,
        dedup: bool | None = None,
    ) -> Units:
        """One waveform (numpy, tensor or Audio; `sample_rate` defaults to the model's) -> Units."""
        return self.extract_batch([waveform], [sample_rate], cmvn_stats=[cmvn_stats], dedup=dedup)[0]

    def extract_batch(
        self,
        waveforms: Sequence,
        sample_rates: Sequence[int | None] | None = None,
        *,
        cmvn_stats: Sequence[CmvnStats | None] | None = None,
        dedup: bool | None = None,
    ) -> list[Units]:
        """Many waveforms -> Units each, in order, encoded in padded batches."""
        n = len(waveforms)
        rates = list(sample_rates) if sample_rates is not None else [None] * n
        stats = list(cmvn_stats) if cmvn_stats is not None else [None] * n
        feats = [self.features(w, r, s) for w, r, s in zip(waveforms, rates, stats)]
        return self.encode_features(feats, dedup=dedup)

    @torch.no_grad()
    def encode_features(self, feats: Sequence[Tensor], dedup: bool | None = None) -> list[Units]:
        """Input features, one (T, F) tensor per utterance -> Units each, in order.

        Utterances longer than the chunk size are encoded alone, chunk by chunk; the
        rest in batches of similar length (at most `max_batch` utterances and about
        `batch_seconds` of padded audio each)."""
        dedup = self.dedup if dedup is None else dedup
        results: list[Units | None] = [None] * len(feats)
        R = self.model.encoder.total_stride
        chunk_inputs = self.chunk_outputs * R
        long = [i for i, f in enumerate(feats) if f.shape[0] > chunk_inputs]
        short = sorted((i for i, f in enumerate(feats) if f.shape[0] <= chunk_inputs), key=lambda i: -feats[i].shape[0])
        for i in long:
            results[i] = self._units(*self._encode_long(feats[i]), dedup)
        start = 0
        while start < len(short):
            longest = feats[short[start]].shape[0]
            size = max(1, min(self.max_batch, self.batch_inputs // max(1, longest)))
            group = short[start : start + size]
            for i, (dense, codes) in zip(group, self._encode_batch([feats[i] for i in group])):
                results[i] = self._units(dense, codes, dedup)
            start += size
        return results  # type: ignore[return-value]

    def _units(self, dense: np.ndarray, codes: np.ndarray | None, dedup: bool) -> Units:
        """One utterance's Units from its tap frames (T, D) and bottleneck codes: the read-out
        applied first, when there is one, and the deltas appended after the codes."""
        if self.readout is not None and dense.shape[0]:
            dense = self.readout(dense)
        codes = self._codes(dense, codes)
        if self.deltas:
            dense = balanced_deltas(dense, self.deltas, DELTA_WINDOW)
        return make_units(dense, codes, self.frame_shift, self.tap, dedup)

    def _codes(self, dense: np.ndarray, codes: np.ndarray | None) -> np.ndarray | None:
        """The frame codes of one utterance: the k-means model's over the tap when there is one."""
        if self.kmeans is None:
            return codes
        if dense.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        return self.kmeans.predict(dense, penalty=self.kmeans_penalty)

    def _encode_batch(self, feats: list[Tensor]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long, device=self.device)
        batch = torch.nn.utils.rnn.pad_sequence([f.to(self.device) for f in feats], batch_first=True)
        out = self.model.encode(batch, lengths)
        tap = out.taps[self.tap]
        values = tap.values.float().cpu().numpy()
        codes = out.codes.cpu().numpy() if out.codes is not None else None
        res = []
        for b, n in enumerate(out.lengths.tolist()):
            res.append((values[b, :n].copy(), codes[b, :n].copy() if codes is not None else None))
        return res

    def _encode_long(self, feats: Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Chunked encoder, then the bottleneck and conditioning over the whole utterance
        (what `SpeechAutoencoder.encode` does after the encoder)."""
        model = self.model
        enc = encode_chunked(model.encoder, feats.to(self.device), self.chunk_outputs).unsqueeze(0)
        lengths = torch.tensor([enc.shape[1]], dtype=torch.long, device=self.device)
        if self.tap == "encoder" and not model.discrete:
            return enc[0].float().cpu().numpy(), None
        bn = model.bottleneck.quantize(enc, lengths)
        codes = bn.codes[0].cpu().numpy() if bn.codes is not None else None
        if self.tap == "encoder":
            values = enc
        elif self.tap == "projection":
            values = bn.projected
        elif self.tap == "bottleneck":
            values = bn.latents
        else:
            values = model.conditioning.local(bn.latents, lengths)
        return values[0].float().cpu().numpy(), codes
