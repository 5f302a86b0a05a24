#!/usr/bin/env python3
"""Summarise a recipe's experiment folder as Markdown tables (RESULTS-style).

    python utils/summarize_results.py exp --systems mfcc vq pcvq --out exp/RESULTS.md

Reads what the recipe stages wrote under EXP (each table is left out when nothing
feeds it):

    EXP/<system>/abx/<rep>.<level>.<speaker>.json   speechunits abx --output
    EXP/<system>/metrics.jsonl                      speechunits train
    EXP/<system>/unit_metrics.json                  speechunits unit-metrics --output
    EXP/<system>/probes/probes.json                 speechunits probe

With the baselines `mfcc` (dense) and `kmeans-mfcc` (units) among the systems, a
quality table puts every other system's dense ABX over MFCC's and its units' ABX and
PNMI over k-means-on-MFCC's (issue #13's criteria; below 1 is better for ABX, above 1
for PNMI); units are compared only at the same number of clusters.

`--seeds NAME=SYS1,SYS2,...` adds a table of means and sample standard deviations over
runs of one model that differ only in their seed (each SYS a system folder), with the
ratios of the means to the baselines: one run's figures move by up to a point of ABX
between seeds, more than most differences between settings.

A recipe's ABX files are named `<rep>.<level>.<speaker>.json`, rep being what was
scored (mfcc, dense, codes), level the item set (triphone, phone; or a test subset
such as 1s, 10s), speaker within/across; one column per level and speaker. The row of an ABX file is "<system>" when rep equals the system,
else "<system> <rep>".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _level_key(level: str) -> tuple:
    """triphone, phone, then durations (1s < 10s < 120s), then anything else."""
    if level in ("triphone", "phone"):
        return (0, ("triphone", "phone").index(level), 0.0, level)
    if level.endswith("s") and level[:-1].replace(".", "", 1).isdigit():
        return (1, 0, float(level[:-1]), level)
    return (2, 0, 0.0, level)


def abx_section(exp: Path, systems: list[str]) -> list[str]:
    scores: dict[str, dict[tuple[str, str], float]] = {}
    contexts: dict[str, str] = {}
    triplets: dict[tuple[str, str], int] = {}
    meta = None
    for system in systems:
        by_rep: dict[str, dict] = {}
        for path in sorted((exp / system / "abx").glob("*.json")):
            parts = path.name[: -len(".json")].split(".")
            if len(parts) < 3 or parts[-1] not in ("within", "across"):
                continue
            rep, level, speaker = ".".join(parts[:-2]), parts[-2], parts[-1]
            data = json.loads(path.read_text())
            by_rep.setdefault(rep, {})[(level, speaker)] = data["score"]
            contexts[level] = data.get("context", "?")
            triplets.setdefault((level, speaker), data.get("n_triplets"))
            meta = meta or data
        for rep in sorted(by_rep, key=lambda r: (r != system, r != "dense", r)):
            scores[system if rep == system else f"{system} {rep}"] = by_rep[rep]
    if not scores:
        return []
    levels = sorted(contexts, key=_level_key)
    columns = [(lvl, spk) for lvl in levels for spk in ("within", "across")]
    header = ["system"] + [f"{lvl} ({contexts[lvl]} ctx), {spk} spk" for lvl, spk in columns]
    rows = [[label] + [_fmt(s.get(c)) for c in columns] for label, s in scores.items()]
    rows.append(["(triplets scored)"] + [_fmt(triplets.get(c)) for c in columns])
    opts = meta.get("options", {})
    note = (f"ABX error in % (lower is better); distance {meta.get('distance', '?')}, at most "
            f"{opts.get('max_size_group', '?')} tokens per cell and {opts.get('max_x_across', '?')} X speakers, "
            f"seed {opts.get('seed', '?')}; item files in {Path(meta.get('item_file', '?')).parent}.")
    return ["## ABX", "", *_table(header, rows), "", note, ""]


def _abx_scores(exp: Path, system: str, rep: str) -> dict[tuple[str, str], float]:
    out = {}
    for level in ("phone", "triphone"):
        for speaker in ("within", "across"):
            path = exp / system / "abx" / f"{rep}.{level}.{speaker}.json"
            if path.is_file():
                out[(level, speaker)] = json.loads(path.read_text())["score"]
    return out


def _ratio(a, b) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def quality_section(exp: Path, systems: list[str], dense_base: str = "mfcc", units_base: str = "kmeans-mfcc") -> list[str]:
    if dense_base not in systems or units_base not in systems:
        return []
    columns = [("phone", "within"), ("phone", "across"), ("triphone", "within"), ("triphone", "across")]
    mfcc = _abx_scores(exp, dense_base, dense_base)
    km = _abx_scores(exp, units_base, "codes")
    km_metrics = _unit_metrics(exp, units_base)
    rows = []
    for system in systems:
        if system in (dense_base, units_base):
            continue
        dense = _abx_scores(exp, system, "dense")
        if dense:
            rows.append([f"{system} dense / MFCC"] + [_ratio(dense.get(c), mfcc.get(c)) for c in columns] + ["-"])
        codes, metrics = _abx_scores(exp, system, "codes"), _unit_metrics(exp, system)
        if codes:
            same_k = metrics.get("codebook_size") == km_metrics.get("codebook_size")
            label = f"{system} units / k-means on MFCC (K={metrics.get('codebook_size', '?')})"
            if same_k:
                rows.append([label] + [_ratio(codes.get(c), km.get(c)) for c in columns]
                            + [_ratio(metrics.get("pnmi"), km_metrics.get("pnmi"))])
            else:
                rows.append([label + f": not the baseline's K={km_metrics.get('codebook_size', '?')}"] + ["-"] * 5)
    return _cells_section("Quality: learned against the baselines", "ratio", columns, rows,
                          "ABX ratios below 1 and PNMI ratios above 1 favour the system over the baseline. Every "
                          "system but mfcc and kmeans-mfcc has rows, a recipe's extra baselines (such as "
                          "mfcc-nolifter) included. Issue #13 asks of the learned systems "
                          "dense across <= 0.75 and within <= 1, units <= 1 everywhere with PNMI >= 1.3.")


def _cells_section(title: str, first: str, columns: list[tuple[str, str]], rows: list[list[str]], note: str) -> list[str]:
    """A section of one table: a first column, one per (level, speaker) cell, then PNMI."""
    if not rows:
        return []
    header = [first, *(f"{lvl}, {spk} spk" for lvl, spk in columns), "PNMI"]
    return [f"## {title}", "", *_table(header, rows), "", note, ""]


def _mean_sd(values: list[float], digits: int = 2) -> str:
    """"mean ± sd" of a cell's values ("-" for the sd of a single value)."""
    if not values:
        return "-"
    sd = f"{statistics.stdev(values):.{digits}f}" if len(values) > 1 else "-"
    return f"{statistics.fmean(values):.{digits}f} ± {sd}"


