#!/usr/bin/env python
"""Segment rate of the piecewise-constant quantizer against the true phone rate.

Trains the CPU-sized model twice on a synthetic corpus with exact phone alignments,
once with frame-wise VQ (pipelines/small.yaml, the baseline) and once with the
piecewise-constant VQ (pipelines/small-pcvq.yaml), extracts the test speakers'
units and prints, for each, units per second (repeats merged) against the true phone
rate, their ratio, and boundary precision / recall / F1 / R-value at 20 ms.

    python benchmarks/segment_rate.py --workdir /tmp/segrate [--minutes 6] [--steps 1000]

Everything goes through the `speechunits` CLI, as a user would run it; finished
steps are reused when the workdir already holds them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def speechunits(*args: str) -> None:
    exe = shutil.which("speechunits") or str(Path(sys.executable).parent / "speechunits")
    subprocess.run([exe, *args], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="/tmp/speechunits-segment-rate")
    p.add_argument("--minutes", type=float, default=6.0)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    work = Path(args.workdir)
    corpus, feats = work / "synthetic", work / "fbank"
    if not (corpus / "corpus.json").is_file():
        speechunits("prepare", "synthetic", str(corpus), "--minutes", str(args.minutes), "--seed", str(args.seed))
    if not (feats / "meta.json").is_file():
        speechunits("features", str(corpus / "data/all"), str(feats), "--type", "fbank", "--cmvn", "speaker")
    rows = []
    for name, config in (("frame-wise VQ", "small.yaml"), ("piecewise-constant VQ", "small-pcvq.yaml")):
        exp = work / config.removesuffix(".yaml")
        start = time.perf_counter()
        speechunits("train", str(ROOT / "pipelines" / config), "--exp-dir", str(exp), "--no-progress",
                    f"data.train_dir={corpus / 'data/train'}", f"data.input_feats={feats}",
                    f"data.target_feats={feats}", f"train.max_steps={args.steps}")
        speechunits("extract", str(exp), str(corpus / "data/test"), str(exp / "units_test"))
        speechunits("unit-metrics", str(exp / "units_test"), "--alignments", str(corpus / "data/test/alignments.ctm"),
                    "--output", str(exp / "unit_metrics.json"))
        m = json.loads((exp / "unit_metrics.json").read_text())
        rows.append((name, m, time.perf_counter() - start))
    print(f"synthetic corpus: {args.minutes} min, test speakers' phone rate (no silence) "
          f"{rows[0][1]['phone_rate']:.2f} phones/s; {args.steps} training steps each")
    print(f"{'model':24s} {'units/s':>8s} {'units/phone':>11s} {'bnd P':>6s} {'bnd R':>6s} {'bnd F1':>6s} "
          f"{'R-val':>6s} {'PNMI':>6s} {'wall s':>7s}")
    for name, m, wall in rows:
        b = m["boundaries"]
        print(f"{name:24s} {m['unit_rate']:8.2f} {m['units_per_phone']:11.2f} {b['precision']:6.3f} "
              f"{b['recall']:6.3f} {b['f1']:6.3f} {b['r_value']:6.3f} {m['pnmi']:6.3f} {wall:7.0f}")
    base, pcvq = rows[0][1], rows[1][1]
    print(f"segment rate / phone rate: piecewise-constant {pcvq['units_per_phone']:.2f}, "
          f"frame-wise {base['units_per_phone']:.2f} (ratio frame-wise / piecewise "
          f"{base['unit_rate'] / pcvq['unit_rate']:.2f}x)")


if __name__ == "__main__":
    main()
