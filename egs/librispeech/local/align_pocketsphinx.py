#!/usr/bin/env python3
"""Phone alignments for a data dir with transcripts, by pocketsphinx forced alignment.

    python local/align_pocketsphinx.py data/dev-clean --nj 2

For LibriSpeech without user-supplied alignments. Each word of DATA/text is looked up
in pocketsphinx's CMUdict (the `align` extra; speechunits.corpora.align explains the
aligner and its accuracy, about 12 ms mean boundary error on synthetic speech).
Utterances that cannot be aligned (a word missing from the dictionary, no path) are
listed with their reason in DATA/align_failed.txt and removed from the data dir, so
that every remaining utterance has phones. Writes DATA/alignments.ctm,
DATA/words.ctm, DATA/phone.item and DATA/triphone.item through
speechunits.corpora.writer.write_alignments (alignments.ctm last: it marks the alignment
finished).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speechunits.batch import BatchReport
from speechunits.corpora import writer
from speechunits.corpora.align import AlignConfig, AlignRequest, align_utterances
from speechunits.data.datadir import DataDir
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import write_lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path, help="Kaldi data dir with text")
    p.add_argument("--nj", type=int, default=1, help="parallel aligner processes")
    p.add_argument("--max-failed", type=float, default=0.2,
                   help="fail if more than this fraction of utterances cannot be aligned (default 0.2)")
    args = p.parse_args(argv)
    try:
        dd = DataDir.read(args.data)
        if dd.text is None:
            raise SpeechUnitsError(f"{args.data} has no text: transcripts are needed for forced alignment")
        if dd.segments is not None:
            raise SpeechUnitsError(f"{args.data} has segments: align whole recordings")
        (args.data / "alignments.ctm").unlink(missing_ok=True)
        requests = [AlignRequest(u, dd.wav_scp[u], tuple(dd.text[u].split())) for u in dd.utts]
        report = BatchReport()
        batch = align_utterances(requests, AlignConfig(nj=args.nj), report=report)
        failed = sorted(report.failures)
        write_lines(args.data / "align_failed.txt", (report.failures[u] for u in failed))
        if len(failed) > args.max_failed * len(requests):
            raise SpeechUnitsError(f"{len(failed)} of {len(requests)} utterances failed to align "
                                   f"(see {args.data / 'align_failed.txt'})")
        if failed:
            dd = dd.subset(batch.alignments)
            dd.write(args.data)
        writer.write_alignments(args.data, {u: batch.alignments[u].phones for u in dd.utts}, dd.utt2spk,
                                words={u: batch.alignments[u].words for u in dd.utts})
    except SpeechUnitsError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.data}: aligned {len(batch.alignments)} utterances ({batch.speed:.1f} s of audio per second), "
          f"{len(failed)} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
