"""`speechunits validate-data DIR`: check a Kaldi data dir as utils/validate_data_dir.sh does."""

from __future__ import annotations

from speechunits.cli import COMMANDS


@COMMANDS.register("validate-data")
class ValidateDataCommand:
    """Check a Kaldi data dir: sorted unique tables, consistent ids, audio files present.

    Prints every problem, errors first, then warnings (e.g. utterance ids not
    prefixed by their speaker id). Exits 1 if there is any error, else 0.
    Relative wav.scp paths are resolved against --base-dir (default: the current
    directory, as in a Kaldi recipe). Pipe entries (`cmd |`) are warned about, never
    run. Audio is not decoded unless --audio, which opens every file and reports what
    `features` would reject (a `fix_data_dir.sh` companion: the errors name the lines
    to remove).
    """

    def add_arguments(self, parser) -> None:
        parser.add_argument("data_dir", metavar="DIR", help="the data dir")
        parser.add_argument(
            "--no-check-audio", dest="check_audio", action="store_false", help="do not check that wav.scp files exist"
        )
        parser.add_argument(
            "--base-dir", default=None, help="folder that relative wav.scp paths start from (default: .)"
        )
        parser.add_argument(
            "--audio", action="store_true",
            help="also open every utterance's audio: empty, truncated, corrupt, NaN, other-rate audio are errors "
                 "(what `features` rejects), multi-channel audio a warning",
        )
        parser.add_argument("--sample-rate", type=int, default=16000, help="the rate --audio expects (default: 16000)")

    def run(self, args) -> int:
        from speechunits.data.datadir import validate_data_dir

        result = validate_data_dir(args.data_dir, check_audio=args.check_audio, base_dir=args.base_dir,
                                   decode_audio=args.audio, sample_rate=args.sample_rate)
        for problem in result.errors:
            print(f"error: {problem}")
        for problem in result.warnings:
            print(f"warning: {problem}")
        status = "OK" if result.ok else "FAILED"
        print(f"{args.data_dir}: {status} ({len(result.errors)} errors, {len(result.warnings)} warnings)")
        return 0 if result.ok else 1
