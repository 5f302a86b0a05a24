"""Probing experiments: every (tap, target, split, head), one results table.

    data = ProbeData(utt2spk, spk2gender, alignments, fbank=open_feature_source("feats/train/fbank"))
    results = run_probes(taps, data, ProbeConfig(heads=("linear", "mlp")))
    results.write("exp/small/probes")        # probes.json + probes.md
    print(results.to_markdown())

Targets (the paper's four, section 5 of DESIGN.md) and how they are scored:

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

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from speechunits.config import from_dict, to_dict
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import write_json, write_text
from speechunits.probes.fit import ProbeTrainConfig, fit_probe
from speechunits.probes.splits import SPLITS, Split, speaker_split, stable_seed, utterance_split
from speechunits.probes.taps import ALL_TAPS, TapSet
from speechunits.probes.targets import IGNORE, constant_targets, covered_mean, phone_targets

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

TARGETS = ("phone", "speaker", "gender", "fbank")
CLASSIFICATION = ("phone", "speaker", "gender")
PROBES_KIND = "probes"  # the "kind" of the JSON file (the report finds files by it)
RESULTS_JSON = "probes.json"
RESULTS_MD = "probes.md"


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
        self.targets, self.heads, self.splits = tuple(self.targets), tuple(self.heads), tuple(self.splits)
        self.taps, self.ignore_phones = tuple(self.taps), tuple(self.ignore_phones)


@dataclass
class ProbeData:
    """What the targets are made from. fbank: a FeatureSource of log-mel frames (with its
    frame shift); alignments: utt -> [(start, end, phone)]; spk2gender optional."""

    utt2spk: Mapping[str, str]
    spk2gender: Mapping[str, str] | None = None
    alignments: Mapping[str, Sequence[tuple[float, float, str]]] | None = None
    fbank: object | None = None


@dataclass
class ProbeResult:
    """One probe. metric: "accuracy" (fraction) or "r2"; baseline: majority-class accuracy
    or 0 (R^2 of the training mean); chance: 1 / classes (classification)."""

    tap: str
    target: str
    split: str
    head: str
    metric: str
    value: float
    baseline: float
    chance: float | None
    mse: float | None
    baseline_mse: float | None
    n_classes: int | None
    n_train: int
    n_dev: int
    n_test: int
    best_epoch: int
    epochs: int
    frame_shift: float


@dataclass
class ProbeResults:
    rows: list[ProbeResult]
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": PROBES_KIND, "meta": self.meta, "results": [asdict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict) -> "ProbeResults":
        return cls([ProbeResult(**r) for r in d.get("results", [])], d.get("meta", {}))

    def get(self, tap: str, target: str, head: str, split: str = "utterance") -> ProbeResult | None:
        for r in self.rows:
            if (r.tap, r.target, r.head, r.split) == (tap, target, head, split):
                return r
        return None

    def columns(self) -> list[tuple[str, str, str]]:
        """(target, split, head) in table order."""
        seen = []
        order = {t: i for i, t in enumerate(TARGETS)}
        for r in self.rows:
            key = (r.target, r.split, r.head)
            if key not in seen:
                seen.append(key)
        return sorted(seen, key=lambda k: (order.get(k[0], 99), SPLITS.index(k[1]) if k[1] in SPLITS else 9, k[2]))

    def taps(self) -> list[str]:
        order = {t: i for i, t in enumerate(ALL_TAPS)}
        return sorted({r.tap for r in self.rows}, key=lambda t: (order.get(t, 99), t))

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows of the results table (strings): accuracy in %, R^2 as a fraction."""
        cols = self.columns()
        header = ["tap", "Hz"] + [_column_name(*c) for c in cols]
        rows = []
        for tap in self.taps():
            cells = [tap]
            shift = next((r.frame_shift for r in self.rows if r.tap == tap), None)
            cells.append(f"{1 / shift:g}" if shift else "")
            for target, split, head in cols:
                r = self.get(tap, target, head, split)
                cells.append(_fmt(r.metric, r.value) if r else "")
            rows.append(cells)
        # baselines: of the latent-rate taps when there are any (the input tap's rate differs a little)
        ref_tap = next((t for t in self.taps() if t != "input"), None) or (self.taps() or [None])[0]
        base = ["baseline", ""]
        chance = ["chance", ""]
        for target, split, head in cols:
            r = self.get(ref_tap, target, head, split) or next(
                (x for x in self.rows if (x.target, x.split, x.head) == (target, split, head)), None
            )
            base.append(_fmt(r.metric, r.baseline) if r else "")
            chance.append(_fmt(r.metric, r.chance) if r and r.chance is not None else "")
        rows.append(base)
        rows.append(chance)
        return header, rows

    def to_markdown(self) -> str:
        header, rows = self.table()
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        note = (
            "\nAccuracy in % (phone, speaker, gender), R^2 for fbank (1 - MSE / MSE of predicting the "
            "training mean). Splits: utt = unseen utterances of seen speakers; unseen spk = unseen speakers. "
            "baseline: majority class (R^2 0 for fbank), measured on the latent-rate frames; chance: 1 / classes.\n"
        )
        return "\n".join(lines) + "\n" + note

    def write(self, out_dir: str | os.PathLike) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RESULTS_JSON, self.to_dict())
        write_text(out / RESULTS_MD, "# Probes\n\n" + self.to_markdown())


def _column_name(target: str, split: str, head: str) -> str:
    name = {"fbank": "fbank R²"}.get(target, target)
    if split == "speaker":
        name += " (unseen spk)"
    return f"{name} {head}"


def _fmt(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f}" if metric == "accuracy" else f"{value:.3f}"


def read_probe_results(path: str | os.PathLike) -> ProbeResults:
    """probes.json (or a folder holding it) -> ProbeResults."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    data = json.loads(path.read_text())
    if data.get("kind") != PROBES_KIND:
        raise SpeechUnitsError(f"{path}: not a probe results file (kind {data.get('kind')!r})")
    return ProbeResults.from_dict(data)


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
