"""`speechunits abx ITEM FEATURES`: ABX error of features on a ZeroSpeech item file."""

from __future__ import annotations

import argparse

from speechunits.cli import COMMANDS


@COMMANDS.register("abx")
class Abx:
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
        from speechunits.data.featdir import open_feature_source
        from speechunits.data.items import read_items
        from speechunits.errors import SpeechUnitsError
        from speechunits.eval.abx import AbxConfig, compute_abx
        from speechunits.fileio import write_json

        items = read_items(args.item)
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
        result = compute_abx(items, source, frame_shift, config)
        if args.output:
            summary = result.to_dict()
            summary.update(item_file=str(args.item), features=str(args.features), frame_shift=frame_shift)
            write_json(args.output, summary)
        print(
            f"items: {result.n_items} scored, {result.n_items_skipped} skipped; "
            f"cells: {result.n_cells}; triplets: {result.n_triplets}"
        )
        print(f"ABX error ({args.speaker}, {args.context}): {result.percent:.3f} %")
        return 0
