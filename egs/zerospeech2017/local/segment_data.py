#!/usr/bin/env python3
"""Cut the long recordings of a data dir into segments of at most MAX seconds.

    python local/segment_data.py data/train_files data/train --max-seconds 30

Why: the ZeroSpeech 2017 training sets come as one long file per speaker (minutes to
an hour). Training draws random crops per utterance and holds out a fraction of the
utterances for its dev loss; with one utterance per speaker that would hold out whole
speakers (whose embeddings the model does not have). Segments restore many utterances
per speaker without copying audio: OUT/segments points into the same wav.scp.

Each recording of duration d becomes n = ceil(d / MAX) equal segments (no short tail),
named <utt>-<k> with k zero-padded, so that ids sort in time order and keep the speaker
prefix. OUT is written under a temporary name and renamed, so an OUT that exists is
complete.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

from speechunits.data.datadir import DataDir, Segment
from speechunits.errors import SpeechUnitsError


def segment(dd: DataDir, max_seconds: float) -> DataDir:
    """dd with every utterance cut into equal segments of at most `max_seconds`."""
    if dd.segments is not None:
        raise SpeechUnitsError("the data dir has segments already; segment the recordings once")
    if dd.utt2dur is None:
        raise SpeechUnitsError("the data dir has no utt2dur (run `speechunits utt2dur DATA` first)")
    segments, utt2spk, utt2dur = {}, {}, {}
    for utt in dd.utts:
        duration = dd.utt2dur[utt]
        n = max(1, math.ceil(duration / max_seconds - 1e-9))
        width = max(4, len(str(n - 1)))
        length = duration / n
        for k in range(n):
            seg = f"{utt}-{k:0{width}d}"
            start, end = k * length, duration if k == n - 1 else (k + 1) * length
            segments[seg] = Segment(utt, round(start, 3), round(end, 3))
            utt2spk[seg] = dd.utt2spk[utt]
            utt2dur[seg] = round(round(end, 3) - round(start, 3), 3)
    return DataDir(wav_scp=dict(dd.wav_scp), utt2spk=utt2spk, segments=segments,
                   spk2gender=None if dd.spk2gender is None else dict(dd.spk2gender), utt2dur=utt2dur)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="data dir of whole recordings (wav.scp, utt2spk, utt2dur)")
    p.add_argument("out", help="data dir to write (with segments)")
    p.add_argument("--max-seconds", type=float, default=30.0, help="longest segment (default 30)")
    args = p.parse_args(argv)
    if args.max_seconds <= 0:
        p.error("--max-seconds must be positive")
    try:
        out = segment(DataDir.read(args.data), args.max_seconds)
    except SpeechUnitsError as e:
        print(f"{p.prog}: error: {args.data}: {e}", file=sys.stderr)
        return 1
    final = Path(args.out)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    out.write(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    print(f"{args.out}: {len(out.utt2spk)} segments of {len(out.wav_scp)} recordings, "
          f"{len(set(out.utt2spk.values()))} speakers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
