"""Speed of WaveNet generation: incremental (per-layer queues) vs naive, batched vs not.

    .venv/bin/python benchmarks/generation.py [--seconds 1] [--batch 8] [--threads 2] [--quick]

The decoder is the paper-size WaveNet (2 x dilations 1..512 = 20 layers, residual,
gate and skip channels 256, 256-way softmax, 128-dim local and 64-dim speaker
conditioning), float32, random weights (speed does not depend on them).

1. Incremental generation of `--seconds` of 16 kHz audio for one utterance (every
   step timed; with --quick only `--quick-steps` steps, the rest extrapolated at
   the measured constant per-step cost).
2. Naive generation reruns the full forward pass over the whole prefix at every
   step, so step t costs one forward over t inputs. Running all 16000 steps would
   take hours, so: (a) the first `--naive-steps` steps are run for real, to check
   that a naive step costs what single forwards of those lengths cost (and, on the
   first 64 steps, that it produces the same samples as the incremental
   generator); (b) single forwards are timed at prefix lengths spread over the
   whole range, up to the full length; (c) the naive total is the sum over
   t = 1..N of the cost of step t, interpolated linearly between the measured
   lengths. So the total is an estimate from measured forwards, not a run.
3. Naive with a receptive-field window (the fairest naive baseline): each step
   feeds only the last 2047 inputs, which is exact (tests check it); its steady
   per-step cost is one forward over 2047 inputs, measured directly; the first
   2047 steps cost what the growing-prefix steps cost.
4. Batched vs unbatched incremental generation: samples/s (over all utterances)
   for batch 1 and `--batch` over `--batch-steps` steps.

Timings are best-of-`--repeats` for single forwards (timeit's convention); the
machine may be shared with other jobs, so absolute figures are noisy: read the
ratios, and rerun on a quiet machine for numbers to quote. On a busy CPU use
`--threads 1` (the default here): the per-step matmuls of incremental generation
are tiny ((B x 256) by (256 x 512)), and with several threads on oversubscribed
cores they can be 10-50x slower (thread hand-offs), which would flatter nothing
but distort the batch comparison.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from timing import best_of

from speechunits.models.wavenet import WaveNet, WaveNetConfig

SR = 16000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="audio to generate (default 1 s)")
    ap.add_argument("--naive-steps", type=int, default=300, help="naive steps actually run (default 300)")
    ap.add_argument("--batch", type=int, default=8, help="batch size for the batched run (default 8)")
    ap.add_argument("--batch-steps", type=int, default=1000, help="steps timed batched vs unbatched")
    ap.add_argument("--repeats", type=int, default=2, help="best of N for single forwards")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 = torch's default)")
    ap.add_argument("--quick", action="store_true", help="time only --quick-steps incremental steps")
    ap.add_argument("--quick-steps", type=int, default=2000)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    torch.manual_seed(0)
    cfg = WaveNetConfig()
    net = WaveNet(cfg, cond_dim=128, global_dim=64).to(device).eval()
    n = int(round(args.seconds * SR))
    rf = cfg.receptive_field
    print(f"WaveNet {len(cfg.dilations)} layers, R/G/S = {cfg.residual_channels}/{cfg.gate_channels}/"
          f"{cfg.skip_channels}, receptive field {rf} samples; {n} samples to generate; "
          f"device {device}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs visible")
    g = torch.Generator(device=device)
    cond = torch.randn(args.batch, n, 128, device=device)
    spk = torch.randn(args.batch, 64, device=device)

    # 0. correctness on the paper-size net: incremental == naive for the first steps
    check = min(64, n)
    inc_codes = net.generate(check, cond[:1], spk[:1], generator=g.manual_seed(1))
    naive_codes = net.generate_naive(check, cond[:1], spk[:1], generator=g.manual_seed(1))
    print(f"check: incremental == naive samples over the first {check} steps: {bool(torch.equal(inc_codes, naive_codes))}")

    # 1. incremental, one utterance
    steps = min(n, args.quick_steps) if args.quick else n
    net.generate(50, cond[:1], spk[:1], generator=g.manual_seed(0))  # warm-up
    sync()
    t_inc = best_of(lambda: (net.generate(steps, cond[:1], spk[:1], generator=g.manual_seed(0)), sync()))[0]
    per_step_inc = t_inc / steps
    total_inc = per_step_inc * n
    note = "" if steps == n else f" (timed {steps} steps, extrapolated at constant cost per step)"
    print(f"\n1. incremental, batch 1: {1 / per_step_inc:8.1f} samples/s; {n} samples in {total_inc:.1f} s{note}")

    # 2. naive over the whole prefix
    ns = min(args.naive_steps, n)
    sync()
    t0 = time.perf_counter()
    net.generate_naive(ns, cond[:1], spk[:1], generator=g.manual_seed(0))
    sync()
    t_naive_run = time.perf_counter() - t0

    def fwd(length: int) -> float:
        inp = torch.randint(0, cfg.quantization_channels, (1, length), device=device)
        c = cond[:1, :length] if length <= n else torch.randn(1, length, 128, device=device)

        def run():
            with torch.no_grad():
                net(inp, c, spk[:1])
            sync()

        return best_of(run, args.repeats)[0]

    lengths = sorted({1, max(1, ns // 2), ns, 1000, rf, 4000, 8000, n} & set(range(1, n + 1)))
    costs = np.array([fwd(t) for t in lengths])
    t_axis = np.arange(1, n + 1, dtype=float)

    def cost(t):  # piecewise-linear interpolation between measured forwards
        return np.interp(t, lengths, costs)

    total_naive = float(np.sum(cost(t_axis)))
    ran_pred = float(np.sum(cost(np.arange(1, ns + 1, dtype=float))))
    print(f"\n2. naive (full prefix each step): ran the first {ns} steps in {t_naive_run:.1f} s "
          f"(the measured forward costs predict {ran_pred:.1f} s)")
    for t, c in zip(lengths, costs):
        print(f"   one forward over {t:6d} inputs: {c * 1e3:9.1f} ms")
    print(f"   total for {n} steps (sum of step costs, interpolated between the points above): "
          f"{total_naive:.0f} s = {total_naive / 3600:.2f} h -> {n / total_naive:.3f} samples/s on average")
    print(f"   incremental speed-up over naive: {total_naive / total_inc:,.0f}x")

    # 3. naive with a receptive-field window
    win_cost = fwd(rf)
    head = float(np.sum(cost(np.arange(1, min(rf, n) + 1, dtype=float))))
    total_win = head + max(0, n - rf) * win_cost
    print(f"\n3. naive with a {rf}-sample window: one step (forward over {rf} inputs) {win_cost * 1e3:.1f} ms "
          f"-> {1 / win_cost:.2f} samples/s in steady state; total for {n} steps {total_win:.0f} s")
    print(f"   incremental speed-up over windowed naive: {total_win / total_inc:,.0f}x "
          f"(steady state, per step: {win_cost / per_step_inc:,.0f}x)")

    # 4. batched vs unbatched
    bs = min(args.batch_steps, n)
    sync()
    t1 = best_of(lambda: (net.generate(bs, cond[:1], spk[:1], generator=g.manual_seed(0)), sync()))[0]
    tb = best_of(lambda: (net.generate(bs, cond, spk, generator=g.manual_seed(0)), sync()))[0]
    r1, rb = bs / t1, args.batch * bs / tb
    print(f"\n4. incremental over {bs} steps: batch 1 {r1:8.1f} samples/s; batch {args.batch} {rb:8.1f} samples/s "
          f"(all utterances) -> batching gives {rb / r1:.1f}x")


if __name__ == "__main__":
    main()
