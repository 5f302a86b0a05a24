#!/usr/bin/env python
"""Forced-alignment accuracy and speed on synthetic speech with exact phone times.

Builds a synthetic espeak corpus (speechunits.corpora.synthetic; default 2.5 min,
8 speakers), whose phone boundaries are exact by construction, then aligns every
utterance with the pocketsphinx path (speechunits.corpora.align) and compares the
boundaries with the truth, against two naive alignments printed in the same run:

- uniform/speech: find the speech region by frame energy (10 ms frames, more than
  35 dB below the loudest frame is silence), spread the phones evenly over it;
- uniform/utterance: spread the phones evenly over the whole utterance.

What the aligner is told: the reference phone sequence, cut at the reference
pauses into "words" (the synthetic corpus has no word times, so the stretches of
phones between pauses serve as words), with optional silence between them, as a
corpus's canonical pronunciations would be given. The baselines get the same
phone sequence. Where pocketsphinx puts the pauses is its own decision.

Boundaries scored: the onset of every non-silence phone, and the offset of each
phone that is followed by a pause or the end. Reported: mean absolute error, its
median, the share within 20 ms, the mean signed error (hypothesis - truth), and
alignment speed (seconds of audio per second, one process per --nj).

    python benchmarks/alignment.py [--minutes 2.5] [--seed 0] [--nj 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOLERANCE = 0.020


def chunks(segments):
    """Reference phones cut at pauses: ([phones of chunk 1], [phones of chunk 2], ...)."""
    out, cur = [], []
    for _, _, p in segments:
        if p == "sil":
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(p)
    if cur:
        out.append(cur)
    return out


def boundaries(segments):
    """Scored boundary times: each non-silence phone's onset, and its offset when a pause or the end follows."""
    times = []
    for k, (s, e, p) in enumerate(segments):
        if p == "sil":
            continue
        times.append(s)
        if k + 1 == len(segments) or segments[k + 1][2] == "sil":
            times.append(e)
    return np.array(times)


def speech_region(samples: np.ndarray, sr: int, floor_db: float = 35.0) -> tuple[float, float]:
    hop = sr // 100
    n = len(samples) // hop
    frames = samples[: n * hop].astype(np.float64).reshape(n, hop)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    on = np.flatnonzero(db > db.max() - floor_db)
    return on[0] * hop / sr, (on[-1] + 1) * hop / sr


def uniform(phones, start: float, end: float, duration: float):
    """phones spread evenly over [start, end), silence around."""
    edges = np.linspace(start, end, len(phones) + 1)
    segs = [(0.0, start, "sil")] if start > 0 else []
    segs += [(float(a), float(b), p) for a, b, p in zip(edges[:-1], edges[1:], phones)]
    if end < duration:
        segs.append((end, duration, "sil"))
    return segs


def summarise(name: str, errors: np.ndarray, signed: np.ndarray) -> dict:
    return {
        "name": name,
        "mae_ms": 1000 * float(np.mean(errors)),
        "median_ms": 1000 * float(np.median(errors)),
        "within": float(np.mean(errors <= TOLERANCE)),
        "bias_ms": 1000 * float(np.mean(signed)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speakers", type=int, default=8)
    parser.add_argument("--nj", type=int, default=1)
    parser.add_argument("--time-offset", type=float, default=None, help="override the frame -> time offset (s)")
    parser.add_argument("--workdir", default=None, help="where to build the corpus (default: a temporary folder)")
    args = parser.parse_args()

    import soundfile as sf

    from speechunits.batch import BatchReport
    from speechunits.corpora.align import AlignConfig, AlignRequest, align_utterances
    from speechunits.corpora.synthetic import SyntheticConfig, alignments_of, build_corpus

    tmp = tempfile.TemporaryDirectory() if args.workdir is None else None
    root = Path(args.workdir or tmp.name) / "synth"
    t0 = time.perf_counter()
    corpus = build_corpus(root, SyntheticConfig(minutes=args.minutes, seed=args.seed, speakers=args.speakers, test_speakers=0, nj=args.nj))
    print(f"corpus: {len(corpus.utterances)} utterances, {corpus.seconds / 60:.2f} min, {args.speakers} speakers "
          f"(built in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
    truth = alignments_of(corpus)
    paths = {u.utt: str(corpus.root / u.audio_path) for u in corpus.utterances}

    requests = []
    for utt, segs in truth.items():
        words = chunks(segs)
        requests.append(AlignRequest(utt, paths[utt], tuple(f"chunk{i}" for i in range(len(words))), tuple(map(tuple, words))))
    cfg = AlignConfig(nj=args.nj, time_offset=args.time_offset)
    report = BatchReport()
    batch = align_utterances(requests, cfg, report=report)
    print(f"pocketsphinx: {len(batch.alignments)} of {len(requests)} aligned in {batch.wall_seconds:.1f} s "
          f"({batch.speed:.1f}x real time, nj={args.nj}); time offset {cfg.offset * 1000:.4f} ms")  # fmt: skip
    for utt, why in sorted(report.failures.items()):
        print(f"  failed: {why}")

    errs: dict[str, list] = {"pocketsphinx": [], "uniform/speech": [], "uniform/utterance": []}
    for utt, ref in truth.items():
        if utt not in batch.alignments:
            continue
        samples, sr = sf.read(paths[utt], dtype="float32")
        duration = len(samples) / sr
        phones = [p for _, _, p in ref if p != "sil"]
        hyps = {
            "pocketsphinx": batch.alignments[utt].phones,
            "uniform/speech": uniform(phones, *speech_region(samples, sr), duration),
            "uniform/utterance": uniform(phones, 0.0, duration, duration),
        }
        r = boundaries(ref)
        for name, hyp in hyps.items():
            h = boundaries(hyp)
            if len(h) != len(r):  # the aligner put a pause where the truth has none (or missed one): score onsets only
                h = np.array([s for s, _, p in hyp if p != "sil"])
                rr = np.array([s for s, _, p in ref if p != "sil"])
            else:
                rr = r
            errs[name].append(h - rr)

    rows = []
    for name, parts in errs.items():
        signed = np.concatenate(parts)
        rows.append(summarise(name, np.abs(signed), signed))
    n_bound = sum(len(p) for p in errs["pocketsphinx"])
    print(f"\n{n_bound} boundaries in {len(errs['pocketsphinx'])} utterances")
    print(f"{'method':<20}{'mean |err| ms':>15}{'median ms':>12}{'<= 20 ms':>10}{'bias ms':>10}")
    for row in rows:
        print(f"{row['name']:<20}{row['mae_ms']:>15.1f}{row['median_ms']:>12.1f}{100 * row['within']:>9.1f}%{row['bias_ms']:>10.1f}")
    ours, base = rows[0], rows[1]
    print(f"\nmean absolute error: pocketsphinx is {base['mae_ms'] / ours['mae_ms']:.1f}x smaller than uniform/speech; "
          f"within 20 ms: {100 * ours['within']:.1f}% vs {100 * base['within']:.1f}%")  # fmt: skip
    if tmp is not None:
        tmp.cleanup()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
