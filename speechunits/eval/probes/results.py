"""Probe results: one row per (tap, target, split, head); the table; JSON and Markdown files.

    results.write("exp/small/probes")          # probes.json ("kind": "probes") + probes.md
    results = read_probe_results("exp/small/probes")
    header, rows = results.table()             # taps x (target, split, head), plus baseline rows

Accuracies are shown in %, R^2 as a fraction. The baseline row is the majority
class (R^2 0 for fbank, the training mean), measured on the latent-rate frames; the
chance row is 1 / classes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from speechunits.errors import SpeechUnitsError
from speechunits.fileio import write_json, write_text
from speechunits.eval.probes.splits import SPLITS
from speechunits.eval.probes.taps import ALL_TAPS

__all__ = ["PROBES_KIND", "ProbeResult", "ProbeResults", "read_probe_results", "TARGET_ORDER"]

PROBES_KIND = "probes"  # the "kind" of the JSON file (the report finds files by it)
RESULTS_JSON = "probes.json"
RESULTS_MD = "probes.md"
TARGET_ORDER = ("phone", "speaker", "gender", "fbank")


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
        order = {t: i for i, t in enumerate(TARGET_ORDER)}
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
