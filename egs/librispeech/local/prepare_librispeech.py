#!/usr/bin/env python3
"""Transcripts and speaker genders of a LibriSpeech subset, as Kaldi tables.

    python local/prepare_librispeech.py /data/LibriSpeech dev-clean data/local/dev-clean

Reads LIBRISPEECH/SUBSET/<spk>/<chapter>/<spk>-<chapter>.trans.txt (lines
`<spk>-<chapter>-<utt> WORDS...`) and LIBRISPEECH/SPEAKERS.TXT (`ID | SEX | SUBSET |
MINUTES | NAME`, comment lines start with `;`), and writes OUT/text (sorted, keyed by
the LibriSpeech utterance id, which `speechunits prepare folder` keeps as the
utterance id) and OUT/spk2gender (m/f) for the subset's speakers. SPEAKERS.TXT is
optional (no spk2gender then: the gender probes are skipped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speechunits.errors import DataFormatError
from speechunits.fileio import write_lines


def read_transcripts(subset: Path) -> dict[str, str]:
    """utt -> words from every trans.txt under the subset."""
    text: dict[str, str] = {}
    for path in sorted(subset.glob("*/*/*.trans.txt")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt, _, words = line.strip().partition(" ")
            if not words.strip():
                raise DataFormatError(f"utterance {utt} has no words", str(path), n)
            if utt in text:
                raise DataFormatError(f"utterance {utt} appears twice", str(path), n)
            text[utt] = " ".join(words.split())
    return text


def read_speakers(path: Path) -> dict[str, str]:
    """speaker id -> m/f from SPEAKERS.TXT."""
    genders: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 2 or fields[1].upper() not in ("M", "F"):
            raise DataFormatError(f"expected `ID | SEX | ...` with SEX M or F, got {line.strip()!r}", str(path), n)
        genders[fields[0]] = fields[1].lower()
    return genders


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("librispeech", type=Path, help="the LibriSpeech folder (subsets, SPEAKERS.TXT)")
    p.add_argument("subset", help="e.g. train-clean-100, dev-clean")
    p.add_argument("out", type=Path, help="folder for text and spk2gender")
    args = p.parse_args(argv)
    subset = args.librispeech / args.subset
    try:
        if not subset.is_dir():
            raise DataFormatError("no such subset folder", str(subset))
        text = read_transcripts(subset)
        if not text:
            raise DataFormatError("no <spk>-<chapter>.trans.txt files in <spk>/<chapter>/ folders", str(subset))
        speakers = sorted({d.name for d in subset.iterdir() if d.is_dir()})
        write_lines(args.out / "text", (f"{u} {text[u]}" for u in sorted(text)))
        info = args.librispeech / "SPEAKERS.TXT"
        if info.is_file():
            genders = read_speakers(info)
            missing = [s for s in speakers if s not in genders]
            if missing:
                raise DataFormatError(f"no gender for speakers {', '.join(missing[:10])}", str(info))
            write_lines(args.out / "spk2gender", (f"{s} {genders[s]}" for s in speakers))
        else:
            (args.out / "spk2gender").unlink(missing_ok=True)
    except DataFormatError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {len(text)} transcripts, {len(speakers)} speakers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
