"""sWUGGY- and sBLIMP-style accuracies of a unit LM: does it prefer the word, the grammatical sentence?

    rows = read_gold("sets/lexical/dev/gold.csv")
    units = extract_task_units("exp/small", "sets/lexical/dev", rows, "out/lexical_dev")  # or read_units(...)
    pairs = score_pairs(rows, scorer.score(units))
    summary = pair_accuracy(pairs, by=("voice", "subtype"))

Works on the sets `speechunits lm make-sets` writes and on the real ZeroSpeech 2021
dev folders (lexical/dev, syntactic/dev: <filename>.wav + gold.csv). A pair is the
two gold rows with the same id and voice, correct = 1 and 0; the LM prefers the
correct one when its log-probability (the sum over its units and the end) is
higher; ties count one half. Chance is 50 %. Next to the accuracy: the Wilson 95 %
interval and the one-sided exact binomial p-value against chance (ties left out).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from speechunits.errors import DataFormatError, SpeechUnitsError

__all__ = ["TASKS", "read_gold", "find_tasks", "extract_task_units", "score_pairs", "pair_accuracy", "Pair",
           "wilson_interval", "sign_test"]

TASKS = {"lexical": "spot-the-word (sWUGGY-style)", "syntactic": "grammaticality (sBLIMP-style)"}


def read_gold(path: str | os.PathLike) -> list[dict]:
    """The rows of a gold.csv; checks the columns a pair needs (filename, id, voice, correct)."""
    path = Path(path)
    if not path.is_file():
        raise SpeechUnitsError(f"{path}: gold file not found")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"filename", "id", "voice", "correct"} - set(reader.fieldnames or [])
        if missing:
            raise DataFormatError(f"missing column(s) {', '.join(sorted(missing))}", str(path), 1)
        rows = []
        for n, row in enumerate(reader, 2):
            if row["correct"] not in ("0", "1"):
                raise DataFormatError(f"correct must be 0 or 1, got {row['correct']!r}", str(path), n)
            row["_line"] = n
            rows.append(row)
    return rows


def find_tasks(root: str | os.PathLike, split: str = "dev") -> dict[str, Path]:
    """{task: ROOT/<task>/<split>} for the tasks present (lexical, syntactic)."""
    root = Path(root)
    found = {t: root / t / split for t in TASKS if (root / t / split / "gold.csv").is_file()}
    if not found:
        raise SpeechUnitsError(f"{root}: no lexical/{split}/gold.csv or syntactic/{split}/gold.csv")
    return found


def task_data_dir(task_dir: Path, rows: Sequence[dict], out: Path) -> Path:
    """A Kaldi data dir of a task's wavs (voices as speakers): the set's own data/ when
    it has one (speechunits lm make-sets writes it), else one written under `out`."""
    own = task_dir / "data"
    if (own / "wav.scp").is_file():
        return own
    from speechunits.data.datadir import DataDir

    dd = DataDir(wav_scp={r["filename"]: str((task_dir / f"{r['filename']}.wav").absolute()) for r in rows},
                 utt2spk={r["filename"]: r["voice"] for r in rows})
    dd.write(out / "data")
    return out / "data"


def extract_task_units(extractor_path: str | os.PathLike, task_dir: Path, rows: Sequence[dict], out: Path,
                       device: str = "cpu", tap: str = "bottleneck", kmeans: str | os.PathLike | None = None,
                       penalty: float = 0.0):
    """Units of every wav of a task by a trained model (`speechunits extract` as a library
    call, resumable, per-speaker CMVN over each voice; with `kmeans`, k-means units over
    the model's `tap`, duration-penalised with `penalty`) -> {filename: UnitSequence}."""
    from speechunits.units.extractor import UnitExtractor
    from speechunits.units.formats import read_units
    from speechunits.units.extract_job import ExtractOptions, extract_units
    from speechunits.units.kmeans import KMeans
    from speechunits.units.sources import open_audio_source

    data = task_data_dir(task_dir, rows, out)
    extractor = UnitExtractor.from_checkpoint(extractor_path, device=device, tap=tap,
                                              kmeans=KMeans.load(kmeans) if kmeans else None, kmeans_penalty=penalty)
    if not extractor.discrete:
        raise SpeechUnitsError(f"{extractor_path}: the model has no discrete units (a continuous bottleneck); "
                               "give a k-means model over one of its taps (--tap, --kmeans)")
    source = open_audio_source(data, sample_rate=extractor.sample_rate)
    report = extract_units(extractor, source, out / "units", ExtractOptions(model=str(extractor_path)))
    if report.failures:
        utt, why = next(iter(report.failures.items()))
        raise SpeechUnitsError(f"{task_dir}: {len(report.failures)} files failed to extract, e.g. {utt}: {why}")
    return read_units(out / "units")


@dataclass
class Pair:
    id: str
    voice: str
    good: str  # filename of the correct item
    bad: str
    good_score: float
    bad_score: float
    info: dict = field(default_factory=dict)  # type, subtype, word, frequency, ... (of the correct row)

    @property
    def credit(self) -> float:
        return 1.0 if self.good_score > self.bad_score else 0.5 if self.good_score == self.bad_score else 0.0


def score_pairs(rows: Sequence[dict], scores: Mapping[str, float], where: str = "gold.csv") -> list[Pair]:
    """Pairs (same id and voice) with the LM's scores of both files; a file without a
    score or a pair without both members is an error naming it."""
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        key = (r["id"], r["voice"])
        side = "good" if r["correct"] == "1" else "bad"
        if side in groups.setdefault(key, {}):
            raise DataFormatError(f"id {r['id']} voice {r['voice']} has two rows with correct={r['correct']}",
                                  where, r["_line"])
        groups[key][side] = r
    pairs = []
    for (pid, voice), g in sorted(groups.items()):
        if len(g) != 2:
            raise SpeechUnitsError(f"{where}: id {pid} voice {voice} is not a pair (needs correct=1 and correct=0)")
        for side in ("good", "bad"):
            if g[side]["filename"] not in scores:
                raise SpeechUnitsError(f"{where}: no units / score for {g[side]['filename']}")
        info = {k: v for k, v in g["good"].items() if k not in ("filename", "id", "voice", "correct", "_line")}
        if "word" in g["bad"]:
            info["nonword"] = g["bad"].get("word") or g["bad"].get("phones", "")
        if "transcription" in g["bad"]:
            info["bad_transcription"] = g["bad"]["transcription"]
        pairs.append(Pair(pid, voice, g["good"]["filename"], g["bad"]["filename"],
                          scores[g["good"]["filename"]], scores[g["bad"]["filename"]], info))
    return pairs


def wilson_interval(k: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (centre - half, centre + half)


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact binomial p-value of >= wins successes in wins + losses fair coin flips."""
    from scipy.stats import binomtest

    n = wins + losses
    return 1.0 if n == 0 else float(binomtest(wins, n, 0.5, alternative="greater").pvalue)


def _summary(pairs: Sequence[Pair]) -> dict:
    n = len(pairs)
    credit = sum(p.credit for p in pairs)
    wins = sum(1 for p in pairs if p.credit == 1.0)
    losses = sum(1 for p in pairs if p.credit == 0.0)
    lo, hi = wilson_interval(credit, n)
    return {"pairs": n, "accuracy": credit / n if n else math.nan, "ci95": [lo, hi], "wins": wins, "losses": losses,
            "ties": n - wins - losses, "p_value": sign_test(wins, losses)}


def pair_accuracy(pairs: Sequence[Pair], by: Sequence[str] = ()) -> dict:
    """Overall accuracy figures, and the same per value of each `by` key ("voice" or an info key)."""
    out = _summary(pairs)
    for key in by:
        values: dict[str, list[Pair]] = {}
        for p in pairs:
            v = p.voice if key == "voice" else p.info.get(key)
            if v is not None:
                values.setdefault(str(v), []).append(p)
        if values:
            out[f"by_{key}"] = {v: _summary(ps) for v, ps in sorted(values.items())}
    return out
