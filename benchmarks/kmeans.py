#!/usr/bin/env python
"""k-means fit speed and quality: `speechunits kmeans fit` (the library's fit_kmeans on a
feature dir) against scikit-learn's KMeans on the same frames in memory.

    OMP_NUM_THREADS=1 python benchmarks/kmeans.py [--frames 1000000] [--dim 39] [--k 100]
    python benchmarks/kmeans.py --features feats/mfcc_dd --k 100     # a real feature dir

Without --features it writes a feature dir of speech-like frames (a 400-component
Gaussian mixture, utterances of 100-600 frames) to --workdir. Prints both fits' wall
time and inertia (over every frame) and their ratios. scikit-learn runs with
n_init=1 and its default tolerance; both run on the threads torch and OpenMP are given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_of  # noqa: E402


def make_feats(path: Path, frames: int, dim: int, seed: int) -> None:
    from speechunits.data.featdir import FeatureDir

    store = FeatureDir(path)
    if (path / "meta.json").is_file():
        return
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (400, dim))
    done, i = 0, 0
    while done < frames:
        n = min(int(rng.integers(100, 600)), frames - done)
        # runs of frames from one component, as phones last several frames
        comp = np.repeat(rng.integers(400, size=n // 8 + 1), 8)[:n]
        store.save(f"spk{i % 20:02d}-u{i:05d}", (centres[comp] + rng.normal(size=(n, dim))).astype(np.float32))
        done, i = done + n, i + 1
    store.write_meta(frame_shift=0.01, feature_dim=dim)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", help="a feature dir to fit on (default: generated)")
    p.add_argument("--workdir", default="/tmp/speechunits-kmeans-bench")
    p.add_argument("--frames", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=39)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--max-frames", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-sklearn", action="store_true")
    args = p.parse_args()

    import torch

    from speechunits.data.featdir import FeatureDir
    from speechunits.units.kmeans import KMeansConfig, fit_kmeans

    feats = Path(args.features) if args.features else Path(args.workdir) / f"feats_{args.frames}x{args.dim}"
    if not args.features:
        make_feats(feats, args.frames, args.dim, args.seed)
    cfg = KMeansConfig(k=args.k, max_frames=args.max_frames, seed=args.seed)
    result = {}
    wall, cpu = best_of(lambda: result.update(fit=fit_kmeans(feats, cfg)))
    model = result["fit"].model
    info = model.info
    print(f"{info['frames']} frames x {model.dim} dims, k={model.k}, torch threads {torch.get_num_threads()}")
    print(f"speechunits: {wall:.1f} s wall ({cpu:.1f} s CPU), {len(info['history'])} iterations on a sample of "
          f"{info['sample_frames']}, converged {info['converged']}, re-seeded {info['reseeded']}, "
          f"inertia {info['inertia']:.6g}")
    if args.no_sklearn:
        return
    from sklearn.cluster import KMeans as SkKMeans

    store = FeatureDir(feats)
    x = np.concatenate([store.load(u) for u in store.utts()])
    sk = {}
    sk_wall, sk_cpu = best_of(lambda: sk.update(m=SkKMeans(args.k, n_init=1, random_state=args.seed).fit(x)))
    sk_inertia = float(sk["m"].inertia_)
    ours = model.inertia(x)  # the same frames, the same way
    print(f"scikit-learn: {sk_wall:.1f} s wall ({sk_cpu:.1f} s CPU), {sk['m'].n_iter_} iterations, "
          f"inertia {sk_inertia:.6g}")
    print(f"inertia ours / scikit-learn: {ours / sk_inertia:.4f}; time ours / scikit-learn: {wall / sk_wall:.2f}")


if __name__ == "__main__":
    main()