def seeds_section(exp: Path, groups: dict[str, list[str]], dense_base: str = "mfcc", units_base: str = "kmeans-mfcc") -> list[str]:
    """Mean ± sample standard deviation of each ABX cell (dense and units) and of PNMI over
    each group's systems (runs differing only in their seed), and the ratios of the means
    to the baselines' figures (when their folders hold them)."""
    if not groups:
        return []
    columns = [("phone", "within"), ("phone", "across"), ("triphone", "within"), ("triphone", "across")]
    base = {"dense": _abx_scores(exp, dense_base, dense_base), "codes": _abx_scores(exp, units_base, "codes")}
    base_metrics = _unit_metrics(exp, units_base)
    rows = []
    for name, systems in groups.items():
        for rep, label in (("dense", "dense"), ("codes", "units")):
            scores = [_abx_scores(exp, s, rep) for s in systems]
            cells = [[sc[c] for sc in scores if c in sc] for c in columns]
            if not any(cells):
                continue
            metrics = [_unit_metrics(exp, s) for s in systems] if rep == "codes" else []
            pnmi = [m["pnmi"] for m in metrics if "pnmi" in m]
            shown = [_mean_sd(v) + ("" if len(v) == len(systems) else f" ({len(v)})") for v in cells]
            rows.append([f"{name} {label} ({len(systems)} seeds)"] + shown + [_mean_sd(pnmi, 3) if pnmi else "-"])
            label_base = "MFCC" if rep == "dense" else "k-means on MFCC"
            ks = {m.get("codebook_size") for m in metrics}
            if rep == "codes" and ks != {base_metrics.get("codebook_size")}:
                rows.append([f"{name} {label}: K={'/'.join(str(k) for k in sorted(ks, key=str))}, not the baseline's "
                             f"K={base_metrics.get('codebook_size', '?')}"] + ["-"] * 5)
                continue
            means = [statistics.fmean(v) if v else None for v in cells]
            pnmi_ratio = _ratio(statistics.fmean(pnmi), base_metrics.get("pnmi")) if pnmi else "-"
            rows.append([f"{name} {label}: mean / {label_base}"]
                        + [_ratio(m, base[rep].get(c)) for m, c in zip(means, columns)] + [pnmi_ratio])
    return _cells_section("Over seeds", "system", columns, rows,
                          "Mean ± sample standard deviation over runs that differ only in their seed, and the "
                          "ratios of the means to the baselines.")


