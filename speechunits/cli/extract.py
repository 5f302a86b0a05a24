"""`speechunits extract`: units and dense features for new audio from a trained model."""

from __future__ import annotations

import sys

from speechunits.cli import COMMANDS
from speechunits.cli.jobs import parse_part, report_failures


@COMMANDS.register("extract")
class ExtractCommand:
    """Extract units (and a tap's dense features) from audio with a trained model.

    MODEL is a checkpoint (.pt) or an experiment dir (its best.pt, else last.pt).
    INPUT is a Kaldi data dir (wav.scp [+ segments], utt2spk), a folder of audio
    files (searched recursively; utterance id = relative path without suffix, "/"
    replaced by "_"), or a list file (`utt path` lines, or one path per line).
    Audio at any sample rate is resampled to the model's.

    OUT gets units.txt (`utt u1 u2 ...`, repeats removed), durations.txt (latent
    frames per unit), units.jsonl ({"utt", "units", "durations", "start", "shift"}),
    and dense/<utt>.npy (the tap's values, (T', C)) with dense/frame_shift, so that
    `speechunits abx ITEM OUT/dense` works as is (--format ark: dense/feats.scp),
    and codes/<utt>.npy, the frame-level codes, for ABX on the units themselves.
    Resumable: finished utterances are skipped on a rerun. With per-speaker CMVN
    input features, speaker statistics come from the data dir's utt2spk; a folder
    or list file gets per-utterance CMVN (a warning says so).

    Examples:
      speechunits extract exp/vqvae data/test units/test
      speechunits extract exp/vqvae/best.pt wavs/ units/wavs --tap encoder --no-dedup
      speechunits extract exp/vqvae data/test units/test --nj 4          # 4 processes
      for k in 1 2 3; do sbatch ... speechunits extract M data/test OUT --job $k/3; done
      speechunits extract M data/test OUT                                # then assemble
      speechunits abx data/test/abx.item units/test/dense --speaker across
      speechunits extract exp/masked data/test OUT --readout R.pt --kmeans KM.pt --deltas 1
    """

    def add_arguments(self, p):
        p.add_argument("model", help="checkpoint file or experiment dir")
        p.add_argument("input", help="data dir, folder of audio files, or list file")
        p.add_argument("out", help="output folder")
        p.add_argument("--tap", default="bottleneck", choices=["encoder", "projection", "bottleneck", "conditioning"],
                       help="which model tap the dense features come from (default: %(default)s)")
        p.add_argument("--kmeans", metavar="KM.pt",
                       help="units from this k-means model over the tap's values (speechunits kmeans fit on the "
                            "tap's dense/), e.g. for continuous models such as pipelines/masked.yaml")
        p.add_argument("--dp-penalty", type=float, default=0.0, metavar="P",
                       help="with --kmeans, duration-penalised units (DPDP): each unit costs P x the k-means fit's "
                            "mean squared distance per frame, so short flickers merge (default: 0, nearest centroid)")
        p.add_argument("--readout", metavar="R.pt",
                       help="map the tap's frames by this centroid regression (speechunits kmeans regress) before "
                            "writing dense/ and before --kmeans")
        p.add_argument("--deltas", type=float, default=0.0, metavar="B",
                       help="append to dense/ each frame's deltas (Kaldi's, +-2 frames), scaled per utterance "
                            "so that their RMS is B times the frames' (after --readout; the units do not "
                            "change; 0: none, the default; the speechocean762 recipe uses 1)")
        p.add_argument("--format", choices=["npy", "ark"], default="npy", help="dense store (default: %(default)s)")
        p.add_argument("--no-dedup", action="store_true", help="keep one unit per latent frame (durations all 1)")
        p.add_argument("--batch-size", type=int, default=16, help="utterances per batch (default: %(default)s)")
        p.add_argument("--nj", type=int, default=1,
                       help="parallel processes, each with its share of the utterances and of the torch threads "
                            "(default: 1)")
        p.add_argument("--job", metavar="K/N",
                       help="extract only part K of N (cluster job arrays); a final run without --job assembles "
                            "the text files")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        p.add_argument("--chunk-seconds", type=float, default=30.0,
                       help="longer utterances are encoded in chunks of this length (default: %(default)s)")
        p.add_argument("--input-features", metavar="TYPE",
                       help="feature type of the model input (fbank, mfcc, mfcc_dd, waveform), for checkpoints that "
                            "do not record it; see also --cmvn")
        p.add_argument("--cmvn", choices=["none", "utterance", "speaker"], help="CMVN of --input-features")
        p.add_argument("--base-dir", help="folder that relative paths in wav.scp or the list are relative to")
        p.add_argument("--allow-pipes", action="store_true", help="run `cmd |` wav.scp entries (shell commands)")
        p.add_argument("--allow-failures", action="store_true", help="exit 0 even if some utterances failed")

    def run(self, args) -> int:
        import functools

        from tqdm import tqdm

        from speechunits.errors import SpeechUnitsError
        from speechunits.models.checkpoint import resolve_checkpoint
        from speechunits.units.extract_job import ExtractOptions, extract_units, extract_units_parallel, part_utterances

        features = None
        if args.input_features:
            from speechunits.frontends.pipeline import feature_preset

            features = feature_preset(args.input_features, [f"cmvn={args.cmvn}"] if args.cmvn else [])
        elif args.cmvn:
            raise SpeechUnitsError("--cmvn goes with --input-features")
        if args.nj < 1:
            raise SpeechUnitsError("--nj must be at least 1")
        if args.nj > 1 and args.job:
            raise SpeechUnitsError("--nj and --job exclude each other (--job runs one part in this process)")
        path = resolve_checkpoint(args.model)
        build = functools.partial(
            build_extraction, str(path), args.input, device=args.device, tap=args.tap, input_features=features,
            dedup=not args.no_dedup, chunk_seconds=args.chunk_seconds, base_dir=args.base_dir,
            allow_pipes=args.allow_pipes, kmeans=args.kmeans, kmeans_penalty=args.dp_penalty,
            readout=args.readout, deltas=args.deltas,
        )
        options = ExtractOptions(format=args.format, batch_size=args.batch_size, model=str(path.resolve()),
                                 part=parse_part(args.job) if args.job else None)
        extractor, source = build()
        for message in source.problems:
            print(f"DATA ERROR {message}", file=sys.stderr)
        total = len(part_utterances(source, *options.part, by_speaker=extractor.needs_speaker_stats)) if options.part \
            else len(source)
        with tqdm(total=total, desc="extract", unit="utt", disable=None, file=sys.stderr) as bar:
            if args.nj > 1:
                report = extract_units_parallel(build, args.out, options, args.nj, on_progress=bar.update)
            else:
                report = extract_units(extractor, source, args.out, options, on_progress=bar.update)
        if not extractor.discrete:
            print(f"extract: the {extractor.model.cfg.bottleneck} bottleneck is continuous: wrote dense features only",
                  file=sys.stderr)
        status = report_failures(report, args.allow_failures, "extract")
        if source.problems and not args.allow_failures:
            print(f"extract: {len(source.problems)} problem(s) in {args.input} (lines skipped)", file=sys.stderr)
            status = 1
        return status


def build_extraction(model: str, input: str, *, device: str, tap: str, input_features, dedup: bool,
                     chunk_seconds: float, base_dir: str | None, allow_pipes: bool, kmeans: str | None = None,
                     kmeans_penalty: float = 0.0, readout: str | None = None, deltas: float = 0.0):
    """The extractor and the audio source of one `speechunits extract` (in each --nj process)."""
    from speechunits.units.extractor import UnitExtractor
    from speechunits.units.kmeans import KMeans
    from speechunits.units.kmeans.regression import CentroidRegression
    from speechunits.units.sources import open_audio_source

    extractor = UnitExtractor.from_checkpoint(model, device=device, tap=tap, input_features=input_features,
                                              dedup=dedup, chunk_seconds=chunk_seconds,
                                              kmeans=KMeans.load(kmeans) if kmeans else None,
                                              kmeans_penalty=kmeans_penalty,
                                              readout=CentroidRegression.load(readout) if readout else None,
                                              deltas=deltas)
    source = open_audio_source(input, sample_rate=extractor.sample_rate, base_dir=base_dir, allow_pipes=allow_pipes)
    return extractor, source
