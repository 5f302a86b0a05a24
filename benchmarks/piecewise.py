"""Speed of the piecewise-constant quantizer's solvers, and the calibration of lambda.

    .venv/bin/python benchmarks/piecewise.py [--batch 16] [--seconds 10] [--threads 1]

1. Exact DP (inference) on a batch of B utterances x S seconds of 50 Hz latents,
   K = 256 and 512: the numba kernel and the pure-torch path, in hours of latents
   per second of compute, and their ratio against a straightforward DP (Python
   loops over t and k, numpy rows), timed on a short input and scaled per frame.
2. Greedy merging (training) on the same batch, K = 256, budget 0.25 segments
   per frame: the compiled kernel and the same kernel run by plain Python.
3. Lambda calibration: the price estimated from greedy runs on synthetic
   piecewise-constant data, then the DP with that price on fresh data of the
   same kind: segments kept / budget (1.0 = the inference rate equals the
   training budget), for the "max" (default) and "mean" estimators.

Timings are the best of --repeats runs (timeit's convention: the least
disturbed run) on --threads torch threads (numba kernels are single-threaded). The machine may be shared: read ratios, not
absolute figures, and rerun on a quiet machine for numbers to quote.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from timing import best_of

from speechunits.models.codebook import sq_distances
from speechunits.models.segmentation import (
    dp_segment,
    estimate_lambda,
    greedy_segment,
    numba_available,
    segment_budget,
)

FRAME_RATE = 50.0


def latents(rng, B, T, D=64, K=256):
    """Piecewise-constant latents with noise (phone-like runs of 3-12 frames) and a
    codebook of K frames drawn from them; returns dist (B, T, K) float32."""
    x = np.empty((B, T, D), np.float32)
    for b in range(B):
        t = 0
        while t < T:
            n = int(rng.integers(3, 13))
            x[b, t : t + n] = rng.normal(size=D)
            t += n
    x += 0.3 * rng.normal(size=x.shape).astype(np.float32)
    flat = x.reshape(-1, D)
    codebook = flat[rng.choice(len(flat), K, replace=False)]
    return sq_distances(torch.from_numpy(x), torch.from_numpy(codebook))


def naive_dp(d: np.ndarray, lam: float) -> float:
    """The textbook DP: Python loops over t and k, one utterance, cost only."""
    T, K = d.shape
    best = [float(d[0, k]) + lam for k in range(K)]
    for t in range(1, T):
        m = min(best)
        row = d[t]
        best = [min(best[k], m + lam) + float(row[k]) for k in range(K)]
    return min(best)


def bench_dp(args, rng):
    B, T = args.batch, int(args.seconds * FRAME_RATE)
    hours = B * args.seconds / 3600.0
    print(f"== exact DP, {B} x {args.seconds:g} s at {FRAME_RATE:g} Hz ({B * T} frames), CPU")
    for K in (256, 512):
        dist = latents(rng, B, T, K=K)
        lengths = torch.full((B,), T)
        lam = 5.0
        short = dist[0, : args.naive_frames].double().numpy()
        t_naive = best_of(lambda: naive_dp(short, lam), 3, warmup=True)[0] / args.naive_frames * (B * T)
        print(f"  K={K}: naive Python DP {t_naive:8.3f} s/batch (scaled from {args.naive_frames} frames)")
        backends = ["torch"] + (["numba"] if numba_available() else [])
        results = {}
        for be in backends:
            t = best_of(lambda: dp_segment(dist, lengths, lam, backend=be), args.repeats, warmup=True)[0]
            results[be] = dp_segment(dist, lengths, lam, backend=be)
            print(
                f"  K={K}: {be:6s} {t * 1e3:8.1f} ms/batch = {hours / t:7.2f} h of latents/s"
                f" = {B * args.seconds / t:8.0f}x real time; {t_naive / t:7.0f}x the naive DP"
            )
        if len(results) == 2:
            same = torch.equal(results["torch"].codes, results["numba"].codes)
            print(f"  K={K}: torch and numba segmentations identical: {same}")
        # The naive DP's optimum agrees with the vectorised one.
        one = dp_segment(torch.from_numpy(short)[None], lam=lam)
        print(f"  K={K}: naive cost {naive_dp(short, lam):.4f} vs dp_segment {float(one.cost[0]):.4f}")


def bench_greedy(args, rng):
    B, T, K = args.batch, int(args.seconds * FRAME_RATE), 256
    dist = latents(rng, B, T, K=K)
    lengths = torch.full((B,), T)
    budget = segment_budget(lengths, 0.25)
    print(f"== greedy merging, {B} x {args.seconds:g} s, K={K}, budget {budget} segments (0.25/frame)")
    variants = [("python", False)] + ([("numba", True)] if numba_available() else [])
    times = {}
    for name, use in variants:
        reps = args.repeats if use else max(1, args.repeats // 3)
        times[name] = best_of(lambda: greedy_segment(dist, lengths, budget, use_numba=use), reps, warmup=True)[0]
        print(f"  {name:6s} {times[name] * 1e3:8.1f} ms/batch ({B * T - budget} merges)")
    if len(times) == 2:
        print(f"  numba / python speed-up: {times['python'] / times['numba']:.1f}x")
    # Cost in context: the same batch through the DP.
    t_dp = best_of(lambda: dp_segment(dist, lengths, 5.0), args.repeats, warmup=True)[0]
    print(f"  greedy / DP time on the same batch: {times[variants[-1][0]] / t_dp:.1f}x")


def synthetic(rng, codebook, n_utts, noise):
    D = codebook.shape[1]
    frames, lengths, n_true = [], [], 0
    for _ in range(n_utts):
        seg_lens = rng.integers(4, 10, size=int(rng.integers(4, 8)))
        means = rng.normal(size=(len(seg_lens), D)) * 2
        frames.append(np.repeat(means, seg_lens, axis=0) + noise * rng.normal(size=(int(seg_lens.sum()), D)))
        lengths.append(int(seg_lens.sum()))
        n_true += len(seg_lens)
    xs = np.zeros((n_utts, max(lengths), D))
    for b, x in enumerate(frames):
        xs[b, : len(x)] = x
    return sq_distances(torch.from_numpy(xs), torch.from_numpy(codebook)), torch.tensor(lengths), n_true


def bench_lambda(args):
    print("== lambda calibration: DP segments with the estimated price / training budget (fresh data)")
    for D, K, noise in ((2, 32, 0.3), (8, 256, 0.5), (8, 64, 1.0)):
        ratios = {"max": [], "mean": []}
        for seed in range(args.lambda_seeds):
            rng = np.random.default_rng(seed)
            codebook = rng.normal(size=(K, D)) * 2
            dist, lengths, n_true = synthetic(rng, codebook, 16, noise)
            g = greedy_segment(dist, lengths, n_true)
            dist2, lengths2, n_true2 = synthetic(rng, codebook, 16, noise)
            for how in ratios:
                lam = estimate_lambda(g, how=how)
                ratios[how].append(int(dp_segment(dist2, lengths2, lam).num_segments.sum()) / n_true2)
        line = ", ".join(f"{h}: {np.mean(r):.3f} +- {np.std(r):.3f}" for h, r in ratios.items())
        print(f"  D={D} K={K} noise={noise}: {line}  ({args.lambda_seeds} seeds)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--naive-frames", type=int, default=100)
    p.add_argument("--lambda-seeds", type=int, default=12)
    p.add_argument("--skip", nargs="*", default=[], choices=["dp", "greedy", "lambda"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), numba {'yes' if numba_available() else 'no'}, "
        f"{os.cpu_count()} CPUs (possibly shared with other jobs: timings are indicative)"
    )
    rng = np.random.default_rng(0)
    if "dp" not in args.skip:
        bench_dp(args, rng)
    if "greedy" not in args.skip:
        bench_greedy(args, rng)
    if "lambda" not in args.skip:
        bench_lambda(args)


if __name__ == "__main__":
    main()
