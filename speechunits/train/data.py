"""Training data: random crops of (input features, reconstruction target, speaker).

    data = TrainingData.from_config(cfg.data, cfg.model, seed=cfg.train.seed)
    sampler = EpochSampler(len(data.train), batch_size=8, seed=0, rank=0, world_size=1)
    for plan in sampler.epoch(epoch):                # BatchPlan: utterance indices + crop draws
        batch = data.train.batch(plan)               # Batch: padded tensors + lengths

Alignment (docs/design.md section 4): input frame i covers [i s, (i+1) s). A crop of
input frames [a, b) is paired with target positions [a h, b h), where h is the
number of target positions per input frame: s x 16000 samples for the WaveNet
decoder (160 at 10 ms), s / s_target frames for the filterbank decoder (1 when
both are at 10 ms). The target is cut at its own end, so the last crop of an
utterance may be a little shorter in the target than b h (the model fits the
conditioning to the target length).

Crops are `crop_frames` input frames, a multiple of the encoder's total stride
(so every crop gives whole latent frames). An utterance shorter than the crop is
used whole and padded (lengths travel with the batch); one shorter than a single
latent frame is skipped and counted in `DataSummary`.

The sampler is DistributedSampler-like: each epoch is a seeded permutation of the
utterances, padded by wrapping around to a multiple of the number of processes,
and rank r takes positions r, r + W, ...; crop offsets are drawn from a generator
seeded by (seed, epoch, rank), all at the start of the epoch, so a run resumed in
the middle of an epoch sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from speechunits.audio import AudioConfig, AudioLoader
from speechunits.data.datadir import DataDir
from speechunits.data.featdir import FeatureDir, open_feature_source
from speechunits.errors import SpeechUnitsError

log = logging.getLogger(__name__)

__all__ = [
    "Batch",
    "BatchPlan",
    "CropSet",
    "DataSummary",
    "EpochSampler",
    "TrainingData",
    "crop_frames",
    "fixed_plans",
]

SHIFT_RTOL = 1e-6
LENGTH_TOLERANCE_FRAMES = 3  # input and target may disagree by this many input frames (edge conventions)


def crop_frames(crop_seconds: float, frame_shift: float, stride: int) -> int:
    """Crop length in input frames: crop_seconds rounded to a multiple of the stride (>= 1 stride)."""
    frames = crop_seconds / frame_shift
    return max(1, int(round(frames / stride))) * stride


def _same_shift(a: float, b: float) -> bool:
    return abs(a - b) <= SHIFT_RTOL * max(abs(a), abs(b))


def _num_frames(source, utt: str) -> int:
    """Frames of `utt` without reading the whole array when it is a .npy file."""
    if isinstance(source, FeatureDir):
        path = source.array_path(utt)
        if path is not None and path.suffix == ".npy":
            try:
                return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
            except Exception as e:
                raise SpeechUnitsError(f"{path}: cannot read array: {e}") from e
    return int(source.load(utt).shape[0])


# ----------------------------------------------------------------------------- batches
@dataclass
class Batch:
    """A padded batch.

    feats: (B, T, D) float input features (zero padded), feat_lengths: (B,) long;
    target: (B, N) waveform in [-1, 1], (B, T_t, F) frames, or (B, T_t) long labels ((B, T_t, M)
    with M label sets: data.extra_target_feats; -1 on padding), target_lengths: (B,);
    speaker_ids: (B,) long rows of model.speakers (or None without speaker conditioning);
    utts: utterance ids; starts: first input frame of each crop.
    """

    feats: Tensor
    feat_lengths: Tensor
    target: Tensor
    target_lengths: Tensor
    speaker_ids: Tensor | None
    utts: list[str]
    starts: list[int]
    frame_shift: float

    def to(self, device) -> "Batch":
        def move(t):
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(
            move(self.feats), move(self.feat_lengths), move(self.target), move(self.target_lengths),
            move(self.speaker_ids), self.utts, self.starts, self.frame_shift,
        )

    def model_inputs(self) -> dict[str, Tensor]:
        """Keyword arguments of SpeechAutoencoder.forward / latent_usage."""
        return {
            "feats": self.feats,
            "feat_lengths": self.feat_lengths,
            "speaker_ids": self.speaker_ids,
            "target": self.target,
            "target_lengths": self.target_lengths,
        }

    @property
    def audio_seconds(self) -> float:
        """Seconds of speech in the batch (valid input frames x frame shift)."""
        return float(self.feat_lengths.sum()) * self.frame_shift


@dataclass
class BatchPlan:
    """Which utterances (indices into a CropSet) and where to crop them: `draws` in
    [0, 1) pick the crop start uniformly among the possible ones."""

    indices: list[int]
    draws: list[float]


# ----------------------------------------------------------------------------- targets
class _WaveformTarget:
    """Samples from wav.scp (+ segments) at the decoder's sample rate, cached in memory."""

    kind = "waveform"

    def __init__(self, loader: AudioLoader, sample_rate: int, cache: bool):
        self.loader, self.rate, self.cache = loader, sample_rate, cache
        self._store: dict[str, np.ndarray] = {}

    def has(self, utt: str) -> bool:
        return utt in self.loader

    def load(self, utt: str) -> np.ndarray:
        x = self._store.get(utt)
        if x is None:
            x = self.loader.load(utt).samples.astype(np.float32, copy=False)
            if self.cache:
                self._store[utt] = x
        return x