def _unit_metrics(exp: Path, system: str) -> dict:
    path = exp / system / "unit_metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def training_section(exp: Path, systems: list[str]) -> list[str]:
    rows = []
    for system in systems:
        path = exp / system / "metrics.jsonl"
        if not path.is_file():
            continue
        train = dev = final = epoch = best = None
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            split = rec.get("split")
            if split == "train":
                train = rec
            elif split == "dev":
                dev = rec
                if rec.get("loss") is not None and (best is None or rec["loss"] < best["loss"]):
                    best = rec
            elif split == "final":
                final = rec
            elif split == "epoch":
                epoch = rec
        step = (final or train or {}).get("step")
        wall = final.get("wall_seconds") if final else None
        usage = dev if dev and "used_codes" in dev else epoch
        rows.append([
            system,
            _fmt(step),
            f"{wall / 60:.1f}" if wall is not None else "(running)",
            _fmt(train.get("loss") if train else None, 3),
            _fmt(dev.get("loss") if dev else None, 3),
            f"{best['loss']:.3f} ({best['step']})" if best else "-",
            _fmt(usage.get("used_codes") if usage else None, 0),
            _fmt(usage.get("perplexity") if usage else None, 1),
            _fmt(dev.get("gap_shuffled") if dev else None, 3),
        ])
    if not rows:
        return []
    header = ["model", "steps", "wall min", "train loss", "dev loss", "best dev loss (step)", "codes used",
              "code perplexity", "dev gap (shuffled latents)"]
    return ["## Training", "", *_table(header, rows), "",
            "Losses at the last log / evaluation (best.pt, which the later stages use, is the checkpoint "
            "of the best dev loss); codes used and perplexity over the last dev evaluation "
            "(or the last epoch); the gap is the dev reconstruction loss with shuffled latents minus "
            "with the true ones (near 0: the decoder ignores the latents).", ""]


def unit_metrics_section(exp: Path, systems: list[str]) -> list[str]:
    rows = []
    for system in systems:
        path = exp / system / "unit_metrics.json"
        if not path.is_file():
            continue
        d = json.loads(path.read_text())
        b = d.get("boundaries", {})
        rows.append([
            system,
            f"{d.get('used_codes')}/{d.get('codebook_size')}",
            _fmt(d.get("perplexity"), 1),
            _fmt(d.get("unit_rate"), 1),
            _fmt(d.get("phone_rate"), 1),
            _fmt(d.get("phone_purity"), 3),
            _fmt(d.get("cluster_purity"), 3),
            _fmt(d.get("pnmi"), 3),
            _fmt(d.get("v_measure"), 3),
            _fmt(b.get("f1"), 3),
            _fmt(b.get("r_value"), 3),
            _fmt(d.get("bitrate"), 1),
        ])
    if not rows:
        return []
    header = ["model", "codes used", "code perplexity", "units/s", "phones/s", "phone purity", "cluster purity",
              "PNMI", "V-measure", "boundary F1", "R-value", "bitrate (bit/s)"]
    return ["## Unit metrics", "", *_table(header, rows), "",
            "Frame-level scores of the codes against the forced alignments (silence is a phone class); "
            "units/s after merging repeats; boundaries within ±20 ms.", ""]


