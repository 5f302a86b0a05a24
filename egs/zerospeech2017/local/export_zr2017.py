#!/usr/bin/env python3
"""Write features in the ZeroSpeech 2017 track 1 submission format.

    python local/export_zr2017.py exp/vq/units/test_1s/dense exp/vq/submission/2017/track1/english/1s

One text file per test wav, OUT/<name>.txt (the wav's stem), one line per frame:

    <time> <v1> <v2> ... <vD>

where time (seconds) is the centre of the frame: (i + 0.5) * frame_shift under the
project's time convention, strictly increasing as the challenge's evaluation requires.
Discrete codes ((T,) integer arrays, e.g. an extraction's codes/) are written as
one-hot vectors of --num-codes dimensions (the codebook size), so the challenge's
cosine / KL distances apply.

Resumable: a file that exists is kept. OUT/export.json, written last, records what
was exported and marks the folder complete. The ZeroSpeech 2020 submission layout
wants these folders as 2017/track1/<language>/<1s|10s|120s>/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from speechunits.data.featdir import FeatureDir
from speechunits.errors import SpeechUnitsError
from speechunits.fileio import write_json, write_text


def frame_lines(array: np.ndarray, frame_shift: float, num_codes: int | None = None) -> str:
    """The file body for one utterance: `time v1 ... vD` per frame."""
    a = np.asarray(array)
    if a.ndim == 2 and a.shape[1] == 1 and np.issubdtype(a.dtype, np.integer):
        a = a[:, 0]
    if a.ndim == 1:  # discrete codes -> one-hot
        if num_codes is None:
            raise SpeechUnitsError("discrete codes need --num-codes")
        if a.size and (a.min() < 0 or a.max() >= num_codes):
            raise SpeechUnitsError(f"codes outside [0, {num_codes})")
        a = np.eye(num_codes, dtype=np.float32)[a]
    if a.ndim != 2:
        raise SpeechUnitsError(f"expected (T, D) features or (T,) codes, got shape {a.shape}")
    times = (np.arange(a.shape[0]) + 0.5) * frame_shift
    rows = [f"{t:.4f} " + " ".join(f"{v:.6g}" for v in row) for t, row in zip(times, a.astype(np.float64))]
    return "\n".join(rows) + ("\n" if rows else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("features", help="feature dir of <utt>.npy arrays (T, D), or codes (T,)")
    p.add_argument("out", help="folder for the <utt>.txt files")
    p.add_argument("--num-codes", type=int, help="one-hot size for discrete codes")
    args = p.parse_args(argv)
    feats = FeatureDir(args.features)
    try:
        shift = feats.frame_shift
        if shift is None:
            raise SpeechUnitsError("no frame_shift file beside the features")
        utts = feats.utts()
        if not utts:
            raise SpeechUnitsError("no feature arrays")
        num_codes = args.num_codes
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "export.json").unlink(missing_ok=True)
        written = 0
        for utt in utts:
            target = out / f"{utt}.txt"
            if target.is_file():
                continue
            array = feats.load(utt)
            write_text(target, frame_lines(array, shift, num_codes))
            written += 1
    except SpeechUnitsError as e:
        print(f"{p.prog}: error: {args.features}: {e}", file=sys.stderr)
        return 1
    write_json(out / "export.json", {"features": str(args.features), "frame_shift": shift, "files": len(utts),
                                     "num_codes": num_codes})
    print(f"{args.out}: {written} files written, {len(utts) - written} already there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
