#!/usr/bin/env python
"""The unit LM's figures: held-out perplexity against n-grams, spoken-LM accuracies, sampling speed.

    python benchmarks/unit_lm.py perplexity --exp egs/synthetic/exp/small
    python benchmarks/unit_lm.py spoken --exp egs/synthetic/exp/small [--kmeans --feats egs/synthetic/feats/mfcc_dd \
        --corpus egs/synthetic/data/synthetic --sets egs/synthetic/data/spoken_lm --workdir /tmp/lm-kmeans] \
        [--masked --masked-workdir /tmp/lm-masked --masked-iterations 2] [--dp-penalties 0 1]
    python benchmarks/unit_lm.py speed [--exp egs/synthetic/exp/small] [--tokens 400]

`--exp` is an autoencoder experiment after the synthetic recipe's stage 9 (EXP/units_train,
EXP/units_test, EXP/lm/{transformer,ngram.json,spoken/}). After the speechocean762 recipe's
stage 7 (the LM over the default model's units of real speech):

    python benchmarks/unit_lm.py perplexity --exp egs/speechocean762/exp/masked-it2 \
        --lm egs/speechocean762/exp/masked-it2/lm/transformer --test-units egs/speechocean762/exp/masked-it2/units/dev \
        --train-units egs/speechocean762/exp/masked-it2/lm/units_train --label "masked-it2 units (k-means, 100)"

perplexity: the recipe's transformer LM (or --lm) and n-gram LMs of orders 1-5
(interpolated Kneser-Ney, fitted here on the transformer's own training units: EXP/units_train,
or EXP/units_lm_train after --lm-minutes) on the test speakers' units (or --test-units).

spoken: spot-the-word and grammaticality accuracy of the transformer and the 4-gram
from the recipe's evaluations, with 95 % intervals, p-values against chance and a
paired sign test transformer vs n-gram (pairs one gets right and the other wrong).
With --kmeans the same for k-means units (K=64, like the codebook) on the MFCC
features: `speechunits kmeans fit/apply`, features of the sets' audio, a transformer
LM (--lm-config, default pipelines/lm/unit-lm.yaml) and a 4-gram trained on them, all
through the CLI, with their held-out perplexity beside n-grams of orders 1-5. The LMs
train on the k-means units of the corpus's train split, or of --lm-data (the recipe's
--lm-minutes corpus, data/lm_train/data/train); --score mean scores items per token.
With --masked the same for the default model family: pipelines/masked.yaml trained on
the LM data (k-means labels of its MFCCs; 17 minutes on one thread for 100 minutes of
speech), k-means (K=100) on its projection, and (--masked-iterations 2, the default, the
recipes' default model) a second iteration predicting those labels, units of the last
by `speechunits extract --kmeans`; --masked-train-data trains the masked models on
another data dir than the LMs' (e.g. 100 minutes for the models, 500 for the LMs).
--dp-penalties P ... repeats the units and LMs for each duration penalty
(`--dp-penalty`, DPDP: 0 is each frame's nearest centroid):

    python benchmarks/unit_lm.py spoken --kmeans --masked --dp-penalties 0 1 \
        --lm-data egs/synthetic/data/lm_train/data/train --lm-config pipelines/lm/unit-lm-large.yaml

speed: units per second sampling with the KV cache (or the LSTM state) against
recomputing the prefix at every step, one thread, best of 3, fixed-length
generation (the end token masked): the recipe's transformer when --exp is given,
and random-weight models of two sizes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def speechunits(*args: str) -> None:
    exe = shutil.which("speechunits") or str(Path(sys.executable).parent / "speechunits")
    print("+ speechunits " + " ".join(args), flush=True)
    subprocess.run([exe, *args], check=True)


def _ppl_table(label: str, neural_path: Path, test_path: Path, fallback_train: Path) -> None:
    """Held-out perplexity of a transformer LM and of n-grams of orders 1-5 fitted on the
    transformer's own training units (its config's data.train_units)."""
    from speechunits.lm.ngram import NgramLM
    from speechunits.lm.scoring import load_scorer, perplexity as ppl
    from speechunits.units.formats import read_units

    neural = load_scorer(neural_path)
    train_path = Path(neural.config.data.train_units or fallback_train)
    if not train_path.exists():  # a path relative to where the LM was trained (the recipe's folder)
        train_path = fallback_train.parent / train_path.name
    train, test = read_units(train_path), read_units(test_path)
    vocab = neural.config.model.vocab_size
    rows = [("transformer", ppl(neural.score(test)))]
    for order in range(1, 6):
        lm = NgramLM.fit(train.values(), order=order, vocab_size=vocab)
        rows.append((f"{order}-gram Kneser-Ney", ppl(lm.score(test))))
    print(f"\n{label}: held-out units: {len(test)} test utterances, {rows[0][1]['tokens']} tokens; "
          f"{sum(s.units.size + 1 for s in train.values())} training tokens ({train_path}); {vocab} units")
    print(f"{'LM':<24} {'NLL nats':>9} {'perplexity':>11}")
    for name, r in rows:
        print(f"{name:<24} {r['nll']:>9.4f} {r['perplexity']:>11.3f}")
    best_name, best = min(rows[1:], key=lambda row: row[1]["perplexity"])
    print(f"perplexity transformer / best n-gram ({best_name}): {rows[0][1]['perplexity'] / best['perplexity']:.3f}")


def perplexity(args) -> None:
    exp = Path(args.exp)
    _ppl_table(args.label, Path(args.lm) if args.lm else exp / "lm" / "transformer",
               Path(args.test_units) if args.test_units else exp / "units_test",
               Path(args.train_units) if args.train_units else exp / "units_train")


def _pairs(spoken_dir: Path, sets: Path, task: str) -> dict:
    """(id, voice) -> credit of one LM's evaluation, from its submission file and the gold."""
    from speechunits.lm.spoken_metrics import read_gold, score_pairs

    scores = {}
    for line in (spoken_dir / task / "dev.txt").read_text().splitlines():
        f, s = line.split()
        scores[f] = float(s)
    return {(p.id, p.voice): p.credit for p in score_pairs(read_gold(sets / task / "dev" / "gold.csv"), scores)}


