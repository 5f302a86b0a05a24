"""`speechunits report EXP_DIR`: report.md + report.html with tables and plots."""

from __future__ import annotations

import argparse

from speechunits.cli import COMMANDS


@COMMANDS.register("report")
class ReportCommand:
    """Write an experiment report (Markdown + self-contained HTML, PNG figures).

    Collects whatever EXP_DIR holds and lists the rest as missing:
      EXP/metrics.jsonl                      training curves (loss, reconstruction, perplexity, codes used)
      "kind": "probes" JSON                  the probe table (speechunits probe writes EXP/probes/probes.json)
      ABX JSON (speechunits abx --output)    the ABX table, one row per file, labelled by its path, e.g. EXP/abx/*.json
      "kind": "unit-metrics" JSON            the unit metrics table and the code-phone co-occurrence heatmap
      units (a unit-metrics file's "units", or a units.jsonl under EXP) + alignments + log-mel features
                                             segmentation plots of a few utterances
    Needs matplotlib (pip install 'speechunits[plots]').

    Examples:
      speechunits report exp/small
      speechunits report exp/small --out /tmp/report --alignments data/test/alignments.ctm --fbank feats/test/fbank
    """

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("exp_dir", help="experiment folder")
        p.add_argument("--out", help="output folder (default: EXP_DIR/report)")
        p.add_argument("--alignments", help="CTM for the segmentation plots (default: recorded by unit-metrics / probe)")
        p.add_argument("--fbank", help="log-mel feature dir for the spectrograms (default: recorded ones)")
        p.add_argument("--units", help="units for the segmentation plots (default: see above)")
        p.add_argument("--utterances", type=int, default=3, help="segmentation plots (default: %(default)s)")
        p.add_argument("--max-seconds", type=float, default=2.0, help="seconds shown per plot (default: %(default)s)")

    def run(self, args: argparse.Namespace) -> int:
        from speechunits.eval.report import ReportConfig, write_report

        cfg = ReportConfig(alignments=args.alignments, fbank=args.fbank, units=args.units,
                           n_utterances=args.utterances, max_seconds=args.max_seconds)
        out = write_report(args.exp_dir, args.out, cfg)
        print(f"report: {out.markdown} and {out.html} ({len(out.figures)} figures)")
        for m in out.missing:
            print(f"report: missing: {m}")
        return 0