def probes_section(exp: Path, systems: list[str]) -> list[str]:
    out = []
    for system in systems:
        path = exp / system / "probes" / "probes.json"
        if not path.is_file():
            continue
        d = json.loads(path.read_text())
        results = d.get("results", [])
        columns: list[tuple[str, str, str]] = []
        cell: dict[tuple, float] = {}
        base: dict[tuple, float] = {}
        taps: list[str] = []
        for r in results:
            key = (r["target"], r["split"], r["head"])
            if key not in columns:
                columns.append(key)
            if r["tap"] not in taps:
                taps.append(r["tap"])
            value = r["value"]
            cell[(r["tap"], *key)] = value
            base[key] = r.get("baseline")
        order = {"phone": 0, "speaker": 1, "gender": 2, "fbank": 3}
        columns.sort(key=lambda k: (order.get(k[0], 9), k[1] != "utterance", k[2]))

        def show(target, value):
            if value is None:
                return "-"
            return f"{value:.3f}" if target == "fbank" else f"{100 * value:.1f}"

        header = ["tap"] + [f"{t}{' (unseen spk)' if s == 'speaker' else ''} {h}" for t, s, h in columns]
        rows = [[tap] + [show(k[0], cell.get((tap, *k))) for k in columns] for tap in taps]
        rows.append(["majority baseline"] + [show(k[0], base.get(k)) for k in columns])
        meta = d.get("meta", {})
        out += [f"### Probes: {system}", "", *_table(header, rows), "",
                f"{meta.get('n_utterances', '?')} utterances of {meta.get('data', '?')}, "
                f"{meta.get('n_speakers', '?')} speakers; checkpoint step {meta.get('step', '?')}.", ""]
    if not out:
        return []
    return ["## Probes", "",
            "Accuracy in % (phone, speaker, gender), R² for the fbank frame; linear and one-hidden-layer MLP "
            "heads on frozen taps; unseen spk = phone probes tested on speakers left out of probe training.",
            "", *out]


def summarize(exp: Path, systems: list[str], title: str, command: str = "", note: str = "",
              seeds: dict[str, list[str]] | None = None) -> str:
    if not systems:
        systems = sorted(p.name for p in exp.iterdir() if p.is_dir() and p.name != "log")
    lines = [f"# {title}", ""]
    if command:
        lines += [f"Command: `{command.strip()}`" + (f" ({note})" if note else ""), ""]
    for section in (abx_section, quality_section, training_section, unit_metrics_section, probes_section):
        lines += section(exp, systems)
        if section is quality_section:
            lines += seeds_section(exp, seeds or {})
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp", type=Path, help="the recipe's experiment folder")
    p.add_argument("--systems", nargs="*", default=[], help="sub-folders to report, in order (default: all)")
    p.add_argument("--title", default="Results")
    p.add_argument("--out", type=Path, help="write here (default: stdout)")
    p.add_argument("--command", default="", help="the recipe command line that produced the results")
    p.add_argument("--note", default="", help="said after the command (e.g. how long the run took)")
    p.add_argument("--seeds", action="append", default=[], metavar="NAME=SYS1,SYS2,...",
                   help="a table of mean ± sd over these systems (runs differing only in their seed); repeatable")
    args = p.parse_args(argv)
    seeds = {}
    for spec in args.seeds:
        name, _, members = spec.partition("=")
        systems = [m for m in members.split(",") if m]
        if not name or not systems:
            p.error(f"--seeds {spec!r}: expected NAME=SYS1,SYS2,...")
        missing = [m for m in systems if not (args.exp / m).is_dir()]
        if missing:
            p.error(f"--seeds {name}: no folder {', '.join(str(args.exp / m) for m in missing)}")
        seeds[name] = systems
    text = summarize(args.exp, args.systems, args.title, args.command, args.note, seeds)
    if args.out:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
