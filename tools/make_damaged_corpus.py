#!/usr/bin/env python
"""Copy a Kaldi corpus and damage some of it, to check that batch jobs report every problem.

    python tools/make_damaged_corpus.py ../shared/corpora/speechocean762-train60 /tmp/damaged

Damage, one utterance each (in sorted order of the utterances): a truncated file, an
empty file, a missing file, a file with NaN samples, an 8 kHz file, a stereo file, and
a malformed wav.scp line. Prints which utterance got which damage. Audio paths in the
copy's wav.scp are absolute.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from speechunits.data.datadir import read_wav_scp

DAMAGES = ("truncated", "empty", "missing", "nan", "rate8k", "stereo", "malformed")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus")
    p.add_argument("out")
    args = p.parse_args()
    src, out = Path(args.corpus).resolve(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("utt2spk", "spk2utt", "spk2gender", "text"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)
    wav_scp = read_wav_scp(src / "wav.scp")
    utts = sorted(wav_scp)
    victims = dict(zip(DAMAGES, utts[5 :: len(utts) // len(DAMAGES)]))
    (out / "audio").mkdir(exist_ok=True)
    lines = []
    for utt in utts:
        path = src / wav_scp[utt]
        damage = next((d for d, u in victims.items() if u == utt), None)
        if damage is None:
            lines.append(f"{utt} {path}")
            continue
        x, sr = sf.read(path, dtype="float32")
        new = out / "audio" / f"{utt}.wav"
        if damage == "truncated":
            sf.write(new, x, sr, subtype="PCM_16")
            data = new.read_bytes()
            new.write_bytes(data[: len(data) // 2])
        elif damage == "empty":
            new.write_bytes(b"")
        elif damage == "missing":
            new = out / "audio" / "does-not-exist.wav"
        elif damage == "nan":
            x[len(x) // 3] = np.nan
            sf.write(new, x, sr, subtype="FLOAT")
        elif damage == "rate8k":
            sf.write(new, x[::2], sr // 2, subtype="PCM_16")
        elif damage == "stereo":
            sf.write(new, np.stack([x, 0.5 * x], axis=1), sr, subtype="PCM_16")
        lines.append(f"{utt}" if damage == "malformed" else f"{utt} {new}")
        print(f"{damage:10s} {utt}")
    (out / "wav.scp").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
