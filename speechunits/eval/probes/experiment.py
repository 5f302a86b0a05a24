"""Probing experiments: every (tap, target, split, head), one results table.

    data = ProbeData(utt2spk, spk2gender, alignments, fbank=open_feature_source("feats/train/fbank"))
    results = run_probes(taps, data, ProbeConfig(heads=("linear", "mlp")))
    results.write("exp/small/probes")        # probes.json + probes.md
    print(results.to_markdown())

Targets (the paper's four, section 5 of docs/design.md) and how they are scored:

    phone    frame phone (alignment label at the frame centre; silence is a class,
             `ignore_phones` drops others)               accuracy; majority baseline
    speaker  the utterance's speaker, every frame          accuracy; majority baseline
    gender   the speaker's gender (spk2gender)             accuracy; majority baseline
    fbank    mean log-mel frame covered by the tap frame   R^2 and MSE; the baseline
                                                           predicts the training mean

R^2 = 1 - SSE / SST with SST taken about the *training* mean over all bins, i.e.
1 - MSE(probe) / MSE(predict the training mean): 0 is the baseline, 1 is perfect,
below 0 is worse than the baseline.

Splits: "utterance" (test utterances unseen, speakers seen) for every target;
"speaker" (test speakers unseen) for phones only, since speaker identity cannot be
tested on unseen speakers and gender on a handful of held-out speakers says little.
Frames are subsampled (seeded) to at most max_{train,dev,test}_frames per part;
taps of the same frame rate see the same frames, so their scores compare directly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from speechunits.config import to_dict
from speechunits.data.ctm import LabelledSegment
from speechunits.errors import SpeechUnitsError
from speechunits.eval.probes.fit import ProbeTrainConfig, fit_probe
from speechunits.eval.probes.results import PROBES_KIND, TARGET_ORDER, ProbeResult, ProbeResults, read_probe_results
from speechunits.eval.probes.splits import SPLITS, Split, speaker_split, stable_seed, utterance_split
from speechunits.eval.probes.taps import ALL_TAPS, TapSet
from speechunits.eval.probes.targets import IGNORE, constant_targets, covered_mean, phone_targets

log = logging.getLogger(__name__)

__all__ = [
    "TARGETS",
    "PROBES_KIND",
    "ProbeConfig",
    "ProbeData",
    "ProbeResult",
    "ProbeResults",
    "run_probes",
    "read_probe_results",
]

TARGETS = TARGET_ORDER  # phone, speaker, gender, fbank
CLASSIFICATION = ("phone", "speaker", "gender")


@dataclass
class ProbeConfig:
    targets: tuple[str, ...] = TARGETS
    heads: tuple[str, ...] = ("linear", "mlp")
    splits: tuple[str, ...] = SPLITS  # "speaker" applies to phone targets only
    taps: tuple[str, ...] = ALL_TAPS
    test_fraction: float = 0.2  # utterance split: share of each speaker's utterances held out
    speaker_test_fraction: float = 0.25  # speaker split: share of speakers held out
    dev_fraction: float = 0.1  # held-out training utterances for early stopping
    max_train_frames: int = 10000
    max_dev_frames: int = 5000
    max_test_frames: int = 10000
    ignore_phones: tuple[str, ...] = ()
    seed: int = 0
    train: ProbeTrainConfig = field(default_factory=ProbeTrainConfig)

    def __post_init__(self):
        for name, values, known in (("targets", self.targets, TARGETS), ("splits", self.splits, SPLITS)):
            bad = sorted(set(values) - set(known))
            if bad:
                raise SpeechUnitsError(f"unknown probe {name} {', '.join(bad)}; known: {', '.join(known)}")
        from speechunits.eval.probes.heads import PROBE_HEADS

        bad = sorted(set(self.heads) - set(PROBE_HEADS))
        if bad:
            raise SpeechUnitsError(f"unknown probe heads {', '.join(bad)}; known: {', '.join(sorted(PROBE_HEADS))}")
        self.targets, self.heads, self.splits = tuple(self.targets), tuple(self.heads), tuple(self.splits)
        self.taps, self.ignore_phones = tuple(self.taps), tuple(self.ignore_phones)


@dataclass
class ProbeData:
    """What the targets are made from. fbank: a FeatureSource of log-mel frames (with its
    frame shift); alignments: utt -> [(start, end, phone)]; spk2gender optional."""

    utt2spk: Mapping[str, str]
    spk2gender: Mapping[str, str] | None = None
    alignments: Mapping[str, Sequence[LabelledSegment]] | None = None
    fbank: object | None = None


# ----------------------------------------------------------------------------- building the frame sets


class _Targets:
    """Per-utterance targets at a given frame shift, computed once and cached."""

    def __init__(self, data: ProbeData, cfg: ProbeConfig):
        self.data, self.cfg = data, cfg
        self._cache: dict = {}
        self.phones: list[str] = []
        self.phone_to_id: dict[str, int] = {}
        if data.alignments:
            self.phones = sorted({p for segs in data.alignments.values() for _, _, p in segs})
            ignored = set(cfg.ignore_phones)
            self.phones = [p for p in self.phones if p not in ignored]
            self.phone_to_id = {p: i for i, p in enumerate(self.phones)}
            for p in ignored:
                self.phone_to_id[p] = IGNORE
        self.speakers = sorted(set(data.utt2spk.values()))
        self.genders = sorted({g for s, g in (data.spk2gender or {}).items() if s in set(self.speakers)})

    def n_classes(self, target: str) -> int | None:
        return {"phone": len(self.phones), "speaker": len(self.speakers), "gender": len(self.genders)}.get(target)

    def has(self, target: str, utt: str) -> bool:
        if target == "phone":
            return bool(self.data.alignments) and utt in self.data.alignments
        if target == "speaker":
            return utt in self.data.utt2spk
        if target == "gender":
            return bool(self.data.spk2gender) and self.data.spk2gender.get(self.data.utt2spk.get(utt)) in self.genders
        if target == "fbank":
            return self.data.fbank is not None and self._fbank_has(utt)
        return False

    def _fbank_has(self, utt: str) -> bool:
        if "fbank_utts" not in self._cache:
            self._cache["fbank_utts"] = set(self.data.fbank.utts())
        return utt in self._cache["fbank_utts"]

    def get(self, target: str, utt: str, num_frames: int, shift: float) -> np.ndarray:
        key = (target, utt, num_frames, round(shift, 9))
        if key not in self._cache:
            self._cache[key] = self._make(target, utt, num_frames, shift)
        return self._cache[key]

    def _make(self, target: str, utt: str, n: int, shift: float) -> np.ndarray:
        if target == "phone":
            return phone_targets(self.data.alignments[utt], n, shift, self.phone_to_id)
        if target == "speaker":
            return constant_targets(self.speakers.index(self.data.utt2spk[utt]), n)
        if target == "gender":
            return constant_targets(self.genders.index(self.data.spk2gender[self.data.utt2spk[utt]]), n)
        fb = self.data.fbank
        fb_shift = fb.frame_shift
        if fb_shift is None:
            raise SpeechUnitsError("the filterbank features record no frame shift")
        return covered_mean(fb.load(utt), n, shift, fb_shift)


def _frames(taps: TapSet, tap: str, target: str, utts: list[str], targets: _Targets):
    xs, ys = [], []
    shift = taps.frame_shift[tap]
    for utt in utts:
        if utt not in taps.values[tap] or not targets.has(target, utt):
            continue
        x = taps.values[tap][utt]
        y = targets.get(target, utt, x.shape[0], shift)
        keep = ~np.isnan(y).any(1) if y.ndim == 2 else y != IGNORE
        xs.append(x[keep])
        ys.append(y[keep])
    if not xs:
        return None, None
    return np.concatenate(xs), np.concatenate(ys)


def _subsample(x, y, limit: int, seed: int):
    if x is None or limit <= 0 or x.shape[0] <= limit:
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(x.shape[0], size=limit, replace=False))
    return x[idx], y[idx]


def _splits(data: ProbeData, utts: list[str], cfg: ProbeConfig) -> dict[str, Split]:
    utt2spk = {u: data.utt2spk[u] for u in utts}
    out = {}
    if "utterance" in cfg.splits or any(t != "phone" for t in cfg.targets):
        out["utterance"] = utterance_split(utt2spk, cfg.test_fraction, cfg.dev_fraction, cfg.seed)
    if "speaker" in cfg.splits and "phone" in cfg.targets:
        if len(set(utt2spk.values())) >= 2:
            out["speaker"] = speaker_split(utt2spk, cfg.speaker_test_fraction, cfg.dev_fraction, cfg.seed)
        else:
            log.warning("one speaker only: no speaker-disjoint phone probe")
    return out


def _jobs(cfg: ProbeConfig, splits: dict[str, Split]):
    for target in cfg.targets:
        for split in SPLITS:
            if split not in splits:
                continue
            if split == "utterance" and "utterance" not in cfg.splits and target == "phone":
                continue
            if split == "speaker" and target != "phone":
                continue
            yield target, split


def run_probes(
    taps: TapSet, data: ProbeData, config: ProbeConfig | None = None, device: str | torch.device = "cpu"
) -> ProbeResults:
    """Train and score every (tap, target, split, head) probe that the data allows.

    Targets the data cannot make (no alignments, no spk2gender, no fbank) are skipped
    with a warning and listed in meta["skipped"]."""
    cfg = config or ProbeConfig()
    targets = _Targets(data, cfg)
    tap_names = [t for t in taps.names if t in cfg.taps]
    if not tap_names:
        raise SpeechUnitsError("no tap to probe")
    utts = sorted(u for u in taps.values[tap_names[0]] if u in data.utt2spk)
    if not utts:
        raise SpeechUnitsError("no tapped utterance is in utt2spk")
    splits = _splits(data, utts, cfg)
    skipped = []
    for target in cfg.targets:
        if not any(targets.has(target, u) for u in utts):
            why = {"phone": "no alignments", "gender": "no spk2gender", "fbank": "no filterbank features"}.get(
                target, "no labels"
            )
            log.warning("probe target %s skipped: %s for these utterances", target, why)
            skipped.append({"target": target, "reason": why})
    rows: list[ProbeResult] = []
    for target, split_kind in _jobs(cfg, splits):
        if any(s["target"] == target for s in skipped):
            continue
        split = splits[split_kind]
        for tap in tap_names:
            shift = taps.frame_shift[tap]
            parts = {}
            for part, limit in (("train", cfg.max_train_frames), ("dev", cfg.max_dev_frames), ("test", cfg.max_test_frames)):
                x, y = _frames(taps, tap, target, getattr(split, part), targets)
                parts[part] = _subsample(x, y, limit, stable_seed(cfg.seed, target, split_kind, part, f"{shift:.9f}"))
            if parts["train"][0] is None or parts["test"][0] is None:
                log.warning("probe %s/%s/%s: no training or test frames, skipped", tap, target, split_kind)
                continue
            for head in cfg.heads:
                rows.append(_one_probe(tap, target, split_kind, head, parts, targets, cfg, device, shift))
                r = rows[-1]
                log.info("probe %-12s %-7s %-9s %-6s %s %.4f (baseline %.4f, %d epochs)",
                         tap, target, split_kind, head, r.metric, r.value, r.baseline, r.epochs)
    meta = {
        "config": to_dict(cfg),
        "taps": {t: {"frame_shift": taps.frame_shift[t], "dim": taps.dim(t)} for t in tap_names},
        "splits": {k: s.to_dict() for k, s in splits.items()},
        "phones": targets.phones,
        "n_speakers": len(targets.speakers),
        "genders": targets.genders,
        "skipped": skipped,
    }
    return ProbeResults(rows, meta)


def _tensor(a, device, dtype):
    return None if a is None else torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


def _one_probe(tap, target, split_kind, head, parts, targets: _Targets, cfg: ProbeConfig, device, shift) -> ProbeResult:
    classification = target in CLASSIFICATION
    ydtype = torch.long if classification else torch.float32
    (xtr, ytr), (xdv, ydv), (xte, yte) = parts["train"], parts["dev"], parts["test"]
    t = lambda a, dt=torch.float32: _tensor(a, device, dt)  # noqa: E731
    out_dim = targets.n_classes(target) if classification else ytr.shape[1]
    probe = fit_probe(
        head,
        "classification" if classification else "regression",
        t(xtr), t(ytr, ydtype), t(xdv), t(ydv, ydtype), out_dim,
        cfg.train,
        seed=stable_seed(cfg.seed, tap, target, split_kind, head),
    )
    pred = probe.predict(t(xte)).cpu().numpy()
    n_dev = 0 if xdv is None else int(xdv.shape[0])
    common = dict(tap=tap, target=target, split=split_kind, head=head, n_train=int(xtr.shape[0]), n_dev=n_dev,
                  n_test=int(xte.shape[0]), best_epoch=probe.best_epoch, epochs=probe.epochs, frame_shift=shift)
    if classification:
        seen = np.unique(ytr)
        counts = np.bincount(ytr, minlength=out_dim)
        majority = int(counts.argmax())
        return ProbeResult(
            metric="accuracy",
            value=float((pred == yte).mean()),
            baseline=float((yte == majority).mean()),
            chance=1.0 / len(seen),
            mse=None, baseline_mse=None, n_classes=int(out_dim), **common,
        )
    yte64 = yte.astype(np.float64)
    sse = float(((pred.astype(np.float64) - yte64) ** 2).sum())
    sst = float(((yte64 - ytr.astype(np.float64).mean(0)) ** 2).sum())
    size = yte64.size
    return ProbeResult(
        metric="r2",
        value=1.0 - sse / sst if sst > 0 else math.nan,
        baseline=0.0, chance=None,
        mse=sse / size, baseline_mse=sst / size, n_classes=None, **common,
    )
