#!/usr/bin/env python
"""The quality table: ABX of every system's dense tap and units beside the MFCC and
k-means-on-MFCC baselines, with unit metrics and training time (issue #13).

    python benchmarks/quality.py --data egs/speechocean762/data/so762/data/dev \\
        --mfcc-dev egs/speechocean762/feats/mfcc_dd --mfcc-train egs/speechocean762/feats/mfcc_dd \\
        --train-data egs/speechocean762/data/so762/data/train --workdir /tmp/quality \\
        vq=egs/speechocean762/exp/vq pcvq=egs/speechocean762/exp/pcvq

A system is NAME=EXP_DIR (a `speechunits train` experiment dir: `speechunits extract
EXP_DIR DATA --tap TAP` runs into the work dir, or is reused) or NAME:DENSE_DIR[:UNITS_DIR]
(outputs that exist already: a feature dir for ABX, and a unit folder, e.g. an extract
output, for ABX on its codes/ and the unit metrics).

For every system, on DATA's phone.item (context any) and triphone.item (context
within), within and across speakers (angular distance, the toolkit's default
subsampling): ABX of the dense tap and of the units (codes/, one-hot), beside the
MFCC dir and k-means on MFCC at the same K (`speechunits kmeans fit` on the train
MFCC, restricted to --train-data's utterances when given, then `kmeans apply` to
DATA's utterances), with the ratios system / MFCC (dense) and system / k-means-MFCC
(units): below 1 is better. Units also get PNMI, phone purity and bitrate against
DATA/alignments.ctm (speechunits.eval.unit_metrics), and systems their training time
(the `final` events of EXP_DIR/metrics.jsonl). K is the system's codebook size (from
EXP_DIR/config.yaml, or of the model named in UNITS_DIR/extract.json, or
UNITS_DIR/kmeans.json's k), else --k, else the largest unit id + 1.

Writes WORKDIR/quality.md (a Markdown table a README can quote) and quality.json, and
prints the table. Every intermediate result is cached in WORKDIR (ABX scores, unit
metrics, k-means models and units, extractions) and reused while its inputs are the
same, so a rerun, or adding a system, is quick; delete WORKDIR to start over.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# (item level, context, speaker): the table's columns, in order
CONDITIONS = [("phone", "any", "within"), ("phone", "any", "across"),
              ("triphone", "within", "within"), ("triphone", "within", "across")]


def speechunits(*args: str, log: Path) -> None:
    """Run a `speechunits` command; its output goes to `log` (named in the error)."""
    exe = shutil.which("speechunits") or str(Path(sys.executable).parent / "speechunits")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        f.write("# " + " ".join([exe, *args]) + "\n")
        f.flush()
        done = subprocess.run([exe, *args], stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise SystemExit(f"speechunits {args[0]} failed (exit {done.returncode}), log {log}:\n{tail}")


@dataclass
class Rep:
    """One row: a representation scored by ABX (and, for units, by the unit metrics)."""

    key: str                   # cache key, unique
    system: str                # the table's first column
    what: str                  # dense tap, units (K=...), ...
    features: Path             # the ABX input (feature dir or codes/)
    units: Path | None = None  # unit folder (units.jsonl) for the unit metrics
    k: int | None = None
    baseline: str | None = None  # key of the row the ratios are taken against
    training: str = ""
    abx: dict = field(default_factory=dict)      # "level.speaker" -> percent
    triplets: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # pnmi, phone_purity, bitrate, ...


@dataclass
class System:
    name: str
    exp: Path | None
    dense: Path | None
    units: Path | None


def parse_system(text: str) -> System:
    if "=" in text:
        name, exp = text.split("=", 1)
        return System(name, Path(exp), None, None)
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise SystemExit(f"a system is NAME=EXP_DIR or NAME:DENSE_DIR[:UNITS_DIR], got {text!r}")
    return System(parts[0], None, Path(parts[1]) if parts[1] else None, Path(parts[2]) if len(parts) == 3 else None)


def codebook_size(exp: Path) -> int | None:
    import yaml

    path = exp / "config.yaml"
    if not path.is_file():
        return None
    model = (yaml.safe_load(path.read_text()) or {}).get("model", {})
    size = ((model.get("bottleneck_cfg") or {}).get("codebook") or {}).get("size")
    return int(size) if size is not None and model.get("bottleneck") in ("vq", "pcvq") else None


def training_time(exp: Path) -> str:
    """'N steps, T min' from EXP/metrics.jsonl ('final' events: every run of a resumed training)."""
    path = exp / "metrics.jsonl"
    if not path.is_file():
        return ""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    finals = [e for e in events if e.get("split") == "final"]
    steps = max((e.get("step", 0) for e in events), default=0)
    if not finals:
        return f"{steps:,} steps (unfinished)"
    wall = sum(e.get("wall_seconds", 0.0) for e in finals)
    return f"{steps:,} steps, {wall / 60:.1f} min"


def units_k(units: Path) -> int:
    """K of a unit folder: kmeans.json's k, the codebook size of extract.json's model, else
    the largest unit id + 1."""
    from speechunits.units.formats import read_units

    if (units / "kmeans.json").is_file():
        return int(json.loads((units / "kmeans.json").read_text())["k"])
    if (units / "extract.json").is_file():
        model = json.loads((units / "extract.json").read_text()).get("model")
        if model and Path(model).is_file():
            from speechunits.models.checkpoint import load_checkpoint

            cfg = load_checkpoint(model)["config"]["model"]
            size = ((cfg.get("bottleneck_cfg") or {}).get("codebook") or {}).get("size")
            if size is not None:
                return int(size)
    return max(int(s.units.max()) for s in read_units(units).values() if s.units.size) + 1


def cached(path: Path, inputs: dict, compute) -> dict:
    """The JSON at `path` if it was made from the same `inputs`, else compute() saved there."""
    from speechunits.fileio import write_json

    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("inputs") == inputs:
            return old
    record = {"inputs": inputs, **compute()}
    write_json(path, record)
    return record


def score_abx(rep: Rep, data: Path, work: Path, items: dict) -> None:
    from speechunits.data.featdir import open_feature_source
    from speechunits.eval.abx import AbxConfig, compute_abx

    source = open_feature_source(rep.features)
    for level, context, speaker in CONDITIONS:
        item_file = data / f"{level}.item"
        inputs = {"features": str(rep.features.resolve()), "item": str(item_file.resolve()), "speaker": speaker,
                  "context": context, "stamp": _stamp(rep.features)}

        def compute():
            if level not in items:
                from speechunits.data.items import read_items

                items[level] = read_items(item_file)
            t0 = time.perf_counter()
            result = compute_abx(items[level], source, source.frame_shift, AbxConfig(speaker=speaker, context=context))
            return {**result.to_dict(), "seconds": time.perf_counter() - t0}

        record = cached(work / "abx" / f"{rep.key}.{level}.{speaker}.json", inputs, compute)
        rep.abx[f"{level}.{speaker}"] = record["score"]
        rep.triplets[f"{level}.{speaker}"] = record.get("n_triplets")


def score_units(rep: Rep, data: Path, work: Path) -> None:
    from speechunits.data.ctm import read_ctm
    from speechunits.eval.unit_metrics import UnitMetricsConfig, compute_unit_metrics
    from speechunits.units.formats import read_units

    ctm = data / "alignments.ctm"
    inputs = {"units": str(rep.units.resolve()), "alignments": str(ctm.resolve()), "k": rep.k,
              "stamp": _stamp(rep.units)}

    def compute():
        m = compute_unit_metrics(read_units(rep.units), read_ctm(ctm), None, UnitMetricsConfig(codebook_size=rep.k))
        d = m.to_dict()
        return {k: d[k] for k in ("pnmi", "phone_purity", "cluster_purity", "bitrate", "used_codes", "unit_rate",
                                  "phone_rate", "n_frames") if k in d}

    rep.metrics = cached(work / "metrics" / f"{rep.key}.json", inputs, compute)


def _stamp(path: Path) -> list:
    """What says a feature or unit folder changed (and not a rewrite of the same files):
    the number and total size of its files, and a hash of its small text files."""
    import hashlib
    import os

    digest, count, size = hashlib.sha1(), 0, 0
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.is_file() and not entry.name.startswith("."):
            count, size = count + 1, size + entry.stat().st_size
            if entry.name in ("units.jsonl", "meta.json", "frame_shift", "feats.scp"):
                digest.update(entry.name.encode() + Path(entry.path).read_bytes())
    return [count, size, digest.hexdigest()]


def finished(out: Path, data: Path, model: Path | None = None) -> bool:
    """Whether an extract / kmeans apply output in `out` holds every utterance of `data`
    (and was made after the checkpoints of `model`, a file or an experiment dir, changed)."""
    utt2spk = data / "utt2spk"
    if not (out / ".parts").is_dir() or not utt2spk.is_file():
        return False
    if model is not None:
        made = min((p.stat().st_mtime for p in out.glob("*.json")), default=0.0)
        ckpts = [model] if model.is_file() else list(model.glob("*.pt"))
        if any(p.stat().st_mtime > made for p in ckpts):
            return False
    utts = [line.split()[0] for line in utt2spk.read_text().splitlines() if line.strip()]
    return all((out / ".parts" / f"{u}.json").is_file() for u in utts)


def kmeans_rep(k: int, args, work: Path) -> Rep:
    """k-means on the train MFCC at K, applied to DATA's utterances (cached in WORK/kmeans)."""
    model = work / "kmeans" / f"mfcc_k{k}.pt"
    out = work / "kmeans" / f"mfcc_k{k}_dev"
    fitted_on = {"features": str(args.mfcc_train), "seed": args.seed, "utts": str(args.train_data)}
    record = work / "kmeans" / f"mfcc_k{k}.json"
    if model.is_file() and (not record.is_file() or json.loads(record.read_text()) != fitted_on):
        model.unlink()  # fitted on something else: fit again
        shutil.rmtree(out, ignore_errors=True)
    if not model.is_file():
        utts = ["--utts", str(args.train_data)] if args.train_data else []
        speechunits("kmeans", "fit", str(args.mfcc_train), str(model), "--k", str(k), "--seed", str(args.seed),
                    *utts, log=work / "log" / f"kmeans_fit_k{k}.log")
        from speechunits.fileio import write_json

        write_json(record, fitted_on)
    if not finished(out, args.data, model):
        speechunits("kmeans", "apply", str(model), str(args.mfcc_dev), str(out), "--utts", str(args.data),
                    log=work / "log" / f"kmeans_apply_k{k}.log")
    import torch

    info = torch.load(model, weights_only=True)["info"]
    return Rep(f"kmeans_mfcc_k{k}", f"k-means on MFCC, K={k}", "units", out / "codes", out, k, None,
               f"fit {info['seconds']:.0f} s on {info['frames']:,} frames")


