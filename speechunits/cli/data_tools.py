"""Data-dir utilities in the manner of Kaldi's utils/: split, combine, utt2dur."""

from __future__ import annotations

import sys

from speechunits.cli import COMMANDS


@COMMANDS.register("split-data")
class SplitDataCommand:
    """Split a data dir into N parts for N parallel jobs (utils/split_data.sh).

    Writes DATA/split<N>/<k> (by speaker: each speaker whole, parts balanced by
    utterance count) or DATA/split<N>utt/<k> (--by utterance). The split folder is
    built under a temporary name and renamed, so one that exists is complete.

    Example:
      speechunits split-data data/train 4      # data/train/split4/{1,2,3,4}
    """

    def add_arguments(self, p):
        p.add_argument("data", help="Kaldi data dir")
        p.add_argument("n", type=int, help="number of parts")
        p.add_argument("--by", choices=["speaker", "utterance"], default="speaker", help="(default: %(default)s)")

    def run(self, args) -> int:
        from speechunits.data.datadir import DataDir
        from speechunits.data.split import write_splits

        for part in write_splits(DataDir.read(args.data), args.data, args.n, by=args.by):
            print(part)
        return 0


@COMMANDS.register("combine-data")
class CombineDataCommand:
    """Combine data dirs into one (utils/combine_data.sh); duplicate utterance ids are an error.

    Example:
      speechunits combine-data data/all data/train data/dev
    """

    def add_arguments(self, p):
        p.add_argument("out", help="data dir to write")
        p.add_argument("inputs", nargs="+", help="data dirs to combine")

    def run(self, args) -> int:
        from speechunits.data.split import combine_data_dirs

        combined = combine_data_dirs(args.inputs)
        combined.write(args.out)
        print(f"combine-data: {len(combined.utts)} utterances of {len(combined.speakers)} speakers -> {args.out}",
              file=sys.stderr)
        return 0


@COMMANDS.register("utt2dur")
class Utt2DurCommand:
    """Write DATA/utt2dur (seconds per utterance) from segments or audio headers.

    Unreadable audio is reported per utterance; exit 1 unless --allow-failures
    (utt2dur then lists the readable utterances only).
    """

    def add_arguments(self, p):
        p.add_argument("data", help="Kaldi data dir")
        p.add_argument("--base-dir", help="folder that relative wav.scp paths are relative to (default: cwd)")
        p.add_argument("--allow-pipes", action="store_true", help="run `cmd |` wav.scp entries")
        p.add_argument("--allow-failures", action="store_true", help="write utt2dur even if some files fail")

    def run(self, args) -> int:
        from pathlib import Path

        from speechunits.batch import BatchReport
        from speechunits.cli.jobs import report_failures
        from speechunits.data.datadir import DataDir, compute_utt2dur, format_seconds, write_table

        datadir = DataDir.read(args.data)
        report = BatchReport()
        durations = compute_utt2dur(datadir, base_dir=args.base_dir, report=report, allow_pipes=args.allow_pipes)
        status = report_failures(report, args.allow_failures, "utt2dur")
        if status == 0:
            write_table(Path(args.data) / "utt2dur", {u: format_seconds(d) for u, d in durations.items()})
        return status