def _report(label: str, a_dir: Path, b_dir: Path, sets: Path) -> None:
    from speechunits.lm.spoken_metrics import sign_test

    for task in ("lexical", "syntactic"):
        if not (a_dir / task / "dev.txt").is_file():
            continue
        a, b = _pairs(a_dir, sets, task), _pairs(b_dir, sets, task)
        for name, d in (("transformer", a), ("4-gram", b)):
            res = json.loads((a_dir if d is a else b_dir).joinpath("spoken_lm.json").read_text())["tasks"][task]
            lo, hi = res["ci95"]
            print(f"{label:<22} {task:<10} {name:<12} {100 * res['accuracy']:6.1f} %  ({res['pairs']} pairs, "
                  f"95 % CI {100 * lo:.1f}-{100 * hi:.1f}, p = {res['p_value']:.2g})")
        better = sum(1 for k in a if a[k] > b[k])
        worse = sum(1 for k in a if a[k] < b[k])
        print(f"{'':<22} {task:<10} transformer right / 4-gram wrong: {better}, the reverse: {worse}, "
              f"sign test p = {sign_test(better, worse):.2g}")


def _lm_figures(label: str, work: Path, train_units: Path, test_units: Path, given: dict[str, Path], vocab: int,
                args) -> None:
    """A transformer (--lm-config) and a 4-gram on `train_units`, their held-out perplexity beside
    n-grams of orders 1-5 on `test_units`, and both LMs' spoken-LM accuracies on the sets' units
    (`given`: task -> units), all through the CLI; every step skipped when its output exists."""
    lm, ngram = work / "lm", work / "ngram.json"
    if not (lm / "best.pt").is_file():
        speechunits("lm", "train", str(train_units), str(lm), "--config", args.lm_config, f"model.vocab_size={vocab}",
                    *args.lm_overrides.split())
    if not ngram.is_file():
        speechunits("lm", "ngram", str(train_units), str(ngram), "--order", "4", "--vocab-size", str(vocab))
    _ppl_table(label, lm, test_units, train_units)
    spoken_dir = work / ("spoken" if args.score == "sum" else f"spoken_{args.score}")
    units = [f"{task}={path}" for task, path in given.items()]
    for name, path in (("transformer", lm), ("ngram", ngram)):
        if not (spoken_dir / name / "spoken_lm.json").is_file():
            speechunits("lm", "eval", str(path), args.sets, str(spoken_dir / name), "--units", *units,
                        "--score", args.score)
    _report(f"{label}, {args.score}", spoken_dir / "transformer", spoken_dir / "ngram", Path(args.sets))


def _tasks(sets: Path) -> list[str]:
    return [t for t in ("lexical", "syntactic") if (sets / t / "dev" / "gold.csv").is_file()]


def _penalty_dir(work: Path, penalty: float) -> Path:
    return work if penalty == 0 else work / f"dp{penalty:g}"


