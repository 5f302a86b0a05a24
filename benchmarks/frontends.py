"""Speed and agreement of our fbank/MFCC against kaldi-native-fbank (and librosa).

    .venv/bin/python benchmarks/frontends.py [--seconds 600] [--repeats 5] [--threads 1]

Audio: real utterances of the speechocean762 corpus beside the repository
(../shared/corpora/speechocean762-train, or --corpus), concatenated up to --seconds;
synthetic speech-like noise if the corpus is absent.
Two scenarios, one thread each, best of --repeats runs, timed as CPU time of the
calling thread (robust when other processes share the machine; wall time printed too):

- "long": the whole signal as one utterance;
- "per-utt": utterance by utterance (what `speechunits features` does), one call each.

Prints seconds, real-time factors (compute time / audio time), our speed-up over
kaldi-native-fbank, and the largest difference from it. kaldi-native-fbank's time
counts only accept_waveform + input_finished (reading its frames back into Python is
extra and left out, to its advantage). librosa is a second baseline (its own mel
and FFT conventions, so no agreement figure).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "speechocean762-train"  # ../shared
RATE = 16000


def load_audio(seconds: float, corpus: Path = CORPUS):
    """A list of utterances (float32 in [-1, 1)) totalling `seconds`, and where they came from."""
    import numpy as np

    utts, total = [], 0
    scp = corpus / "wav.scp"
    if scp.exists():
        import soundfile as sf

        from speechunits.data.datadir import read_wav_scp

        for rel in read_wav_scp(scp).values():
            x, rate = sf.read(corpus / rel, dtype="float32")
            if rate != RATE or x.ndim != 1:
                continue
            utts.append(x)
            total += len(x)
            if total >= seconds * RATE:
                break
        source = f"{len(utts)} utterances of {corpus.name}"
    if total < seconds * RATE:  # no corpus (or too little): modulated noise bursts, 3 s each
        rng = np.random.default_rng(0)
        while total < seconds * RATE:
            n = 3 * RATE
            env = np.abs(np.sin(np.arange(n) * 2 * np.pi * 3 / RATE))
            utts.append((0.1 * env * rng.standard_normal(n)).astype(np.float32))
            total += n
        source = f"{len(utts)} synthetic utterances"
    long = np.concatenate(utts)[: int(seconds * RATE)]
    return utts, long, source


def best_time(fn, repeats: int):
    """Best CPU time of this thread over `repeats` runs, and the last result.

    Everything runs single-threaded in the calling thread, so thread CPU time is the
    work done; unlike wall time it hardly changes when other processes share the
    cores (wall times are also kept, in WALL, for the record).
    """
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        c0, w0 = time.thread_time(), time.perf_counter()
        result = fn()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    WALL.append(min(wall))
    return min(cpu), result


WALL: list[float] = []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0, help="audio length (default 600 = 10 minutes)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the best is kept")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-librosa", action="store_true", help="skip the librosa baseline")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a data dir with wav.scp (default: %(default)s)")
    args = parser.parse_args()

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import torch

    import kaldi_native_fbank as knf
    from speechunits.frontends import build_frontend

    torch.set_num_threads(args.threads)
    utts, long, source = load_audio(args.seconds, args.corpus)
    duration = len(long) / RATE
    print(f"audio: {duration:.0f} s ({source}); threads: {args.threads}; best of {args.repeats}")
    print(f"torch {torch.__version__}, kaldi-native-fbank {getattr(knf, '__version__', '?')}")

    # (name, our front end config, kaldi-native-fbank options setter, librosa function)
    def fbank_opts(o):
        o.mel_opts.num_bins = 80

    cases = [
        ("fbank-80", "fbank", {"mel_opts": {"num_bins": 80}}, knf.FbankOptions, knf.OnlineFbank, fbank_opts),
        ("mfcc-13", "mfcc", {}, knf.MfccOptions, knf.OnlineMfcc, lambda o: None),
    ]

    def run_knf(options_cls, online_cls, setter, x):
        opts = options_cls()
        opts.frame_opts.dither = 0.0
        opts.frame_opts.snip_edges = False
        setter(opts)
        comp = online_cls(opts)
        comp.accept_waveform(RATE, x)
        comp.input_finished()
        return comp

    def knf_frames(comp):
        n = comp.num_frames_ready
        return np.array([comp.get_frame(i) for i in range(n)], dtype=np.float32).reshape(n, comp.dim)

    rows = []
    for label, name, config, options_cls, online_cls, setter in cases:
        fe = build_frontend(name, config)
        x_long = torch.from_numpy(long)
        x_knf = long * np.float32(32768.0)
        utts_t = [torch.from_numpy(u) for u in utts]
        utts_knf = [u * np.float32(32768.0) for u in utts]
        fe(x_long[None, :RATE])  # warm-up

        t_ours, ours = best_time(lambda: fe(x_long[None]).feats[0], args.repeats)
        t_knf, comp = best_time(lambda: run_knf(options_cls, online_cls, setter, x_knf), args.repeats)
        ref = knf_frames(comp)
        diff = np.abs(ours.numpy() - ref)
        t_ours_u, _ = best_time(lambda: [fe.compute(u) for u in utts_t], args.repeats)
        t_knf_u, _ = best_time(
            lambda: [run_knf(options_cls, online_cls, setter, u) for u in utts_knf], args.repeats
        )
        t_lib = None
        if not args.no_librosa:
            t_lib = librosa_time(name, long, args.repeats)
        rows.append((label, t_ours, t_knf, t_lib, t_ours_u, t_knf_u, diff, ref, ours.shape))

    print()
    print("CPU seconds (best of runs); RTF = CPU time / audio time")
    print(f"{'features':<9} {'scenario':<8} {'ours s':>8} {'knf s':>8} {'librosa s':>9} "
          f"{'RTF ours':>9} {'RTF knf':>8} {'speed-up':>8}")
    for label, t_ours, t_knf, t_lib, t_ours_u, t_knf_u, *_ in rows:
        lib = f"{t_lib:9.3f}" if t_lib is not None else f"{'-':>9}"
        print(f"{label:<9} {'long':<8} {t_ours:8.3f} {t_knf:8.3f} {lib} "
              f"{t_ours / duration:9.5f} {t_knf / duration:8.5f} {t_knf / t_ours:7.1f}x")
        print(f"{label:<9} {'per-utt':<8} {t_ours_u:8.3f} {t_knf_u:8.3f} {'-':>9} "
              f"{t_ours_u / duration:9.5f} {t_knf_u / duration:8.5f} {t_knf_u / t_ours_u:7.1f}x")
    walls = iter(WALL)
    print("wall seconds (best of runs), same order: " + ", ".join(f"{w:.3f}" for w in walls))
    print()
    for label, *_, diff, ref, shape in rows:
        print(f"{label}: {shape[0]} frames x {shape[1]}; vs kaldi-native-fbank max |diff| {diff.max():.2e}, "
              f"99.9th percentile {np.quantile(diff, 0.999):.2e}, mean {diff.mean():.2e}")
        if label.startswith("fbank"):
            # float32 noise floor: bins far below the frame's strongest carry rounding noise in
            # both implementations (knf's own FFT is float64, its samples and window float32)
            loud = ref >= ref.max(axis=1, keepdims=True) - 60 * np.log(10) / 10
            print(f"{label}: max |diff| over bins within 60 dB of the frame's strongest bin: {diff[loud].max():.2e}")
    worst = min(r[2] / r[1] for r in rows)
    print(f"\nslowest speed-up over kaldi-native-fbank (long): {worst:.1f}x (target >= 5x)")
    return 0


def librosa_time(name: str, x, repeats: int) -> float | None:
    """librosa's log-mel / MFCC with the nearest settings (its own conventions)."""
    try:
        import librosa
        import numpy as np
    except ImportError:
        return None
    kw = dict(sr=RATE, n_fft=512, hop_length=160, win_length=400, window="hamming", center=True)
    if name == "fbank":
        fn = lambda: np.log(np.maximum(librosa.feature.melspectrogram(y=x, n_mels=80, fmin=20, **kw), 1e-10))  # noqa: E731
    else:
        fn = lambda: librosa.feature.mfcc(y=x, n_mfcc=13, n_mels=23, fmin=20, **kw)  # noqa: E731
    fn()  # warm-up (numba compiles, caches)
    return best_time(fn, repeats)[0]


if __name__ == "__main__":
    sys.exit(main())
