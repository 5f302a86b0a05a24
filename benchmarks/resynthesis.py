"""Speed of resynthesis from units (speechunits.units.Resynthesizer), against real time.

    .venv/bin/python benchmarks/resynthesis.py [--threads 1] [--batch 8] [--steps 640] [--paper-steps 320]

Random weights and random units (speed does not depend on either), float32, CPU.

1. WaveNet decoders, incremental generation (speechunits/models/wavenet.py), in
   samples per second summed over the batch, for batch 1 and `--batch`:
   - small: pipelines/wavenet-small.yaml (8 layers, 64 channels);
   - paper size: pipelines/wavenet-vq.yaml (20 layers, 256 channels).
   Each run generates only `--steps` (`--paper-steps`) samples per utterance, i.e. a
   few latent frames, and the rate is extrapolated to whole utterances: the
   incremental generator's cost per sample is constant (per-layer queues, no
   growing prefix), so samples/s over a few hundred steps is the steady rate.
   Real time is 16000 samples/s per utterance.
2. The filterbank decoder (pipelines/small.yaml) with the Griffin-Lim vocoder: x real time.

On a shared CPU use --threads 1 (the per-step matmuls are tiny; extra threads mostly
add hand-off cost). Timings are best of `--repeats`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from timing import best_of

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def build(pipeline: str):
    from speechunits.models.autoencoder import SpeechAutoencoder, load_model_config
    from speechunits.units.resynth import Resynthesizer

    torch.manual_seed(0)
    dim = 80 if pipeline.startswith("small") else 39  # log-mel or MFCC + deltas (training takes it from the features)
    cfg = load_model_config(ROOT / "pipelines" / pipeline, ["speakers=[s0, s1]", f"input_dim={dim}"])
    model = SpeechAutoencoder(cfg).eval()
    return Resynthesizer(model)


def random_units(rs, frames: int, count: int, seed: int = 0):
    from speechunits.units.formats import UnitSequence, run_length

    rng = np.random.default_rng(seed)
    size = rs.model.bottleneck.num_codes
    out = []
    for i in range(count):
        u, d = run_length(rng.integers(0, size, frames))
        out.append(UnitSequence(f"u{i}", u, d, rs.frame_shift))
    return out


def wavenet_rate(name: str, pipeline: str, steps: int, batch: int, repeats: int) -> None:
    rs = build(pipeline)
    f = rs.model.upsample_factor
    frames = max(1, steps // f)
    n = frames * f
    gen = torch.Generator().manual_seed(0)
    cfg = rs.model.decoder.cfg
    print(f"{name}: WaveNet {cfg.cycles} x {cfg.layers_per_cycle} layers, {cfg.residual_channels} channels; "
          f"{n} samples per utterance timed, extrapolated")
    for b in sorted({1, batch}):
        seqs = random_units(rs, frames, b)
        rs.synthesize(seqs[:1], "s0", generator=gen)  # warm-up
        dt, cpu = best_of(lambda: rs.synthesize(seqs, "s0", generator=gen), repeats)
        rate = b * n / dt
        print(f"  batch {b:2d}: {rate:7.0f} samples/s in all = {rate / SR:6.3f} x real time "
              f"({n / dt:5.0f} samples/s per utterance; per CPU second: {b * n / cpu:7.0f} samples)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=640, help="samples timed per utterance, small WaveNet")
    p.add_argument("--paper-steps", type=int, default=320, help="samples timed per utterance, paper-size WaveNet")
    p.add_argument("--fbank-seconds", type=float, default=10.0, help="audio for the fbank decoder + Griffin-Lim")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}; real time = {SR} samples/s")
    wavenet_rate("small (wavenet-small.yaml)", "wavenet-small.yaml", args.steps, args.batch, args.repeats)
    wavenet_rate("paper size (wavenet-vq.yaml)", "wavenet-vq.yaml", args.paper_steps, args.batch, args.repeats)

    rs = build("small.yaml")
    frames = int(args.fbank_seconds / rs.frame_shift)
    seqs = random_units(rs, frames, 1)
    rs.synthesize(seqs, "s0")
    dt, cpu = best_of(lambda: rs.synthesize(seqs, "s0"), args.repeats)
    print(f"filterbank decoder + Griffin-Lim ({rs.griffin_lim.iterations} iterations), small.yaml: "
          f"{args.fbank_seconds / dt:.1f} x real time ({args.fbank_seconds / cpu:.1f} s of audio per CPU second)")


if __name__ == "__main__":
    main()
