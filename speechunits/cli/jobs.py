"""What every command that runs a per-utterance job (speechunits.jobs) shares: the
`--job K/N` argument, the progress bar, and the one printer of a job's report.

    part = parse_part(args.job) if args.job else None
    with progress_bar("features", total) as bar:
        report = compute_features(..., on_progress=bar.update)
    return report_failures(report, args.allow_failures, "features")
"""

from __future__ import annotations

import sys

from speechunits.batch import BatchReport
from speechunits.errors import SpeechUnitsError


def parse_part(text: str) -> tuple[int, int]:
    """`K/N` -> (K, N)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SpeechUnitsError(f"--job takes K/N (e.g. 2/4), got {text!r}") from None
    return k, n


def progress_bar(what: str, total: int | None = None):
    """A tqdm bar on stderr counting utterances (off when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="utt", disable=None, file=sys.stderr)


def report_failures(report: BatchReport, allow_failures: bool, what: str, listed_in: str | None = None,
                    limit: int = 10) -> int:
    """Print a job's notes and failures on stderr and return the exit status: 1 when an
    utterance failed, unless `allow_failures`.

    Every note and failure is printed (`NOTE utt: ...`, `FAILED utt: ...`) with a
    summary line (`what: N done, M already done, F failed`). When a file lists the
    failures (`listed_in`, e.g. prepare's failed.txt, whose messages name their input
    already), the first `limit` messages are printed and the file is named instead."""
    failures = report.failures
    for utt, message in sorted(report.notes.items()):
        print(f"NOTE {utt}: {message}", file=sys.stderr)
    if listed_in is None:
        for utt, message in sorted(failures.items()):
            print(f"FAILED {utt}: {message}", file=sys.stderr)
        print(f"{what}: {report.summary()}", file=sys.stderr)
        if failures and not allow_failures:
            print(f"{what}: {len(failures)} utterance(s) failed (use --allow-failures to accept)", file=sys.stderr)
    elif failures:
        for key in sorted(failures)[:limit]:
            print(f"  failed: {failures[key]}", file=sys.stderr)
        if len(failures) > limit:
            print(f"  ... and {len(failures) - limit} more", file=sys.stderr)
        tail = "" if allow_failures else "; exit status 1 (pass --allow-failures to accept them)"
        print(f"{len(failures)} failures, listed in {listed_in}{tail}", file=sys.stderr)
    return 1 if failures and not allow_failures else 0