class _FrameTarget:
    """Frames of a second feature store (e.g. 80 log-mel for the filterbank decoder)."""

    kind = "frames"

    def __init__(self, source, cache: bool):
        self.source, self.cache = source, cache
        self._utts = set(source.utts())
        self._store: dict[str, np.ndarray] = {}

    def has(self, utt: str) -> bool:
        return utt in self._utts

    def load(self, utt: str) -> np.ndarray:
        x = self._store.get(utt)
        if x is None:
            x = self._convert(utt, self.source.load(utt))
            if self.cache:
                self._store[utt] = x
        return x

    def _convert(self, utt: str, array) -> np.ndarray:
        return np.asarray(array, dtype=np.float32)


class _LabelTarget(_FrameTarget):
    """Integer labels (T,) of a unit store (e.g. `kmeans apply`'s codes/) for a cluster decoder.
    Labels at a coarser rate (`repeat` decoder positions per label, e.g. the k-means units
    of a 50 Hz model tap for a 100 Hz decoder: a second masked-prediction iteration) are
    repeated to the decoder's rate."""

    kind = "labels"

    def __init__(self, source, cache: bool, repeat: int = 1):
        super().__init__(source, cache)
        self.repeat = int(repeat)

    def _convert(self, utt: str, array) -> np.ndarray:
        x = np.asarray(array)
        if x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dtype.kind not in "iu" or x.ndim != 1:
            raise SpeechUnitsError(
                f"utterance {utt}: the target must be integer labels of shape (T,) (unit ids, e.g. the codes/ "
                f"of `speechunits kmeans apply`), found {x.dtype} {tuple(x.shape)}"
            )
        x = x.astype(np.int64, copy=False)
        return np.repeat(x, self.repeat) if self.repeat > 1 else x


class _LabelStack:
    """Several label stores of the same frames read together: (T, M) labels, column 0 from
    data.target_feats and one column per data.extra_target_feats entry (a cluster decoder
    with decoder_cfg.extra_classes: one head per set), cut to the shortest set."""

    kind = "labels"

    def __init__(self, targets: Sequence[_LabelTarget], names: Sequence[str], tolerance: int):
        self.targets, self.names, self.tolerance = list(targets), list(names), int(tolerance)

    def has(self, utt: str) -> bool:
        return all(t.has(utt) for t in self.targets)

    def load(self, utt: str) -> np.ndarray:
        columns = [t.load(utt) for t in self.targets]
        sizes = [c.shape[0] for c in columns]
        if max(sizes) - min(sizes) > self.tolerance:
            listed = ", ".join(f"{name}: {n}" for name, n in zip(self.names, sizes))
            raise SpeechUnitsError(f"utterance {utt}: the label sets differ in length ({listed}); they must label the same frames")
        n = min(sizes)
        return np.stack([c[:n] for c in columns], axis=1)


