#!/usr/bin/env python
"""Training throughput: seconds of audio trained on per second of wall time.

For each pipeline (default: pipelines/small.yaml, the CPU-sized default, and
pipelines/wavenet-vq.yaml, the paper-size WaveNet autoencoder) times full training
steps exactly as the trainer runs them (forward, backward, gradient clipping, Adam,
schedule) on batches of random features and targets with the pipeline's shapes,
and prints audio seconds per wall second, the ratio to real time (1.0 = one hour
of speech per hour of training) and the ratio of each pipeline to the first.

The codebook starts from a random init here (k-means over the first batches is a
one-off, not part of the steady state). The first step is a warm-up and not timed.
The paper-size model is slow on a CPU: by default it times 2 steps on 2 x 1 s
crops (its own batch is 8 x 1 s); say so when quoting it.

With --amp bf16 it times pipelines/small.yaml and pipelines/masked.yaml (the CPU model for
real speech, 16 x 2 s crops as egs/speechocean762 trains it) twice, in float32 and under
bfloat16 autocast (what train.cpu_amp=bf16 / train.amp=bf16 turn on), and prints the
speed-up. On a CPU without AVX-512 BF16 or AMX bfloat16 is emulated and the ratio falls
below 1.

    python benchmarks/training.py [--device cpu] [--threads 2] [--steps 10] [--paper-steps 2]
    python benchmarks/training.py --amp bf16 [--threads 1] [--steps 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speechunits.models.autoencoder import build_model  # noqa: E402
from speechunits.train.config import load_experiment_config  # noqa: E402
from speechunits.train.optim import build_optimizer, build_scheduler  # noqa: E402


def random_batch(cfg, model, batch_size: int, seconds: float, device) -> dict:
    m = cfg.model
    frames = int(round(seconds / m.input_frame_shift))
    frames -= frames % m.encoder.total_stride
    feats = torch.randn(batch_size, frames, m.input_dim, device=device)
    latent = frames // m.encoder.total_stride
    n = latent * model.upsample_factor
    if model.decoder.target_kind == "waveform":
        target = torch.rand(batch_size, n, device=device) * 1.6 - 0.8
    elif model.decoder.target_kind == "labels":
        target = torch.randint(0, m.decoder_cfg["num_classes"], (batch_size, n), device=device)
    else:
        target = torch.randn(batch_size, n, m.decoder_cfg["out_dim"], device=device)
    return {
        "feats": feats,
        "feat_lengths": torch.full((batch_size,), frames, device=device),
        "target": target,
        "target_lengths": torch.full((batch_size,), n, device=device),
        "speaker_ids": torch.arange(batch_size, device=device) % max(1, len(m.speakers)) if m.speakers else None,
    }


def time_steps(yaml_path: Path, steps: int, batch_size: int | None, seconds: float | None, device: str,
               input_dim: int, amp: str = "none") -> dict:
    """input_dim: the feature dims (training takes them from the features; random batches have none);
    amp: none (float32) or bf16 (the forward pass under bfloat16 autocast, as the trainer runs it)."""
    cfg = load_experiment_config(yaml_path, [
        "model.speakers=[a, b, c, d]", f"model.input_dim={input_dim}",
        "model.bottleneck_cfg.codebook.init=random",
    ] if "codebook" in load_experiment_config(yaml_path).model.bottleneck_cfg else [
        "model.speakers=[a, b, c, d]", f"model.input_dim={input_dim}"])
    batch_size = batch_size or cfg.data.batch_size
    seconds = seconds or cfg.data.crop_seconds
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device).train()
    opt = build_optimizer(model, cfg.optim)
    sched = build_scheduler(opt, cfg.optim, cfg.train.max_steps)
    batch = random_batch(cfg, model, batch_size, seconds, device)
    params = [p for p in model.parameters() if p.requires_grad]

    def step():
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            out = model(**batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    wall = (time.perf_counter() - t0) / steps
    audio = batch_size * seconds
    return {
        "name": yaml_path.stem,
        "amp": amp,
        "params_m": sum(p.numel() for p in params) / 1e6,
        "batch": f"{batch_size} x {seconds:g} s",
        "step_s": wall,
        "audio_per_s": audio / wall,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--steps", type=int, default=10, help="timed steps of small.yaml (default: %(default)s)")
    p.add_argument("--paper-steps", type=int, default=2, help="timed steps of wavenet-vq.yaml (default: %(default)s)")
    p.add_argument("--paper-batch", type=int, default=2, help="its batch size on CPU (default: %(default)s)")
    p.add_argument("--amp", choices=["none", "bf16"], default="none",
                   help="bf16: time small.yaml and masked.yaml in float32 and under bfloat16 autocast instead")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.amp != "none":
        return compare_amp(args)

    runs = [
        time_steps(ROOT / "pipelines" / "small.yaml", args.steps, None, None, args.device, input_dim=80),
        time_steps(ROOT / "pipelines" / "wavenet-vq.yaml", args.paper_steps,
                   args.paper_batch if args.device == "cpu" else None, None, args.device, input_dim=39),
    ]
    base = runs[0]["audio_per_s"]
    print(f"training throughput on {args.device} ({args.threads} threads), random batches, k-means init off")
    print("audio s/s = seconds of speech trained on per wall second = the ratio to real time")
    print(f"{'pipeline':<14} {'params':>8} {'batch':>10} {'s/step':>8} {'audio s/s':>10} {'vs small':>9}")
    for r in runs:
        print(f"{r['name']:<14} {r['params_m']:>7.2f}M {r['batch']:>10} {r['step_s']:>8.3f} {r['audio_per_s']:>10.3g} "
              f"{r['audio_per_s'] / base:>9.4f}")
    slow = runs[1]["audio_per_s"]
    print(f"small.yaml trains {base / slow:.0f}x faster than the paper-size wavenet-vq.yaml "
          f"({args.paper_steps} timed steps of {runs[1]['batch']} for the latter).")
    hours = 1.0 / slow
    print(f"at this speed one hour of speech takes {hours:.1f} h per epoch with wavenet-vq, "
          f"{1.0 / base * 60:.1f} min with small.yaml")
    return 0


def compare_amp(args) -> int:
    """float32 against bfloat16 autocast, the same steps, batches and seed."""
    print(f"training throughput on {args.device} ({args.threads} threads), float32 against {args.amp} autocast")
    print(f"{'pipeline':<14} {'batch':>10} {'fp32 s/step':>12} {args.amp + ' s/step':>12} {'speed-up':>9}")
    for name, input_dim, batch, seconds in [("small", 80, None, None), ("masked", 80, 16, 2.0)]:
        yaml_path = ROOT / "pipelines" / f"{name}.yaml"
        ref = time_steps(yaml_path, args.steps, batch, seconds, args.device, input_dim)
        ours = time_steps(yaml_path, args.steps, batch, seconds, args.device, input_dim, amp=args.amp)
        print(f"{name:<14} {ref['batch']:>10} {ref['step_s']:>12.3f} {ours['step_s']:>12.3f} "
              f"{ref['step_s'] / ours['step_s']:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
