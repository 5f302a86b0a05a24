#!/usr/bin/env python
"""Make a small Kaldi corpus with damaged entries, to check that every command names every problem.

    python tools/make_damaged_corpus.py /tmp/damaged                 # synthetic audio, made here
    python tools/make_damaged_corpus.py /tmp/damaged --from /work/shared/corpora/speechocean762-train

By default the audio is synthetic (tone pairs and noise, seeded: the same seed gives
the same files), so it needs no shared data: 3 speakers x 6 utterances of 0.8 s at
16 kHz. With --from CORPUS the first --num-utts utterances of a Kaldi data dir are
copied instead (their audio is re-read and written as WAV).

Damage, one utterance each (in sorted order, never the first utterance of a speaker):

    truncated  a WAV file cut in half (the header promises more data)
    empty      a zero-byte file
    missing    wav.scp names a file that does not exist
    nan        a float WAV with a NaN sample
    rate8k     the audio at 8 kHz            (features: fails unless --resample; extract: resampled, NOTE)
    stereo     two channels                  (mixed down to mono, NOTE)
    malformed  a wav.scp line with no path
    pipe       a wav.scp entry `cmd |` (refused unless --allow-pipes; the command touches OUT/PIPE_RAN)

Besides the data dir (wav.scp, utt2spk, spk2utt, text) OUT holds:

    phone.item     one item per 100 ms of every utterance (5 phones cycling), for ABX
    bad.item       phone.item with damage: malformed lines (a missing field, a time that is not a
                   number, offset before onset) and items of an utterance that has no features
    damage.json    {damage: utterance} and the clean utterances, for tests

Prints which utterance got which damage. Audio paths in wav.scp are absolute.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

DAMAGES = ("truncated", "empty", "missing", "nan", "rate8k", "stereo", "malformed", "pipe")
# what `features` (without --resample / --allow-pipes) does with each damage
FAILS_IN_FEATURES = ("truncated", "empty", "missing", "nan", "rate8k", "malformed", "pipe")
NOTED_IN_FEATURES = ("stereo",)
SR = 16000
PHONES = ("aa", "iy", "s", "m", "t")
ITEM_HEADER = "#file onset offset #phone prev-phone next-phone speaker"
NO_FEATURES_UTT = "spkz-nofeatures"  # bad.item refers to it; no corpus has it


def synthetic_corpus(speakers: int = 3, per_speaker: int = 6, seconds: float = 0.8, seed: int = 0):
    """{utt: (samples float32, rate)} and {utt: speaker}: tone pairs changing every 100 ms, plus noise."""
    rng = np.random.default_rng(seed)
    audio, utt2spk = {}, {}
    n = int(round(seconds * SR))
    t = np.arange(n) / SR
    for s in range(speakers):
        spk = f"spk{s + 1}"
        for u in range(per_speaker):
            x = np.zeros(n)
            for k, start in enumerate(range(0, n, SR // 10)):
                f1, f2 = 200 + 150 * ((u + k) % len(PHONES)) + 20 * s, 1200 + 400 * ((u + k) % len(PHONES))
                sl = slice(start, start + SR // 10)
                x[sl] = 0.3 * np.sin(2 * np.pi * f1 * t[sl]) + 0.1 * np.sin(2 * np.pi * f2 * t[sl])
            x += 0.01 * rng.standard_normal(n)
            utt = f"{spk}-u{u + 1:02d}"
            audio[utt], utt2spk[utt] = (x.astype(np.float32), SR), spk
    return audio, utt2spk


def corpus_from(src: Path, num_utts: int):
    """The first num_utts utterances of a Kaldi data dir (wav.scp paths relative to it or absolute)."""
    from speechunits.data.datadir import read_table, read_wav_scp

    wav_scp = read_wav_scp(src / "wav.scp")
    utt2spk = read_table(src / "utt2spk")
    audio = {}
    for utt in sorted(wav_scp)[:num_utts]:
        x, sr = sf.read(src / wav_scp[utt], dtype="float32", always_2d=True)
        audio[utt] = (x[:, 0].copy(), sr)
    return audio, {u: utt2spk[u] for u in audio}


def pick_victims(utt2spk: dict[str, str]) -> dict[str, str]:
    """damage -> utterance; never a speaker's first utterance, so every speaker keeps clean audio."""
    firsts = {min(u for u in utt2spk if utt2spk[u] == s) for s in set(utt2spk.values())}
    candidates = [u for u in sorted(utt2spk) if u not in firsts]
    if len(candidates) < len(DAMAGES):
        raise SystemExit(f"need at least {len(DAMAGES)} utterances besides each speaker's first, found {len(candidates)}")
    return {d: candidates[(i * len(candidates)) // len(DAMAGES)] for i, d in enumerate(DAMAGES)}


def item_lines(audio: dict, utt2spk: dict[str, str]) -> list[str]:
    """One item per 100 ms window (the tone pairs), labelled by a cycling phone set."""
    rows = []
    rng = np.random.default_rng(0)  # seeded labels: phones recur in shared contexts, so every ABX cell type exists
    for utt in sorted(audio):
        x, sr = audio[utt]
        windows = int(len(x) / sr / 0.1)
        labels = [PHONES[i] for i in rng.integers(0, 3, windows)]
        for k in range(1, windows - 1):
            rows.append(f"{utt} {0.1 * k + 0.01:.4f} {0.1 * k + 0.09:.4f} {labels[k]} {labels[k - 1]} "
                        f"{labels[k + 1]} {utt2spk[utt]}")
    return rows


def write_damaged(out: Path, audio: dict, utt2spk: dict[str, str]) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(exist_ok=True)
    victims = pick_victims(utt2spk)
    damage_of = {u: d for d, u in victims.items()}
    lines = []
    for utt in sorted(audio):
        x, sr = audio[utt]
        new = (out / "audio" / f"{utt}.wav").resolve()
        damage = damage_of.get(utt)
        if damage in (None, "malformed"):
            sf.write(new, x, sr, subtype="PCM_16")
        elif damage == "truncated":
            sf.write(new, x, sr, subtype="PCM_16")
            data = new.read_bytes()
            new.write_bytes(data[: len(data) // 2])
        elif damage == "empty":
            new.write_bytes(b"")
        elif damage == "missing":
            new = new.with_name("does-not-exist.wav")
        elif damage == "nan":
            x = x.copy()
            x[len(x) // 3] = np.nan
            sf.write(new, x, sr, subtype="FLOAT")
        elif damage == "rate8k":
            sf.write(new, x[::2], sr // 2, subtype="PCM_16")
        elif damage == "stereo":
            sf.write(new, np.stack([x, 0.5 * x], axis=1), sr, subtype="PCM_16")
        elif damage == "pipe":
            sf.write(new, x, sr, subtype="PCM_16")
            marker = shlex.quote(str((out / "PIPE_RAN").resolve()))
            new = f"touch {marker}; cat {shlex.quote(str(new))} |"
        lines.append(utt if damage == "malformed" else f"{utt} {new}")
        if damage:
            print(f"{damage:10s} {utt}")
    (out / "wav.scp").write_text("\n".join(lines) + "\n")
    (out / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in sorted(utt2spk)))
    spk2utt: dict[str, list[str]] = {}
    for u in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[u], []).append(u)
    (out / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    (out / "text").write_text("".join(f"{u} {' '.join(PHONES)}\n" for u in sorted(utt2spk)))
    items = item_lines(audio, utt2spk)
    (out / "phone.item").write_text("\n".join([ITEM_HEADER, *items]) + "\n")
    first = items[0].split()
    bad = [
        *items,
        f"{first[0]} 0.1100 {first[3]} {first[4]} {first[5]} {first[6]}",  # a field missing
        f"{first[0]} zero 0.1900 {first[3]} {first[4]} {first[5]} {first[6]}",  # onset not a number
        f"{first[0]} 0.1900 0.1100 {first[3]} {first[4]} {first[5]} {first[6]}",  # offset before onset
        f"{NO_FEATURES_UTT} 0.1100 0.1900 aa iy s spkz",
        f"{NO_FEATURES_UTT} 0.2100 0.2900 iy s m spkz",
    ]
    (out / "bad.item").write_text("\n".join([ITEM_HEADER, *bad]) + "\n")
    clean = sorted(u for u in audio if u not in damage_of)
    summary = {"damage": victims, "clean": clean, "bad_item_lines": [len(items) + 2 + k for k in range(3)],
               "no_features_utt": NO_FEATURES_UTT, "fails_in_features": list(FAILS_IN_FEATURES),
               "noted_in_features": list(NOTED_IN_FEATURES)}
    (out / "damage.json").write_text(json.dumps(summary, indent=2) + "\n")
    return victims


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output folder (the damaged data dir)")
    p.add_argument("--from", dest="corpus", help="copy utterances of this Kaldi data dir instead of synthesizing audio")
    p.add_argument("--num-utts", type=int, default=40, help="utterances taken with --from (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic audio")
    args = p.parse_args(argv)
    if args.corpus:
        audio, utt2spk = corpus_from(Path(args.corpus).resolve(), args.num_utts)
    else:
        audio, utt2spk = synthetic_corpus(seed=args.seed)
    write_damaged(Path(args.out), audio, utt2spk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
