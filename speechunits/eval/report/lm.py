"""The report's unit-LM parts, from EXP/lm/ (what the recipes' LM stage writes):

    EXP/lm/<name>/metrics.jsonl           a unit LM's training run (curves)
    EXP/lm/**/*.json "kind": "lm-score"   perplexities (`speechunits lm score --output`)
    EXP/lm/**/spoken_lm.json              spot-the-word / grammaticality accuracies (`speechunits lm eval`)
    EXP/lm/**/sample.json + <dir>/wav/    sampled or continued units and their resynthesis (audio players)
    EXP/lm/**/snippets.json               audio snippets of the most used units (`speechunits lm snippets`)

Each builder returns a Section or None when its part is absent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from speechunits.eval.report.writer import Section, _num

__all__ = ["lm_section", "lm_audio_section", "unit_snippet_section"]


def _jsons(root: Path, kind: str) -> list[tuple[Path, dict]]:
    out = []
    for p in sorted(root.rglob("*.json")):
        if ".parts" in p.parts or "checkpoints" in p.parts:
            continue
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("kind") == kind:
            out.append((p, data))
    return out


def lm_section(exp: Path, fig_dir: Path) -> Section | None:
    root = exp / "lm"
    if not root.is_dir():
        return None
    sec = Section("Unit language model")
    scores = _jsons(root, "lm-score")
    if scores:
        rows = [[f"`{p.relative_to(root).with_suffix('')}`", d.get("model", ""), str(d.get("tokens")),
                 _num(d.get("nll"), 4), _num(d.get("perplexity"), 3)] for p, d in scores]
        sec.text.append("First table: perplexity per token (units and each utterance's end) of held-out units; "
                        "the n-gram is the baseline.")
        sec.tables.append((["scores", "model", "tokens", "NLL (nats)", "perplexity"], rows))
    spoken = _jsons(root, "spoken-lm")
    if spoken:
        rows = []
        for p, d in spoken:
            for task, acc in d.get("tasks", {}).items():
                lo, hi = acc.get("ci95", [math.nan, math.nan])
                rows.append([f"`{p.parent.relative_to(root)}`", task, str(acc.get("pairs")),
                             f"{100 * acc['accuracy']:.1f}", f"{100 * lo:.1f}-{100 * hi:.1f}", f"{acc.get('p_value'):.2g}"])
        sec.text.append("Spot-the-word (lexical) and grammaticality (syntactic) accuracy in %: how often the LM prefers "
                        "the real word / the grammatical sentence (chance 50 %), with the 95 % Wilson interval and the "
                        "one-sided binomial p-value against chance.")
        sec.tables.append((["evaluation", "task", "pairs", "accuracy %", "95 % CI", "p"], rows))
    runs = sorted(p.parent for p in root.glob("*/metrics.jsonl"))
    for run in runs:
        from speechunits.eval.report.plots import plot_training_curves
        from speechunits.train.metrics import read_metrics

        png = plot_training_curves(read_metrics(run), fig_dir / f"lm_{run.name}_curves.png")
        if png:
            sec.figures.append((f"Unit LM `{run.name}`: train and dev loss (NLL per token) by step.", png))
    return sec if (sec.tables or sec.figures) else None


def lm_audio_section(exp: Path) -> Section | None:
    root = exp / "lm"
    if not root.is_dir():
        return None
    sec = Section("Sampled and continued speech")
    for p, d in _jsons(root, "lm-sample"):
        wavs = sorted((p.parent / "wav").glob("*.wav"))
        if not wavs:
            continue
        what = (f"continuations of the first {d.get('prompt_seconds')} s of test utterances" if d.get("prompt")
                else "samples from scratch")
        sec.text.append(f"`{p.parent.relative_to(root)}`: {what} (temperature {d.get('temperature')}, "
                        f"top-k {d.get('top_k') or 'all'}), units decoded by the autoencoder.")
        prompts = d.get("prompt_units") or {}
        for w in wavs:
            note = f" (first {prompts[w.stem]} units from the prompt)" if w.stem in prompts else ""
            sec.audio.append((f"{w.stem}{note}", w))
    return sec if sec.audio else None


def unit_snippet_section(exp: Path) -> Section | None:
    root = exp / "lm"
    found = _jsons(root, "unit-snippets") if root.is_dir() else []
    if not found:
        return None
    p, d = found[0]
    sec = Section("Listening to units")
    sec.text.append(f"The {len(d['units'])} most used units, a few occurrences each (with {d.get('context')} s "
                    "of context on both sides).")
    for u in d["units"]:
        for s in u["snippets"]:
            sec.audio.append((f"unit {u['unit']} ({u['count']} occurrences): {s['utt']} {s['start']:.2f}-{s['end']:.2f} s",
                              p.parent / s["file"]))
    return sec
