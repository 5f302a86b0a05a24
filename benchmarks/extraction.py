"""Speed and memory of unit extraction (speechunits.units.UnitExtractor and the extract job).

    .venv/bin/python benchmarks/extraction.py [--checkpoint EXP/best.pt] [--minutes 6] [--threads 2]
                                              [--hour-seconds 3600] [--skip-hour]

Model: a checkpoint, or pipelines/small.yaml (the default CPU model: log-mel in,
256-channel encoder, VQ with 64 codes) with random weights; speed does not depend
on the weights. Audio: synthetic utterances of 3-15 s (a new pair of tones every
80 ms plus noise), `--minutes` in all, 16 kHz.

1. Batched extraction through the Python API (`extract_batch`: features, padded
   batches, encoder, VQ), from waveforms in memory, as x real time
   (seconds of audio per second of compute).
2. Baseline: one utterance at a time, unbatched and unchunked (each utterance
   features + `model.encode` alone) on the same audio; the ratio batched/baseline.
3. The whole job (`speechunits extract` without the CLI: WAV files read from disk,
   npy + part files + units.txt/jsonl written) on the same audio: in this process
   with `--threads` threads, and (with --threads 2) as `extract --nj 2` runs it, two
   processes of one thread with half the files each, started together once both
   have loaded the model (process start-up excluded).
4. Peak memory for one long recording (`--hour-seconds`, default an hour) through
   the extract job in a fresh process: peak RSS (ru_maxrss) of that process, and of
   a process that only imports torch and builds the model, for comparison.

Timings are best of `--repeats` (the machine may be shared: read the ratios).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import best_of

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def synthetic(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    seg = int(0.08 * SR)
    out = np.empty(n, dtype=np.float32)
    for s in range(0, n, 20 * seg):  # 1.6 s blocks keep generation of an hour cheap
        m = min(20 * seg, n - s)
        t = np.arange(m) / SR
        f1 = np.repeat(rng.uniform(150, 900, 20), seg)[:m]
        f2 = np.repeat(rng.uniform(900, 3500, 20), seg)[:m]
        out[s : s + m] = 0.3 * np.sin(2 * np.pi * f1 * t) + 0.15 * np.sin(2 * np.pi * f2 * t)
    out += 0.01 * rng.standard_normal(n).astype(np.float32)
    return out


def build_extractor(checkpoint: str | None, **options):
    from speechunits.frontends.pipeline import feature_preset
    from speechunits.models.autoencoder import SpeechAutoencoder, load_model_config
    from speechunits.units.extractor import UnitExtractor

    if checkpoint:
        return UnitExtractor.from_checkpoint(checkpoint, **options)
    import torch

    torch.manual_seed(0)
    cfg = load_model_config(ROOT / "pipelines" / "small.yaml", ["speakers=[s0]", "input_dim=80"])
    return UnitExtractor(SpeechAutoencoder(cfg).eval(), feature_preset("fbank"), **options)


def save_checkpoint_for(extractor, path: Path) -> None:
    from speechunits.config import to_dict
    from speechunits.train.checkpoint import save_checkpoint
    from speechunits.train.config import experiment_config_from_dict

    cfg = experiment_config_from_dict({"model": to_dict(extractor.model.cfg)})
    cfg.data.input_features = to_dict(extractor.input_features)
    save_checkpoint(path, model=extractor.model, config=cfg, step=0, epoch=0)


def hour_child(args) -> None:
    """Runs in a fresh process: the extract job on one long file; prints peak RSS."""
    import torch

    torch.set_num_threads(args.threads)
    from speechunits.units.extractor import UnitExtractor
    from speechunits.units.extract_job import ExtractOptions, extract_units
    from speechunits.units.sources import open_audio_source

    if args.hour_child == "baseline":
        UnitExtractor.from_checkpoint(args.hour_checkpoint)
        print(f"RSS_MB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
        return
    ex = UnitExtractor.from_checkpoint(args.hour_checkpoint)
    source = open_audio_source(args.hour_child)
    t0 = time.perf_counter()
    report = extract_units(ex, source, args.hour_out, ExtractOptions(model="bench"))
    elapsed = time.perf_counter() - t0
    assert report.ok, report.failures
    print(f"RSS_MB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
    print(f"SECONDS {elapsed:.2f}")


def worker_child(args) -> None:
    """Runs in a fresh process with 1 torch thread: the extract job on one list of files,
    started by a line on stdin so that two workers run at the same time; prints its seconds
    (best of --repeats, each into a new folder)."""
    import torch

    torch.set_num_threads(1)
    from speechunits.units.extractor import UnitExtractor
    from speechunits.units.extract_job import ExtractOptions, extract_units
    from speechunits.units.sources import open_audio_source

    ex = UnitExtractor.from_checkpoint(args.hour_checkpoint)
    source = open_audio_source(args.worker_child)
    extract_units(ex, source, Path(args.hour_out) / "warm-up", ExtractOptions(model="bench"))
    print("READY", flush=True)
    sys.stdin.readline()
    best = float("inf")
    for r in range(args.repeats):
        t0 = time.perf_counter()
        extract_units(ex, source, Path(args.hour_out) / f"run{r}", ExtractOptions(model="bench"))
        best = min(best, time.perf_counter() - t0)
    print(f"SECONDS {best:.4f}", flush=True)


def two_workers(base_cmd: list[str], lists: list[Path], out: Path) -> float:
    """Two 1-thread worker processes, one list each, started together; the slower one's seconds."""
    procs = [subprocess.Popen(base_cmd + ["--worker-child", str(lst), "--hour-out", str(out / lst.stem)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for lst in lists]
    for p in procs:
        while p.stdout.readline().strip() != "READY":
            if p.poll() is not None:
                raise RuntimeError("extraction worker failed")
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    seconds = []
    for p in procs:
        out_text, _ = p.communicate()
        seconds += [float(line.split()[1]) for line in out_text.splitlines() if line.startswith("SECONDS")]
    return max(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="a trained checkpoint (default: pipelines/small.yaml, random weights)")
    p.add_argument("--minutes", type=float, default=6.0, help="audio for the speed runs (default: 6)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--hour-seconds", type=float, default=3600.0, help="length of the long recording (default: 3600)")
    p.add_argument("--skip-hour", action="store_true", help="skip the long-recording memory measurement")
    p.add_argument("--hour-child", help=argparse.SUPPRESS)
    p.add_argument("--hour-checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--hour-out", help=argparse.SUPPRESS)
    p.add_argument("--worker-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.hour_child:
        hour_child(args)
        return
    if args.worker_child:
        worker_child(args)
        return

    import soundfile as sf
    import torch

    torch.set_num_threads(args.threads)
    batched = build_extractor(args.checkpoint)
    baseline = build_extractor(args.checkpoint, max_batch=1, chunk_seconds=1e9)
    cfg = batched.model.cfg
    print(f"model: {args.checkpoint or 'pipelines/small.yaml (random weights)'}; encoder {cfg.encoder.channels} ch, "
          f"{cfg.bottleneck}, input {batched.input_features.frontend} ({cfg.input_dim} dims), tap {batched.tap}; "
          f"torch threads: {args.threads}")

    def audio(minutes: float, lo: float, hi: float, seed: int) -> tuple[list[np.ndarray], float]:
        rng = np.random.default_rng(seed)
        lengths, total = [], 0.0
        while total < minutes * 60:
            lengths.append(float(rng.uniform(lo, hi)))
            total += lengths[-1]
        return [synthetic(s, seed + i) for i, s in enumerate(lengths)], total

    batched.extract_batch([synthetic(2.0, 0)])  # warm-up
    for name, (lo, hi), minutes in (("3-15 s", (3, 15), args.minutes), ("0.5-2 s", (0.5, 2), args.minutes / 3)):
        ws, total = audio(minutes, lo, hi, 0 if lo > 1 else 10000)
        times = {"batched": (float("inf"), 0.0), "baseline": (float("inf"), 0.0)}
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            times["batched"] = min(times["batched"], best_of(lambda: batched.extract_batch(ws), 1))
            times["baseline"] = min(times["baseline"], best_of(lambda: [baseline(w) for w in ws], 1))
        t_feats = best_of(lambda: [batched.features(w) for w in ws], 1)[0]
        print(f"utterances of {name} ({len(ws)}, {total / 60:.1f} min):")
        for key, label in (("batched", "batched API:        "), ("baseline", "unbatched baseline: ")):
            wall, cpu = times[key]
            print(f"  {label} {wall:7.2f} s = {total / wall:6.0f} x real time "
                  f"({cpu:.2f} CPU s: {total / cpu:6.0f} s of audio per CPU second)")
        print(f"  features alone:      {total / t_feats:6.0f} x real time")
        print(f"  batched / baseline:  {times['baseline'][0] / times['batched'][0]:7.2f} x faster (wall), "
              f"{times['baseline'][1] / times['batched'][1]:.2f} x (CPU)")
        if lo > 1:
            waves = ws
    total = sum(w.size for w in waves) / SR

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        listing = []
        for i, w in enumerate(waves):
            path = tmp / "wav" / f"u{i:04d}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, w, SR, subtype="PCM_16")
            listing.append(f"u{i:04d} {path}")
        (tmp / "list.txt").write_text("\n".join(listing) + "\n")
        from speechunits.units.extract_job import ExtractOptions, extract_units
        from speechunits.units.sources import open_audio_source

        def job():
            out = tmp / f"out{time.perf_counter_ns()}"
            extract_units(batched, open_audio_source(tmp / "list.txt"), out, ExtractOptions(model="bench"))

        t_job = best_of(job, args.repeats)[0]
        print(f"extract job (files):   {t_job:7.2f} s = {total / t_job:7.0f} x real time "
              f"(one process, {args.threads} threads)")

        ckpt = tmp / "model.pt"
        save_checkpoint_for(batched, ckpt)
        base_cmd = [sys.executable, __file__, "--threads", str(args.threads), "--hour-checkpoint", str(ckpt),
                    "--repeats", str(args.repeats)]
        if args.threads == 2:  # what `extract --nj 2` does: two processes of one thread, half the files each
            halves = [tmp / "half1.txt", tmp / "half2.txt"]
            by_length = sorted(range(len(waves)), key=lambda i: -waves[i].size)
            for h, path in enumerate(halves):  # alternate by length: equal work
                path.write_text("".join(listing[i] + "\n" for i in by_length[h::2]))
            t_two = two_workers(base_cmd, halves, tmp / "workers")
            print(f"extract job (files):   {t_two:7.2f} s = {total / t_two:7.0f} x real time "
                  f"(two 1-thread processes side by side, as --nj 2; start-up excluded)")

        if args.skip_hour:
            return
        long_wav = tmp / "long.wav"
        with sf.SoundFile(long_wav, "w", SR, 1, subtype="PCM_16") as f:
            for k in range(int(np.ceil(args.hour_seconds / 60))):
                f.write(synthetic(min(60.0, args.hour_seconds - 60 * k), 1000 + k))
        (tmp / "long.txt").write_text(f"long {long_wav}\n")

        def child(which: str) -> dict[str, float]:
            res = subprocess.run(base_cmd + ["--hour-child", which, "--hour-out", str(tmp / "long_out")],
                                 capture_output=True, text=True, check=True, env={**os.environ})
            return {k: float(v) for k, v in (line.split() for line in res.stdout.splitlines() if " " in line)}

        base = child("baseline")
        long = child(str(tmp / "long.txt"))
        print(f"long recording ({args.hour_seconds / 60:.0f} min, one file): peak RSS {long['RSS_MB']:.0f} MB "
              f"(process with torch + model only: {base['RSS_MB']:.0f} MB), "
              f"{long['SECONDS']:.1f} s = {args.hour_seconds / long['SECONDS']:.0f} x real time")


if __name__ == "__main__":
    main()
