"""`speechunits abx ITEM FEATURES`: ABX error of features on a ZeroSpeech item file."""

from __future__ import annotations

import argparse
import dataclasses

from speechunits.cli import COMMANDS


@COMMANDS.register("abx")
class AbxCommand:
    """ABX error of features (or units) on a ZeroSpeech item file.

    FEATURES is a folder of <utt>.npy / <utt>.pt arrays of shape (T, D) (integer
    (T,) or (T, 1) arrays are discrete units, scored as one-hot vectors), or a Kaldi
    .scp. The frame shift comes from --frame-shift, else from the `frame_shift` file
    or meta.json beside the features. Semantics follow libri-light / fastabx; the
    last line printed is `ABX error (<speaker>, <context>): X.XXX %`.

        speechunits abx data/test/abx.item units/dense --speaker across --output abx.json
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("item", help="ZeroSpeech item file (#file onset offset #phone prev-phone next-phone speaker)")
        parser.add_argument("features", help="folder of <utt>.npy/.pt arrays, or a Kaldi .scp")
        parser.add_argument(
            "--frame-shift", type=float, default=None, help="seconds between frames (default: recorded beside the features)"
        )
        parser.add_argument("--speaker", choices=["within", "across"], default="within")
        parser.add_argument("--context", choices=["within", "any"], default="within")
        parser.add_argument("--distance", choices=["angular", "euclidean", "kl_symmetric"], default="angular")
        parser.add_argument("--max-size-group", type=int, default=10, help="tokens kept per group (negative: all)")
        parser.add_argument(
            "--max-x-across", type=int, default=5, help="X speakers kept per (A, B) across speaker (negative: all)"
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the subsampling")
        parser.add_argument("--output", default=None, help="write score, breakdowns and options to this JSON file")
        parser.add_argument(
            "--libri-light-slicing", action="store_true", help="drop the last frame of each item, as libri-light/zrc_abx2"
        )
        parser.add_argument(
            "--skip-bad-items", action="store_true", help="skip (and count) items that cannot be scored instead of failing"
        )
        parser.add_argument(
            "--num-threads", type=int, default=None, help="threads for the compiled kernels (default: all cores)"
        )

    def run(self, args: argparse.Namespace) -> int:
        from speechunits.eval.abx.kernel_loader import preload_in_background

        kernels = preload_in_background()  # numba's start-up overlaps reading the items and features
        from speechunits.data.featdir import open_feature_source
        from speechunits.data.items import ItemProblems, read_items_lenient
        from speechunits.errors import SpeechUnitsError
        from speechunits.eval.abx import AbxConfig, SkippedItem, compute_abx
        from speechunits.fileio import check_writable, write_json

        if args.output:
            check_writable(args.output)  # before the work, not after it
        items, bad_lines = read_items_lenient(args.item)
        if bad_lines and not args.skip_bad_items:
            raise ItemProblems(str(args.item), bad_lines)
        source = open_feature_source(args.features, args.frame_shift)
        frame_shift = args.frame_shift if args.frame_shift is not None else source.frame_shift
        if frame_shift is None:
            raise SpeechUnitsError(
                f"{args.features}: no frame shift recorded (no frame_shift file or meta.json beside the features); "
                "pass --frame-shift SECONDS"
            )
        config = AbxConfig(
            speaker=args.speaker, context=args.context, distance=args.distance,
            max_size_group=args.max_size_group, max_x_across=args.max_x_across, seed=args.seed,
            libri_light_slicing=args.libri_light_slicing, skip_bad_items=args.skip_bad_items,
            num_threads=args.num_threads,
        )
        kernels.result()
        result = compute_abx(items, source, frame_shift, config)
        line_skips = [SkippedItem(line, "", f"bad line: {message}") for line, message in bad_lines]
        skipped = sorted(line_skips + list(result.skipped), key=lambda s: s.line)
        if skipped:
            print_skipped(str(args.item), skipped)
        print(
            f"items: {result.n_items} scored, {len(skipped)} skipped; "
            f"cells: {result.n_cells}; triplets: {result.n_triplets}"
        )
        print(f"ABX error ({args.speaker}, {args.context}): {result.percent:.3f} %", flush=True)
        if args.output:
            summary = result.to_dict()
            summary.update(item_file=str(args.item), features=str(args.features), frame_shift=frame_shift,
                           n_items_skipped=len(skipped), skipped=[dataclasses.asdict(s) for s in skipped])
            write_json(args.output, summary)
        return 0


def print_skipped(path: str, skipped, limit: int = 20) -> None:
    """The --skip-bad-items summary on stderr: runs of item lines skipped for one reason, the first `limit`."""
    import sys

    runs: list[tuple[int, int, int, str]] = []  # first line, last line, count, reason
    for s in skipped:
        if runs and runs[-1][3] == s.reason:
            first, _, count, reason = runs[-1]
            runs[-1] = (first, s.line, count + 1, reason)
        else:
            runs.append((s.line, s.line, 1, s.reason))
    print(f"abx: skipped {len(skipped)} item line(s) of {path} (--skip-bad-items):", file=sys.stderr)
    for first, last, count, reason in runs[:limit]:
        where = f"{path}:{first}" + (f"-{last} ({count} items)" if count > 1 else "")
        print(f"  {where}: {reason}", file=sys.stderr)
    if len(runs) > limit:
        print(f"  ... and {len(runs) - limit} more", file=sys.stderr)