# ----------------------------------------------------------------------------- crop sets
class CropSet:
    """One split's utterances with their input features, target and speakers."""

    def __init__(
        self,
        utts: Sequence[str],
        utt2spk: Mapping[str, str],
        inputs,
        target,
        *,
        input_dim: int,
        frame_shift: float,
        hop: int,
        crop: int,
        speakers: Sequence[str] | None,
        num_frames: Mapping[str, int],
        cache: bool = True,
    ):
        self.utts = list(utts)
        self.utt2spk = dict(utt2spk)
        self.inputs, self.target = inputs, target
        self.input_dim, self.frame_shift, self.hop, self.crop = input_dim, frame_shift, hop, crop
        self.speaker_index = {s: i for i, s in enumerate(speakers)} if speakers is not None else None
        self.num_frames = dict(num_frames)
        self.cache = cache
        self._feats: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.utts)

    @property
    def seconds(self) -> float:
        return sum(self.num_frames[u] for u in self.utts) * self.frame_shift

    def features(self, utt: str) -> np.ndarray:
        x = self._feats.get(utt)
        if x is None:
            x = np.asarray(self.inputs.load(utt), dtype=np.float32)
            if x.ndim == 1 and self.input_dim == 1:
                x = x[:, None]
            if x.ndim != 2 or x.shape[1] != self.input_dim:
                raise SpeechUnitsError(
                    f"utterance {utt}: input features have shape {tuple(x.shape)}, the model expects "
                    f"(frames, {self.input_dim}) (model.input_dim); wrong feature type for this model?"
                )
            if self.cache:
                self._feats[utt] = x
        return x

    def crop_start(self, utt: str, draw: float) -> int:
        """First input frame of the crop chosen by `draw` in [0, 1)."""
        room = self.num_frames[utt] - self.crop
        return min(int(draw * (room + 1)), room) if room > 0 else 0

    def example(self, utt: str, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Input frames [start, start + crop) and target positions [start h, (start + crop) h)."""
        feats = self.features(utt)
        target = self.target.load(utt)
        T = feats.shape[0]
        want = T * self.hop
        if abs(target.shape[0] - want) > LENGTH_TOLERANCE_FRAMES * self.hop:
            unit = "samples" if self.target.kind == "waveform" else "frames"
            raise SpeechUnitsError(
                f"utterance {utt}: the target has {target.shape[0]} {unit} but the {T} input frames cover "
                f"{want}; features and target do not belong together (frame shift or sample rate?)"
            )
        end = min(start + self.crop, T)
        return feats[start:end], target[start * self.hop : end * self.hop]

    def batch(self, plan: BatchPlan) -> Batch:
        utts = [self.utts[i] for i in plan.indices]
        starts = [self.crop_start(u, d) for u, d in zip(utts, plan.draws)]
        pairs = [self.example(u, s) for u, s in zip(utts, starts)]
        B = len(pairs)
        T = max(p[0].shape[0] for p in pairs)
        N = max(p[1].shape[0] for p in pairs)
        feats = torch.zeros(B, T, self.input_dim)
        if self.target.kind == "labels":
            target = torch.full((B, N, *pairs[0][1].shape[1:]), -1, dtype=torch.long)  # -1: padding, not scored
        elif self.target.kind == "waveform":
            target = torch.zeros(B, N)
        else:
            target = torch.zeros(B, N, pairs[0][1].shape[1])
        for b, (x, y) in enumerate(pairs):
            feats[b, : x.shape[0]] = torch.from_numpy(x)
            target[b, : y.shape[0]] = torch.from_numpy(np.ascontiguousarray(y))
        speaker_ids = None
        if self.speaker_index is not None:
            speaker_ids = torch.tensor([self.speaker_index[self.utt2spk[u]] for u in utts], dtype=torch.long)
        return Batch(
            feats=feats,
            feat_lengths=torch.tensor([p[0].shape[0] for p in pairs], dtype=torch.long),
            target=target,
            target_lengths=torch.tensor([p[1].shape[0] for p in pairs], dtype=torch.long),
            speaker_ids=speaker_ids,
            utts=utts,
            starts=starts,
            frame_shift=self.frame_shift,
        )


# ----------------------------------------------------------------------------- sampler
class EpochSampler:
    """Seeded per-epoch batches of utterance indices for one rank (see the module docstring)."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True):
        if n < 1:
            raise SpeechUnitsError("no training utterances to sample from")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.epoch_index = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch_index = epoch

    @property
    def per_rank(self) -> int:
        return math.ceil(self.n / self.world_size)

    def __len__(self) -> int:
        """Batches per epoch (the last one may be smaller; every rank has the same count)."""
        return math.ceil(self.per_rank / self.batch_size)

    def shard(self, epoch: int) -> list[int]:
        """This rank's utterance indices for `epoch`, in order."""
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.world_size
        order = (order * math.ceil(total / self.n))[:total]  # wrap around: equal shards
        return order[self.rank :: self.world_size]

    def epoch(self, epoch: int | None = None) -> list[BatchPlan]:
        epoch = self.epoch_index if epoch is None else epoch
        shard = self.shard(epoch)
        draws = np.random.default_rng([self.seed, epoch, self.rank]).random(len(shard)).tolist()
        bs = self.batch_size
        return [BatchPlan(shard[i : i + bs], draws[i : i + bs]) for i in range(0, len(shard), bs)]

    def __iter__(self) -> Iterator[BatchPlan]:
        return iter(self.epoch(self.epoch_index))


def fixed_plans(n: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[BatchPlan]:
    """Evaluation batches: utterances in order, rank r takes r, r + W, ...; centred crops."""
    mine = list(range(rank, n, world_size))
    return [BatchPlan(mine[i : i + batch_size], [0.5] * len(mine[i : i + batch_size])) for i in range(0, len(mine), batch_size)]


# ----------------------------------------------------------------------------- the data of a run
@dataclass
class DataSummary:
    """What was used and what was left out (and why)."""

    train_utts: int = 0
    dev_utts: int = 0
    train_seconds: float = 0.0
    dev_seconds: float = 0.0
    crop_frames: int = 0
    missing: list[str] = field(default_factory=list)  # no input features / target / audio entry
    too_short: list[str] = field(default_factory=list)  # shorter than one latent frame
    unknown_speaker: list[str] = field(default_factory=list)  # dev utterances of speakers not in training

    def lines(self) -> list[str]:
        out = [
            f"train: {self.train_utts} utterances, {self.train_seconds / 60:.1f} min; "
            f"dev: {self.dev_utts} utterances, {self.dev_seconds / 60:.1f} min; crop {self.crop_frames} frames"
        ]
        for name, utts in (
            ("without features, target or audio entry", self.missing),
            ("shorter than one latent frame", self.too_short),
            ("of speakers unseen in training (dev)", self.unknown_speaker),
        ):
            if utts:
                out.append(f"skipped {len(utts)} utterances {name}: {', '.join(utts[:5])}{' ...' if len(utts) > 5 else ''}")
        return out


class TrainingData:
    """The training and dev CropSets of a run, checked against the model config."""

    def __init__(self, train: CropSet, dev: CropSet | None, speakers: list[str], summary: DataSummary, input_meta: dict):
        self.train, self.dev, self.speakers, self.summary = train, dev, speakers, summary
        self.input_meta = input_meta  # meta.json of the input feature dir (how the features were made)

    @classmethod
    def from_config(cls, data_cfg, model_cfg, seed: int = 0) -> "TrainingData":
        """Read the data dirs and feature dirs named in `data_cfg` (a DataConfig) and check
        them against `model_cfg` (an AutoencoderConfig): frame shift, dimension, target kind.
        Speakers: model_cfg.speakers when set, else the sorted training speakers."""
        from speechunits.models.decoders import DECODERS, _import_decoder_modules

        if not data_cfg.train_dir or not data_cfg.input_feats:
            raise SpeechUnitsError(
                "data.train_dir and data.input_feats must be set (e.g. data.train_dir=data/train "
                "data.input_feats=feats/train/mfcc_dd)"
            )
        _import_decoder_modules()
        target_kind = DECODERS.get(model_cfg.decoder).target_kind
        _check_extra_label_sets(data_cfg, model_cfg, target_kind)
        stride = model_cfg.encoder.total_stride
        shift = model_cfg.input_frame_shift
        crop = crop_frames(data_cfg.crop_seconds, shift, stride)
        summary = DataSummary(crop_frames=crop)

        train_dd = DataDir.read(data_cfg.train_dir)
        train_in = _open_inputs(data_cfg.input_feats, model_cfg)
        if target_kind == "waveform":
            rate = int(model_cfg.decoder_cfg["sample_rate"])
            hop = _hop(shift, rate, "the decoder's sample rate")
            train_tgt = _waveform_target(data_cfg.train_dir, data_cfg, rate)
        else:
            train_tgt, hop = _label_or_frame_target(
                data_cfg.target_feats, data_cfg.extra_target_feats, model_cfg, "data.target_feats", data_cfg.cache, target_kind
            )

        train_utts, lengths = _usable(train_dd.utts, train_in, train_tgt, stride, summary)
        if data_cfg.dev_dir:
            dev_dd = DataDir.read(data_cfg.dev_dir)
            if not data_cfg.dev_input_feats:
                raise SpeechUnitsError("data.dev_dir is set: set data.dev_input_feats too")
            dev_in = _open_inputs(data_cfg.dev_input_feats, model_cfg)
            if target_kind == "waveform":
                dev_tgt = _waveform_target(data_cfg.dev_dir, data_cfg, rate)
            else:
                if not data_cfg.dev_target_feats:
                    raise SpeechUnitsError("data.dev_dir is set: set data.dev_target_feats too (the decoder's target)")
                dev_tgt, _ = _label_or_frame_target(
                    data_cfg.dev_target_feats, data_cfg.dev_extra_target_feats, model_cfg, "data.dev_target_feats",
                    data_cfg.cache, target_kind,
                )
            dev_utts, dev_lengths = _usable(dev_dd.utts, dev_in, dev_tgt, stride, summary)
            dev_utt2spk = dev_dd.utt2spk
        else:
            dev_utts = held_out(train_utts, data_cfg.dev_fraction, seed)
            held = set(dev_utts)
            train_utts = [u for u in train_utts if u not in held]
            dev_in, dev_tgt, dev_lengths, dev_utt2spk = train_in, train_tgt, lengths, train_dd.utt2spk
        if not train_utts:
            raise SpeechUnitsError(f"{data_cfg.train_dir}: no usable training utterances ({'; '.join(summary.lines()[1:])})")

        speakers: list[str] | None = None
        if model_cfg.speaker_conditioning:
            data_speakers = sorted({train_dd.utt2spk[u] for u in train_utts})
            if model_cfg.speakers:
                speakers = list(model_cfg.speakers)
                unknown = sorted(set(data_speakers) - set(speakers))
                if unknown:
                    raise SpeechUnitsError(
                        f"model.speakers lists {len(speakers)} speakers but the training data has others: "
                        f"{', '.join(unknown[:10])}; leave model.speakers empty to take them from the data"
                    )
            else:
                speakers = data_speakers
            known = set(speakers)
            summary.unknown_speaker = [u for u in dev_utts if dev_utt2spk[u] not in known]
            dev_utts = [u for u in dev_utts if dev_utt2spk[u] in known]
        dev_utts = dev_utts[: data_cfg.dev_max_utts] if data_cfg.dev_max_utts > 0 else dev_utts

        common = dict(input_dim=model_cfg.input_dim, frame_shift=shift, hop=hop, crop=crop, speakers=speakers, cache=data_cfg.cache)
        train = CropSet(train_utts, train_dd.utt2spk, train_in, train_tgt, num_frames=lengths, **common)
        dev = None
        if dev_utts:
            dev = CropSet(dev_utts, dev_utt2spk, dev_in, dev_tgt, num_frames=dev_lengths, **common)
        summary.train_utts, summary.train_seconds = len(train), train.seconds
        summary.dev_utts, summary.dev_seconds = (len(dev), dev.seconds) if dev else (0, 0.0)
        meta = train_in.meta if isinstance(train_in, FeatureDir) else {}
        return cls(train, dev, speakers or [], summary, meta)


def held_out(utts: Sequence[str], fraction: float, seed: int) -> list[str]:
    """A seeded random `fraction` of `utts` (at least one when fraction > 0 and there are two or more), sorted."""
    if fraction <= 0 or len(utts) < 2:
        return []
    k = min(len(utts) - 1, max(1, int(round(fraction * len(utts)))))
    pick = np.random.default_rng([seed, 7919]).permutation(len(utts))[:k]
    return sorted(utts[i] for i in pick)


def _hop(input_shift: float, target_rate: float, what: str) -> int:
    h = input_shift * target_rate
    if abs(h - round(h)) > 1e-6 * max(1.0, h) or round(h) < 1:
        raise SpeechUnitsError(
            f"the input frame shift {input_shift:g} s is not a whole number of target positions at {what} "
            f"({target_rate:g} Hz)"
        )
    return int(round(h))


def _open_inputs(path: str, model_cfg):
    source = open_feature_source(path)
    shift = source.frame_shift
    if shift is None:
        raise SpeechUnitsError(f"{path}: no frame shift recorded (a 'frame_shift' file or meta.json)")
    if not _same_shift(shift, model_cfg.input_frame_shift):
        raise SpeechUnitsError(
            f"{path}: features at frame shift {shift:g} s, but the model expects {model_cfg.input_frame_shift:g} s "
            "(model.input_frame_shift)"
        )
    dim = source.meta.get("feature_dim") if isinstance(source, FeatureDir) else None
    if dim is not None and int(dim) != model_cfg.input_dim:
        raise SpeechUnitsError(
            f"{path}: features have {dim} dims (meta.json), the model expects model.input_dim={model_cfg.input_dim}; "
            "use the feature type the pipeline was written for or override model.input_dim"
        )
    return source


def _waveform_target(data_dir: str, data_cfg, rate: int) -> _WaveformTarget:
    config = AudioConfig(target_sr=rate, resample=data_cfg.resample, allow_pipes=data_cfg.allow_pipes)
    loader = AudioLoader.from_data_dir(data_dir, base_dir=data_cfg.base_dir or None, config=config)
    return _WaveformTarget(loader, rate, data_cfg.cache)


def _check_extra_label_sets(data_cfg, model_cfg, target_kind: str) -> None:
    """data.extra_target_feats (and its dev twin) against the decoder: a cluster decoder with
    one decoder_cfg.extra_classes entry per dir, and dev dirs exactly when dev_dir is set."""
    extra, dev_extra = list(data_cfg.extra_target_feats), list(data_cfg.dev_extra_target_feats)
    heads = list(model_cfg.decoder_cfg.get("extra_classes") or [])
    if (extra or dev_extra or heads) and target_kind != "labels":
        raise SpeechUnitsError(f"extra label sets (data.extra_target_feats) need a cluster decoder, not {model_cfg.decoder}")
    if len(extra) != len(heads):
        raise SpeechUnitsError(
            f"data.extra_target_feats lists {len(extra)} label dir(s) but decoder_cfg.extra_classes "
            f"lists {len(heads)} head(s): give one K per extra label set"
        )
    if data_cfg.dev_dir and len(dev_extra) != len(extra):
        raise SpeechUnitsError(
            f"data.dev_dir is set: give data.dev_extra_target_feats one label dir per data.extra_target_feats entry "
            f"({len(extra)}; found {len(dev_extra)})"
        )
    if dev_extra and not data_cfg.dev_dir:
        raise SpeechUnitsError("data.dev_extra_target_feats is set without data.dev_dir (the dev utterances come from the training dirs)")


def _label_or_frame_target(path: str, extra: Sequence[str], model_cfg, key: str, cache: bool, kind: str):
    """The decoder's frame target from `path`, stacked with the extra label sets when there are
    any (checked by _check_extra_label_sets) -> (target, target positions per input frame)."""
    first, hop = _frame_target(path, model_cfg, key, cache, kind)
    if not extra:
        return first, hop
    extra_key = key.replace("target", "extra_target")
    more = [_frame_target(p, model_cfg, f"{extra_key}[{i}]", cache, kind)[0] for i, p in enumerate(extra)]
    return _LabelStack([first, *more], [path, *extra], LENGTH_TOLERANCE_FRAMES * hop), hop


def _frame_target(path: str, model_cfg, key: str, cache: bool, kind: str = "frames") -> tuple[_FrameTarget, int]:
    if not path:
        if kind == "labels":
            raise SpeechUnitsError(
                f"the {model_cfg.decoder} decoder predicts frame labels: set {key} (e.g. the codes/ of "
                "`speechunits kmeans apply` on MFCC features)"
            )
        raise SpeechUnitsError(f"the {model_cfg.decoder} decoder reconstructs feature frames: set {key} (e.g. an 80-dim fbank dir)")
    source = open_feature_source(path)
    shift = source.frame_shift
    want = float(model_cfg.decoder_cfg.get("frame_shift", model_cfg.input_frame_shift))
    if shift is None:
        raise SpeechUnitsError(f"{path}: no frame shift recorded (a 'frame_shift' file or meta.json)")
    repeat = 1
    if kind == "labels" and shift > want and _same_shift(shift / round(shift / want), want):
        repeat = int(round(shift / want))  # coarser labels: each covers `repeat` decoder positions
    elif not _same_shift(shift, want):
        raise SpeechUnitsError(
            f"{path}: target frames at {shift:g} s, the decoder expects {want:g} s (decoder_cfg.frame_shift)"
            + ("; labels may also come at a whole multiple of it" if kind == "labels" else "")
        )
    dim = source.meta.get("feature_dim") if isinstance(source, FeatureDir) else None
    out_dim = model_cfg.decoder_cfg.get("out_dim")
    if dim is not None and out_dim is not None and int(dim) != int(out_dim):
        raise SpeechUnitsError(f"{path}: target features have {dim} dims, the decoder predicts decoder_cfg.out_dim={out_dim}")
    target = _LabelTarget(source, cache, repeat) if kind == "labels" else _FrameTarget(source, cache)
    return target, _hop(model_cfg.input_frame_shift, 1.0 / (shift / repeat), "the target frame rate")


def _usable(utts, inputs, target, stride: int, summary: DataSummary) -> tuple[list[str], dict[str, int]]:
    """Utterances with input features, a target and at least one latent frame; their lengths."""
    have = set(inputs.utts())
    keep, lengths = [], {}
    for utt in utts:
        if utt not in have or not target.has(utt):
            summary.missing.append(utt)
            continue
        n = _num_frames(inputs, utt)
        if n < stride:
            summary.too_short.append(utt)
            continue
        keep.append(utt)
        lengths[utt] = n
    if summary.missing:
        log.warning("%d utterances have no input features or target and are skipped", len(summary.missing))
    if summary.too_short:
        log.warning("%d utterances are shorter than one latent frame (%d input frames) and are skipped",
                    len(summary.too_short), stride)
    return keep, lengths