def _kmeans_mfcc(args) -> None:
    """k-means (K=64, like the VQ codebook) on the corpus's MFCC features: units of the LM data,
    the test split and the sets (kmeans apply, --dp-penalty for each penalty), then _lm_figures."""
    work, corpus, sets = Path(args.workdir), Path(args.corpus), Path(args.sets)
    model = work / "kmeans64.pt"
    if not model.is_file():
        speechunits("kmeans", "fit", args.feats, str(model), "--k", "64", "--utts", str(corpus / "data" / "train"))
    feats = {"test": (args.feats, corpus / "data" / "test")}
    if args.lm_data:  # the LMs' training set: other audio (the recipe's --lm-minutes corpus)
        feats["lm_train"] = (str(work / "lm_train_mfcc"), Path(args.lm_data))
    else:
        feats["train"] = (args.feats, corpus / "data" / "train")
    for task in _tasks(sets):
        feats[task] = (str(work / f"{task}_mfcc"), sets / task / "dev" / "data")
    for name, (fdir, data) in feats.items():
        if fdir != args.feats and not (Path(fdir) / "meta.json").is_file():
            speechunits("features", str(data), fdir, "--type", "mfcc_dd", "--cmvn", "speaker")
    for penalty in args.dp_penalties:
        out = _penalty_dir(work, penalty)
        for name, (fdir, data) in feats.items():
            if not (out / f"units_{name}" / "units.jsonl").is_file():
                utts = ["--utts", str(data)] if fdir == args.feats else []
                speechunits("kmeans", "apply", str(model), fdir, str(out / f"units_{name}"), *utts,
                            "--dp-penalty", f"{penalty:g}")
        train = out / ("units_lm_train" if args.lm_data else "units_train")
        _lm_figures(f"k-means on MFCC (64), dp-penalty {penalty:g}", out, train, out / "units_test",
                    {t: out / f"units_{t}" for t in _tasks(sets)}, 64, args)


def _masked(args) -> None:
    """The default model family on the synthetic corpus: pipelines/masked.yaml trained on
    --masked-train-data (else the LM data: --lm-data, else the corpus's train split) with k-means
    (K=100) labels of its MFCCs, then
    k-means (K=100) on its projection; with --masked-iterations 2 (the default model, like the
    speechocean762 recipe's masked-it2) a second model predicts those k-means labels of the first's
    projection. Units of the last iteration for the LM data, the test split and the sets (extract
    --kmeans, --dp-penalty for each penalty), then _lm_figures. Iteration 1 lives in the workdir,
    iteration N in WORKDIR/itN."""
    work, corpus, sets = Path(args.masked_workdir), Path(args.corpus), Path(args.sets)
    data = Path(args.lm_data) if args.lm_data else corpus / "data" / "train"
    train = Path(args.masked_train_data) if args.masked_train_data else data  # what the models learn from
    for kind in ("fbank", "mfcc_dd"):
        if not (work / kind / "meta.json").is_file():
            speechunits("features", str(train), str(work / kind), "--type", kind, "--cmvn", "speaker")
    if not (work / "km_mfcc.pt").is_file():
        speechunits("kmeans", "fit", str(work / "mfcc_dd"), str(work / "km_mfcc.pt"), "--k", "100")
    if not (work / "targets" / "units.jsonl").is_file():
        speechunits("kmeans", "apply", str(work / "km_mfcc.pt"), str(work / "mfcc_dd"), str(work / "targets"))
    labels = work / "targets" / "codes"
    for iteration in range(1, args.masked_iterations + 1):
        it_dir = work if iteration == 1 else work / f"it{iteration}"
        model, km = it_dir / "masked", it_dir / "kmeans.pt"
        if not (model / "best.pt").is_file():
            speechunits("train", str(ROOT / "pipelines" / "masked.yaml"), "--exp-dir", str(model), "--no-progress",
                        f"data.train_dir={train}", f"data.input_feats={work / 'fbank'}",
                        f"data.target_feats={labels}", "data.batch_size=16")
        if not (it_dir / "projection" / "extract.json").is_file():
            speechunits("extract", str(model), str(train), str(it_dir / "projection"), "--tap", "projection")
        if not km.is_file():
            speechunits("kmeans", "fit", str(it_dir / "projection" / "dense"), str(km), "--k", "100")
        if iteration < args.masked_iterations:  # the next iteration's labels
            if not (it_dir / "targets_next" / "units.jsonl").is_file():
                speechunits("kmeans", "apply", str(km), str(it_dir / "projection" / "dense"),
                            str(it_dir / "targets_next"))
            labels = it_dir / "targets_next" / "codes"
    sources = {"lm_train": data, "test": corpus / "data" / "test"}
    sources.update({t: sets / t / "dev" / "data" for t in _tasks(sets)})
    for penalty in args.dp_penalties:
        out = _penalty_dir(it_dir, penalty)
        for name, src in sources.items():
            if not (out / f"units_{name}" / "units.jsonl").is_file():
                speechunits("extract", str(model), str(src), str(out / f"units_{name}"), "--tap", "projection",
                            "--kmeans", str(km), "--dp-penalty", f"{penalty:g}")
        _lm_figures(f"masked model (iteration {args.masked_iterations}), k-means (100), dp-penalty {penalty:g}",
                    out, out / "units_lm_train", out / "units_test", {t: out / f"units_{t}" for t in _tasks(sets)},
                    100, args)


