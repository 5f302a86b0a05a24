"""`speechunits kmeans fit|apply|regress`: baseline units by k-means on any feature dir, and
the centroid-regression read-out of a tap."""

from __future__ import annotations

import sys

from speechunits.cli import COMMANDS, add_subcommands
from speechunits.registry import Registry

ACTIONS = Registry("kmeans action")


@COMMANDS.register("kmeans")
class KMeansCommand:
    """Baseline units: k-means on a feature dir (MFCC, fbank, or an extract's dense/).

    Actions:
      fit     fit K centroids on a feature dir (a seeded frame sample, k-means++, Lloyd)
      apply   write units (units.txt, durations.txt, units.jsonl, codes/) as extract does
      regress fit an affine read-out that pulls frames toward their centroids (extract --readout)
    Run `speechunits kmeans ACTION --help` for an action's options.

    Examples:
      speechunits kmeans fit feats/mfcc_dd exp/kmeans50.pt --k 50 --utts data/train
      speechunits kmeans apply exp/kmeans50.pt feats/mfcc_dd units/kmeans50_test --utts data/test
      speechunits abx data/test/triphone.item units/kmeans50_test/codes --speaker across
      speechunits kmeans regress exp/masked/units/train/dense exp/masked/kmeans.pt exp/masked/readout.pt
    """

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION")
        sub.required = True
        add_subcommands(sub, ACTIONS, "_action")

    def run(self, args) -> int:
        return int(args._action.run(args) or 0)


def _add_frame_source(p) -> None:
    """--utts and --frame-shift, the options that choose a fit's frames."""
    p.add_argument("--utts", help="fit on these utterances only: a data dir or a file whose lines start with "
                                  "utterance ids (utt2spk, a list, ...)")
    p.add_argument("--frame-shift", type=float, help="seconds per frame (default: recorded beside the features)")


def _fit_failures(report, allow_failures: bool, what: str, out: str) -> int:
    """Name every utterance a fit left out; 1 (and the output not written) unless allowed."""
    for utt, message in sorted(report.failures.items()):
        print(f"FAILED {utt}: {message}", file=sys.stderr)
    if not report.failures:
        return 0
    print(f"kmeans {what}: {len(report.failures)} utterance(s) failed and were left out"
          f"{'' if allow_failures else ' (use --allow-failures to accept)'}", file=sys.stderr)
    if allow_failures:
        return 0
    print(f"kmeans {what}: {out} not written", file=sys.stderr)
    return 1


def _add_readout(p, what: str) -> None:
    p.add_argument("--readout", metavar="R.pt",
                   help=f"{what} the features' frames mapped by this centroid regression (kmeans regress), as "
                        "extract --readout writes them")


def _features(path: str, readout: str | None, frame_shift: float | None):
    """The feature source of `path`, through the read-out R.pt when one is given."""
    if not readout:
        return path
    from speechunits.units.kmeans.frames import open_features
    from speechunits.units.kmeans.regression import CentroidRegression, MappedFeatures

    return MappedFeatures(open_features(path, frame_shift), CentroidRegression.load(readout))


def _utts(path: str | None) -> list[str] | None:
    from speechunits.units.kmeans.frames import utterance_list

    return utterance_list(path) if path else None


