"""`speechunits features`: compute a feature type for a data dir."""

from __future__ import annotations

import sys

from speechunits.cli import COMMANDS
from speechunits.cli.jobs import parse_part, progress_bar, report_failures


@COMMANDS.register("features")
class FeaturesCommand:
    """Compute features for a Kaldi data dir into a feature store.

    Writes OUT/<utt>.npy (shape (T, D)) with OUT/frame_shift and OUT/meta.json, or
    Kaldi OUT/feats.scp + ark with --format ark. Resumable: utterances already in OUT
    are skipped; a rerun with other settings (type, options, CMVN, format) is refused
    unless --overwrite. Feature types: fbank (80 log-mel), mfcc (13), mfcc_dd (13 MFCC +
    deltas + delta-deltas, the WaveNet-autoencoder input), waveform. Any option of the
    feature type can be overridden as key=value, e.g.
    frontend_config.mel_opts.num_bins=40 or frontend_config.frame_opts.dither=1.0.

    Examples:
      speechunits features data/train feats/train --type mfcc_dd --cmvn speaker --nj 4
      speechunits features C feats --base-dir C     # C: a corpus whose wav.scp paths are relative to it
    """

    def add_arguments(self, p):
        p.add_argument("data", help="Kaldi data dir (wav.scp, utt2spk, optional segments)")
        p.add_argument("out", help="output feature directory")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of the feature config")
        p.add_argument("--type", default="mfcc_dd", help="feature type (default: %(default)s)")
        p.add_argument("--cmvn", choices=["none", "utterance", "speaker"], help="CMVN (default: the type's, none)")
        p.add_argument("--norm-vars", action="store_true", help="CMVN also normalises variances")
        p.add_argument("--format", choices=["npy", "ark"], default="npy", help="store format (default: %(default)s)")
        p.add_argument("--nj", type=int, default=1, help="parallel workers in this process (default: 1)")
        p.add_argument("--job", metavar="K/N", help="compute only part K of N (for cluster job arrays)")
        p.add_argument("--base-dir", help="folder that relative wav.scp paths are relative to (default: cwd)")
        p.add_argument("--resample", action="store_true",
                       help="resample audio at another rate (default: such utterances fail, as in Kaldi)")
        p.add_argument("--allow-pipes", action="store_true", help="run `cmd |` wav.scp entries (shell commands)")
        p.add_argument("--allow-failures", action="store_true", help="exit 0 even if some utterances failed")
        p.add_argument("--overwrite", action="store_true",
                       help="compute again and replace what OUT holds (default: a rerun with other settings is refused)")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")

    def run(self, args) -> int:
        import torch

        from speechunits.data.datadir import DataDir
        from speechunits.errors import SpeechUnitsError
        from speechunits.frontends.features_job import FeatureJob, combine_scp, compute_features
        from speechunits.frontends.pipeline import FeaturePipeline, feature_preset

        overrides = list(args.overrides)
        if args.cmvn:
            overrides.append(f"cmvn={args.cmvn}")
        if args.norm_vars:
            overrides.append("norm_vars=true")
        pipeline = FeaturePipeline(feature_preset(args.type, overrides))
        if args.nj > 1:
            torch.set_num_threads(1)
        job = FeatureJob(
            base_dir=args.base_dir, allow_pipes=args.allow_pipes, resample=args.resample, format=args.format,
            num_threads=args.nj, device=args.device, overwrite=args.overwrite,
        )
        datadir, problems = DataDir.read_lenient(args.data)
        for message in problems.errors:
            print(f"DATA ERROR {message}", file=sys.stderr)
        if not datadir.utts:  # nothing to compute: fail before OUT is created
            raise SpeechUnitsError(f"{args.data}: no utterances to compute (see the DATA ERROR lines above)"
                                   if problems.errors else f"{args.data}: no utterances (utt2spk is empty)")
        part = parse_part(args.job) if args.job else None
        total = len(datadir.utts) if part is None else None
        with progress_bar("features", total) as bar:
            report = compute_features(datadir, args.out, pipeline, job, part, on_progress=bar.update)
        if args.format == "ark" and part is None:
            combine_scp(args.out, [1])
        status = report_failures(report, args.allow_failures, "features")
        if problems.errors and not args.allow_failures:
            print(f"features: {len(problems.errors)} problem(s) in {args.data} (lines skipped)", file=sys.stderr)
            status = 1
        return status