def spoken(args) -> None:
    exp = Path(args.exp)
    if (exp / "lm" / "spoken" / "transformer").is_dir():
        _report("learned units (VQ)", exp / "lm" / "spoken" / "transformer", exp / "lm" / "spoken" / "ngram",
                Path(args.sets))
    if args.kmeans:
        _kmeans_mfcc(args)
    if args.masked:
        _masked(args)


def speed(args) -> None:
    from speechunits.lm.checkpoint import load_lm
    from speechunits.lm.models import UnitLMConfig, build_lm
    from speechunits.lm.sample import SampleOptions, sample_tokens

    torch.set_num_threads(1)
    models = []
    if args.exp:
        m = load_lm(Path(args.exp) / "lm" / "transformer").model
        models.append(("recipe transformer", m))
    for kind, dim, layers in (("transformer", 128, 3), ("transformer", 256, 6), ("lstm", 256, 2)):
        torch.manual_seed(0)
        cfg = UnitLMConfig(kind=kind, vocab_size=64, dim=dim, layers=layers, heads=4, ff_dim=4 * dim, dropout=0.0,
                           max_len=2048)
        models.append((f"{kind} {dim}x{layers} (random)", build_lm(cfg).eval()))
    n = args.tokens
    print(f"\nsampling {n} units from scratch, 1 thread, best of 3 (units per second)")
    print(f"{'model':<28} {'cached':>9} {'recompute':>10} {'speed-up':>9}")
    for name, model in models:
        res = {}
        for cache in (True, False):
            opts = SampleOptions(max_units=n, use_cache=cache, stop_at_end=False)
            out = {}

            def run():
                out["u"] = sample_tokens(model, [], None, opts, torch.Generator().manual_seed(0))[0]

            wall, _ = best_of(run, repeats=3, warmup=False)
            res[cache] = len(out["u"]) / wall
        print(f"{name:<28} {res[True]:>9.0f} {res[False]:>10.0f} {res[True] / res[False]:>8.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("perplexity")
    a.add_argument("--exp", default=str(ROOT / "egs/synthetic/exp/small"))
    a.add_argument("--lm", help="transformer LM (default: EXP/lm/transformer)")
    a.add_argument("--test-units", help="held-out units (default: EXP/units_test)")
    a.add_argument("--train-units", help="the LM's training units when its config's path does not resolve "
                   "from here (default: EXP/units_train)")
    a.add_argument("--label", default="learned units (VQ)", help="what the units are, for the table's title")
    b = sub.add_parser("spoken")
    b.add_argument("--exp", default=str(ROOT / "egs/synthetic/exp/small"))
    b.add_argument("--sets", default=str(ROOT / "egs/synthetic/data/spoken_lm"))
    b.add_argument("--kmeans", action="store_true")
    b.add_argument("--feats", default=str(ROOT / "egs/synthetic/feats/mfcc_dd"))
    b.add_argument("--corpus", default=str(ROOT / "egs/synthetic/data/synthetic"))
    b.add_argument("--workdir", default="/tmp/lm-kmeans")
    b.add_argument("--lm-data", help="data dir whose k-means units train the LMs (default: the corpus's train split), "
                   "e.g. egs/synthetic/data/lm_train/data/train of --lm-minutes")
    b.add_argument("--lm-config", default=str(ROOT / "pipelines" / "lm" / "unit-lm.yaml"))
    b.add_argument("--lm-overrides", default="", help="key=value overrides of the transformer's config, "
                   "e.g. 'train.max_steps=3000'")
    b.add_argument("--score", choices=("sum", "mean"), default="sum",
                   help="k-means: lm eval --score (an item's log-probability, or per token)")
    b.add_argument("--masked", action="store_true",
                   help="also the masked-prediction model (pipelines/masked.yaml) trained on --masked-train-data "
                        "(default: the LM data), its k-means units; finished steps in the work folders are reused, "
                        "whatever the options: give a new --masked-workdir / --workdir for other settings")
    b.add_argument("--masked-workdir", default="/tmp/lm-masked")
    b.add_argument("--masked-train-data", help="data dir the masked models train on (default: the LM data)")
    b.add_argument("--masked-iterations", type=int, choices=(1, 2), default=2,
                   help="masked-prediction iterations (2: the default model, labels of the first's projection)")
    b.add_argument("--dp-penalties", type=float, nargs="+", default=[0.0],
                   help="duration penalties of the k-means units (--dp-penalty; 0: nearest centroid)")
    c = sub.add_parser("speed")
    c.add_argument("--exp")
    c.add_argument("--tokens", type=int, default=400)
    args = p.parse_args()
    {"perplexity": perplexity, "spoken": spoken, "speed": speed}[args.what](args)


if __name__ == "__main__":
    main()