@ACTIONS.register("fit")
class KMeansFitCommand:
    """Fit k-means centroids on a feature dir and save them (MODEL, a .pt file).

    FEATURES is a folder of <utt>.npy / .pt float arrays (T, D) with frame_shift and
    meta.json beside them, or a Kaldi .scp. Memory stays bounded: one pass draws a
    seeded uniform sample of at most --max-frames frames (all of them when there are
    fewer); k-means++ picks the initial centroids among --init-frames of them; then
    full-batch Lloyd iterations run on the sample until the inertia falls by less
    than --tol (relative) or after --iterations; --full-passes more Lloyd iterations
    stream over every frame; a last streamed pass measures the inertia and the
    cluster sizes on all frames. Clusters left with fewer than --min-cluster-size
    frames (always the empty ones) are re-seeded on the farthest frames and counted.
    The same seed gives the same centroids (on a given device).

    Utterances that cannot be read or are malformed (not float (T, D), another
    dimension, NaN) are named; the model is then written, and the exit status 0,
    only with --allow-failures. The model file holds the centroids, the features'
    meta.json and frame shift, and the fit's report (torch.load(weights_only=True)).
    """

    def add_arguments(self, p) -> None:
        p.add_argument("features", help="feature dir (<utt>.npy arrays (T, D)) or Kaldi .scp")
        p.add_argument("model", help="output model file (.pt)")
        p.add_argument("--k", type=int, required=True, help="number of clusters")
        p.add_argument("--max-frames", type=int, default=500_000,
                       help="frames sampled for fitting (default: %(default)s; memory 4 * D bytes each)")
        p.add_argument("--init-frames", type=int, default=100_000,
                       help="sampled frames k-means++ chooses among (default: %(default)s)")
        p.add_argument("--iterations", type=int, default=100,
                       help="most Lloyd iterations on the sample (default: %(default)s)")
        p.add_argument("--tol", type=float, default=1e-5,
                       help="stop when the inertia falls by less than this fraction (default: %(default)s)")
        p.add_argument("--full-passes", type=int, default=0,
                       help="Lloyd iterations over every frame after the sample's (default: %(default)s)")
        p.add_argument("--min-cluster-size", type=int, default=1,
                       help="re-seed clusters with fewer frames (default: %(default)s, the empty ones)")
        p.add_argument("--seed", type=int, default=0, help="seed of the sample and of k-means++ (default: 0)")
        p.add_argument("--batch-frames", type=int, default=4096,
                       help="frames per distance computation (default: %(default)s)")
        p.add_argument("--context", type=int, default=0, metavar="C",
                       help="cluster each frame stacked with its C neighbours on either side (edges repeated); "
                            "the model stacks the frames it labels alike (default: %(default)s; the sample's memory, "
                            "about 5 x --max-frames x 4 x (2C + 1) x D bytes at its peak, and the time grow with "
                            "2C + 1)")
        _add_frame_source(p)
        _add_readout(p, "fit on")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        p.add_argument("--allow-failures", action="store_true", help="write the model even if some utterances failed")

    def run(self, args) -> int:
        from speechunits.units.kmeans import KMeansConfig, fit_kmeans

        cfg = KMeansConfig(k=args.k, max_frames=args.max_frames, init_frames=args.init_frames,
                           iterations=args.iterations, tol=args.tol, full_passes=args.full_passes,
                           min_cluster_size=args.min_cluster_size, seed=args.seed, batch_frames=args.batch_frames,
                           device=args.device, context=args.context)
        features = _features(args.features, args.readout, args.frame_shift)
        result = fit_kmeans(features, cfg, utts=_utts(args.utts), frame_shift=args.frame_shift)
        info = result.model.info
        status = _fit_failures(result.report, args.allow_failures, "fit", args.model)
        counts = sorted(info["counts"])
        print(f"frames {info['frames']} from {info['utterances']} utterances, sample {info['sample_frames']}, "
              f"dim {result.model.dim}{f' ({2 * args.context + 1} stacked frames)' if args.context else ''}, "
              f"k {result.model.k}")
        print(f"iterations {len(info['history'])} ({'converged' if info['converged'] else 'not converged'}), "
              f"re-seeded clusters {info['reseeded']}, {info['seconds']:.1f} s")
        print(f"inertia {info['inertia']:.6g} ({info['inertia_per_frame']:.6g} per frame)")
        print(f"cluster sizes: min {counts[0]}, median {counts[len(counts) // 2]}, max {counts[-1]}; "
              f"empty {info['empty_clusters']}, under --min-cluster-size {info['small_clusters']}")
        if status:
            return status
        result.model.save(args.model)
        return 0


