"""`speechunits unit-metrics UNITS --alignments CTM`: how units relate to phone alignments."""

from __future__ import annotations

import argparse
from pathlib import Path

from speechunits.cli import COMMANDS


@COMMANDS.register("unit-metrics")
class UnitMetricsCommand:
    """Score discrete units against phone alignments.

    UNITS is a `speechunits extract` output folder, its units.jsonl, or a units.txt
    (durations.txt beside it). Units are expanded to one code per latent frame;
    each frame takes the phone whose segment holds its centre. Prints and writes
    (--output, JSON with "kind": "unit-metrics"):

      phone purity, cluster purity, PNMI, homogeneity / completeness / V-measure,
      NMI, adjusted Rand index (frame level; silence is a phone class);
      bitrate (ZeroSpeech 2019 N/D*H over the deduplicated units; bitrate_frames
      over frames), unit rate vs phone rate (non-silence phones per second),
      codebook usage and perplexity;
      boundary precision / recall / F1 / R-value at --tolerance (one-to-one
      matching; utterance start and end are not boundaries);
      and the phone x code contingency table (for the report's heatmap).

    Examples:
      speechunits unit-metrics units/test --alignments data/test/alignments.ctm --output exp/small/unit_metrics.json
      speechunits unit-metrics units/test/units.txt --alignments ali.ctm --frame-shift 0.02
    """

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("units", help="extract output folder, units.jsonl, or units.txt")
        p.add_argument("--alignments", required=True, help="CTM phone alignments (utt 1 start dur phone)")
        p.add_argument("--frame-shift", type=float, default=None,
                       help="unit frame shift in seconds (default: from the unit files)")
        p.add_argument("--tolerance", type=float, default=0.02, help="boundary tolerance in seconds (default: 0.02)")
        p.add_argument("--codebook-size", type=int, default=None,
                       help="codebook size for the usage share (default: from the extract folder's meta.json if any)")
        p.add_argument("--silence-phones", default=None,
                       help="comma list of phones not counted in the phone rate (default: sil,SIL,sp,spn,...)")
        p.add_argument("--ignore-phones", default="", help="comma list of phones left out of the clustering scores")
        p.add_argument("--output", help="write every figure (and the contingency table) to this JSON file")

    def run(self, args: argparse.Namespace) -> int:
        from speechunits.data.ctm import read_ctm
        from speechunits.eval.unit_metrics import DEFAULT_SILENCE, UnitMetricsConfig, compute_unit_metrics
        from speechunits.fileio import write_json
        from speechunits.units.formats import read_units

        units = read_units(args.units)
        alignments = read_ctm(args.alignments)
        size = args.codebook_size if args.codebook_size is not None else _codebook_size(Path(args.units))
        names = lambda s: tuple(x for x in s.split(",") if x)  # noqa: E731
        cfg = UnitMetricsConfig(
            tolerance=args.tolerance,
            silence_phones=names(args.silence_phones) if args.silence_phones is not None else DEFAULT_SILENCE,
            ignore_phones=names(args.ignore_phones),
            codebook_size=size,
        )
        m = compute_unit_metrics(units, alignments, args.frame_shift, cfg)
        if args.output:
            record = m.to_dict()
            record.update(units=str(args.units), alignments=str(args.alignments))
            write_json(args.output, record)
        b = m.boundaries
        print(f"utterances {m.n_utterances}, frames {m.n_frames}, {m.duration:.1f} s at {m.frame_shift:g} s/frame")
        print(f"phone purity {m.phone_purity:.4f}  cluster purity {m.cluster_purity:.4f}  PNMI {m.pnmi:.4f}")
        print(f"homogeneity {m.homogeneity:.4f}  completeness {m.completeness:.4f}  V-measure {m.v_measure:.4f}  "
              f"NMI {m.nmi:.4f}  ARI {m.ari:.4f}")
        usage = f" of {m.codebook_size} ({100 * m.codebook_usage:.1f} %)" if m.codebook_usage is not None else ""
        print(f"codes used {m.used_codes}{usage}  perplexity {m.perplexity:.2f}  unit perplexity {m.unit_perplexity:.2f}")
        print(f"unit rate {m.unit_rate:.2f}/s  phone rate {m.phone_rate:.2f}/s  units per phone {m.units_per_phone:.2f}  "
              f"bitrate {m.bitrate:.1f} bit/s (frames: {m.bitrate_frames:.1f} bit/s)")
        print(f"boundaries (±{1000 * b.tolerance:g} ms): precision {b.precision:.4f}  recall {b.recall:.4f}  "
              f"F1 {b.f1:.4f}  R-value {b.r_value:.4f}  OS {b.over_segmentation:+.4f}")
        return 0


def _codebook_size(path: Path) -> int | None:
    """The number of codes the units were drawn from: k of a `kmeans apply` folder (kmeans.json)
    or of `extract --kmeans` (extract.json), else the codebook size of the model named in
    extract.json, if it can be read."""
    import json
    import logging

    folder = path if path.is_dir() else path.parent
    if (folder / "kmeans.json").is_file():
        k = json.loads((folder / "kmeans.json").read_text()).get("k")
        return int(k) if k is not None else None
    settings = folder / "extract.json"
    if not settings.is_file():
        return None
    try:
        extract = json.loads(settings.read_text())
        if extract.get("kmeans"):
            return int(extract["kmeans"]["k"])
        model = extract.get("model")
        if not model:
            return None
        from speechunits.models.checkpoint import load_checkpoint

        config = load_checkpoint(model)["config"]["model"]
        size = (config.get("bottleneck_cfg") or {}).get("codebook", {}).get("size")
        return int(size) if size is not None else None
    except Exception as e:  # the model moved, or is not a VQ model: the share is just not reported
        logging.getLogger(__name__).info("codebook size unknown (%s)", e)
        return None