def system_reps(system: System, args, work: Path) -> list[Rep]:
    dense, units, k, training = system.dense, system.units, args.k, ""
    if system.exp is not None:
        out = work / "systems" / system.name
        opts = ["--base-dir", str(args.base_dir)] if args.base_dir else []
        if not finished(out, args.data, system.exp):
            speechunits("extract", str(system.exp), str(args.data), str(out), "--tap", args.tap, "--nj",
                        str(args.nj), "--device", args.device, *opts, log=work / "log" / f"extract_{system.name}.log")
        dense = out / "dense"
        units = out if (out / "units.jsonl").is_file() else None
        k = codebook_size(system.exp) or k
        training = training_time(system.exp)
    reps = []
    if dense is not None:
        reps.append(Rep(f"{system.name}.dense", system.name, f"dense ({args.tap})" if system.exp else "dense",
                        dense, baseline="mfcc", training=training))
    if units is not None:
        k = k or units_k(units)
        codes = units / "codes" if (units / "codes").is_dir() else None
        if codes is None:
            raise SystemExit(f"{units}: no codes/ folder (frame-level codes) for ABX on the units")
        reps.append(Rep(f"{system.name}.units", system.name, f"units (K={k})", codes, units, k,
                        baseline=f"kmeans_mfcc_k{k}", training=training))
    return reps


def fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def table(reps: list[Rep]) -> str:
    by_key = {r.key: r for r in reps}
    head = ["system", "representation"] + [f"{lv} ({ctx} ctx), {spk} spk" for lv, ctx, spk in CONDITIONS] + [
        "PNMI", "phone purity", "bitrate (bit/s)", "training / fit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for r in reps:
        base = by_key.get(r.baseline) if r.baseline else None
        cells = []
        for lv, _, spk in CONDITIONS:
            score = r.abx.get(f"{lv}.{spk}")
            cell = fmt(score)
            if base is not None and score is not None and base.abx.get(f"{lv}.{spk}"):
                cell += f" ({score / base.abx[f'{lv}.{spk}']:.2f}x)"
            cells.append(cell)
        m = r.metrics
        cells += [fmt(m.get("pnmi"), 3), fmt(m.get("phone_purity"), 3), fmt(m.get("bitrate"), 1), r.training]
        lines.append("| " + " | ".join([r.system, r.what, *cells]) + " |")
    triplets = reps[0].triplets if reps else {}
    lines.append("| triplets scored (MFCC) | | " + " | ".join(
        f"{triplets.get(f'{lv}.{spk}') or 0:,}" for lv, _, spk in CONDITIONS) + " | | | | |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("systems", nargs="*", help="NAME=EXP_DIR or NAME:DENSE_DIR[:UNITS_DIR]")
    p.add_argument("--data", type=Path, required=True,
                   help="evaluation data dir: phone.item, triphone.item, alignments.ctm (and wav.scp for extract)")
    p.add_argument("--mfcc-dev", type=Path, required=True, help="MFCC feature dir holding DATA's utterances")
    p.add_argument("--mfcc-train", type=Path, help="MFCC feature dir k-means is fitted on (default: --mfcc-dev)")
    p.add_argument("--train-data", type=Path,
                   help="fit k-means on this data dir's utterances only (when --mfcc-train holds more)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/speechunits-quality"))
    p.add_argument("--k", type=int, help="K of systems whose codebook size is unknown (default: largest unit + 1)")
    p.add_argument("--kmeans", type=int, nargs="*", default=[], help="k-means-on-MFCC rows for these K as well")
    p.add_argument("--tap", default="projection", help="tap extracted from EXP_DIR systems (default: %(default)s)")
    p.add_argument("--nj", type=int, default=1, help="extract processes (default: 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--base-dir", type=Path, help="folder that DATA's relative wav.scp paths are relative to")
    p.add_argument("--seed", type=int, default=0, help="k-means seed (default: 0)")
    args = p.parse_args()
    args.mfcc_train = args.mfcc_train or args.mfcc_dev
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    for name in ("phone.item", "triphone.item", "alignments.ctm"):
        if not (args.data / name).is_file():
            raise SystemExit(f"{args.data}: no {name}")
    if args.mfcc_train.resolve() == args.mfcc_dev.resolve() and not args.train_data:
        print("note: k-means is fitted on --mfcc-dev's utterances, DATA's included (give --train-data)",
              file=sys.stderr)

    start = time.perf_counter()
    systems = [parse_system(s) for s in args.systems]
    reps = [Rep("mfcc", "MFCC", "dense", args.mfcc_dev)]
    learned = [r for s in systems for r in system_reps(s, args, work)]
    ks = sorted({r.k for r in learned if r.k} | set(args.kmeans))
    reps += [kmeans_rep(k, args, work) for k in ks] + learned
    items: dict = {}
    for rep in reps:
        score_abx(rep, args.data, work, items)
        if rep.units is not None:
            score_units(rep, args.data, work)
        print(f"{rep.system} / {rep.what}: " + ", ".join(f"{c} {s:.2f}" for c, s in rep.abx.items()), file=sys.stderr)

    from speechunits.fileio import write_json, write_text

    md = table(reps)
    note = (f"ABX error in % on {args.data} (angular, DTW, at most 10 tokens per cell and 5 X speakers); "
            "in brackets: the system / MFCC (dense) or / k-means on MFCC at the same K (units); below 1 is better.")
    write_text(work / "quality.md", md + "\n\n" + note + "\n")
    write_json(work / "quality.json", {
        "data": str(args.data), "mfcc_dev": str(args.mfcc_dev), "mfcc_train": str(args.mfcc_train),
        "train_data": str(args.train_data) if args.train_data else None, "tap": args.tap,
        "conditions": [{"items": lv, "context": c, "speaker": s} for lv, c, s in CONDITIONS],
        "rows": [{"key": r.key, "system": r.system, "representation": r.what, "features": str(r.features),
                  "units": str(r.units) if r.units else None, "k": r.k, "baseline": r.baseline,
                  "abx": r.abx, "triplets": r.triplets,
                  "metrics": {k: v for k, v in r.metrics.items() if k != "inputs"}, "training": r.training}
                 for r in reps],
    })
    print(md)
    print(f"\n{note}\nwritten: {work / 'quality.md'}, {work / 'quality.json'} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