@ACTIONS.register("apply")
class KMeansApplyCommand:
    """Units from a k-means model for every utterance of a feature dir.

    OUT gets what `speechunits extract` writes for units: units.txt (`utt u1 u2 ...`,
    repeats merged), durations.txt (frames per unit), units.jsonl ({"utt", "units",
    "durations", "start", "shift"}), frame_shift, and codes/<utt>.npy, the frame-level
    codes (T,) with codes/frame_shift, which `speechunits abx ITEM OUT/codes` scores
    as one-hot vectors; with --dense also dense/<utt>.npy, the squared distances to
    every centroid (T, K). Resumable: finished utterances are skipped on a rerun;
    every bad utterance is named and the exit status is 1 unless --allow-failures.
    """

    def add_arguments(self, p) -> None:
        p.add_argument("model", help="k-means model (.pt) from `speechunits kmeans fit`")
        p.add_argument("features", help="feature dir or Kaldi .scp of the same kind the model was fitted on")
        p.add_argument("out", help="output folder")
        p.add_argument("--dense", action="store_true", help="also write the distances to the centroids (dense/)")
        p.add_argument("--utts", help="only these utterances: a data dir or a file whose lines start with utterance ids")
        p.add_argument("--dp-penalty", type=float, default=0.0, metavar="P",
                       help="duration-penalised units (DPDP): each unit costs P x the fit's mean squared distance "
                            "per frame, so short flickers merge; 0: each frame's nearest centroid (default: 0)")
        p.add_argument("--frame-shift", type=float, help="seconds per frame (default: recorded beside the features)")
        _add_readout(p, "units of")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        p.add_argument("--allow-failures", action="store_true", help="exit 0 even if some utterances failed")

    def run(self, args) -> int:
        from pathlib import Path

        from speechunits.cli.jobs import progress_bar, report_failures
        from speechunits.units.kmeans import ApplyOptions, KMeans, apply_kmeans

        model = KMeans.load(args.model, device=args.device)
        options = ApplyOptions(dense=args.dense, model=str(Path(args.model).resolve()), utts=_utts(args.utts),
                               penalty=args.dp_penalty)
        features = _features(args.features, args.readout, args.frame_shift)
        with progress_bar("kmeans apply") as bar:
            report = apply_kmeans(model, features, args.out, options, frame_shift=args.frame_shift,
                                  on_progress=bar.update)
        return report_failures(report, args.allow_failures, "kmeans apply")


@ACTIONS.register("regress")
class KMeansRegressCommand:
    """Fit the centroid regression of a k-means model's features (OUT, a .pt file).

    An affine map y = W x + b of the frames, fitted by least squares so that each frame
    lands on its nearest centroid (reassigned under the map at each of --iterations
    fits), with a ridge term pulling W toward the identity (--ridge, relative to the
    frames' mean squared norm per dimension): the directions along which the clusters
    differ are kept and the within-cluster scatter shrinks. `speechunits extract
    --readout OUT` writes the mapped tap (dense/) and, with --kmeans, units of the
    mapped frames. FEATURES are the frames KMEANS was fitted on (an extract's dense/ of
    the training data); a seeded sample of at most --max-frames is used. Unreadable or
    malformed utterances are named; the map is then written, and the exit status 0,
    only with --allow-failures.
    """

    def add_arguments(self, p) -> None:
        p.add_argument("features", help="feature dir (<utt>.npy arrays (T, D)) or Kaldi .scp: the k-means model's "
                                        "training frames")
        p.add_argument("kmeans", help="k-means model (.pt) from `speechunits kmeans fit` on these features")
        p.add_argument("out", help="output file (.pt)")
        p.add_argument("--ridge", type=float, default=0.3,
                       help="pull of the map toward the identity (default: %(default)s)")
        p.add_argument("--iterations", type=int, default=5,
                       help="least-squares fits, each after reassigning the frames (default: %(default)s)")
        p.add_argument("--max-frames", type=int, default=300_000,
                       help="frames sampled for the fit (default: %(default)s; memory 8 * D bytes each)")
        p.add_argument("--seed", type=int, default=0, help="seed of the frame sample (default: 0)")
        _add_frame_source(p)
        p.add_argument("--allow-failures", action="store_true", help="write the map even if some utterances failed")

    def run(self, args) -> int:
        from speechunits.units.kmeans import KMeans
        from speechunits.units.kmeans.regression import RegressionConfig, fit_regression

        cfg = RegressionConfig(ridge=args.ridge, iterations=args.iterations, max_frames=args.max_frames,
                               seed=args.seed)
        kmeans = KMeans.load(args.kmeans)
        reg, report = fit_regression(args.features, kmeans, cfg, utts=_utts(args.utts), frame_shift=args.frame_shift)
        info = reg.info
        print(f"frames {info['frames']} from {info['utterances']} utterances, dim {reg.dim}, k {info['k']}, "
              f"{info['seconds']:.1f} s")
        for i, h in enumerate(info["history"], 1):
            moved = "" if h["reassigned"] is None else f", {100 * h['reassigned']:.1f} % of frames reassigned"
            print(f"fit {i}: objective {h['objective_per_frame']:.6g} per frame{moved}")
        if _fit_failures(report, args.allow_failures, "regress", args.out):
            return 1
        reg.save(args.out)
        return 0
