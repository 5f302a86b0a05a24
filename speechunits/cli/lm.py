"""`speechunits lm ACTION ...`: the unit language model (train, score, sample, n-gram, spoken-LM metrics)."""

from __future__ import annotations

import os
import shlex
import sys

from speechunits.cli import COMMANDS, add_subcommands
from speechunits.registry import Registry

LM_ACTIONS = Registry("lm action")


@COMMANDS.register("lm")
class LMCommand:
    """Unit language model: train, score, sample, an n-gram baseline, spoken-LM metrics.

    Actions:
      train       train a unit LM (transformer or LSTM) on a unit file: speechunits lm train UNITS EXP [key=value ...]
      ngram       fit the n-gram baseline (interpolated Kneser-Ney) on a unit file
      score       per-utterance log-probability and perplexity of a unit file
      sample      sample units from scratch or continue each utterance's first seconds (a unit file)
      make-sets   spot-the-word and grammaticality test sets from the synthetic generator (ZR2021 layout)
      eval        sWUGGY- / sBLIMP-style accuracies of a unit LM + unit extractor on such sets
      snippets    short audio snippets of where the most used units occur (for listening)
    Run `speechunits lm ACTION --help` for an action's options.
    """

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="lm_action", metavar="ACTION")
        sub.required = True
        add_subcommands(sub, LM_ACTIONS, "_lm_action")

    def run(self, args) -> int:
        return int(args._lm_action.run(args) or 0)


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


@LM_ACTIONS.register("train")
class LMTrainCommand:
    """Train a unit LM on a unit file into an experiment dir (the training engine: exact resume, DDP, metrics).

    UNITS: units.jsonl, units.txt (+ durations.txt) or a `speechunits extract` folder.
    Settings are key=value overrides of the LM config (model., data., optim., train.),
    or --config YAML. EXP gets config.yaml, command.txt, metrics.jsonl, last.pt,
    best.pt (lowest dev NLL), checkpoints/step-N.pt; rerunning resumes from last.pt.

    Examples:
      speechunits lm train exp/small/units_train exp/small/lm
      speechunits lm train units/train exp/lm-lstm model.kind=lstm model.layers=2 train.max_steps=3000
      speechunits lm train units/train exp/lm-dur model.durations=true data.dev_units=units/dev
      torchrun --nproc_per_node 2 -m speechunits.cli lm train units/train exp/lm
    """

    def add_arguments(self, p):
        p.add_argument("units", help="training unit file or extract folder")
        p.add_argument("exp_dir", help="experiment directory")
        p.add_argument("overrides", nargs="*", metavar="key=value",
                       help="e.g. model.kind=lstm model.dim=128 data.level=frames train.max_steps=1000")
        p.add_argument("--config", help="LM config YAML (e.g. an earlier EXP/config.yaml)")
        p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--resume", dest="resume", action="store_true", default=None, help="resume (an error without last.pt)")
        g.add_argument("--no-resume", dest="resume", action="store_false", help="start afresh")
        p.add_argument("--threads", type=int, help="torch CPU threads")
        from speechunits.cli.train import _IntermixedParser

        p.__class__ = _IntermixedParser  # key=value overrides before or after the options

    def run(self, args) -> int:
        from speechunits.lm.config import lm_config_from_dict, load_lm_config
        from speechunits.lm.trainer import LMTrainer

        _threads(args.threads)
        overrides = [f"data.train_units={args.units}", *args.overrides]
        cfg = load_lm_config(args.config, overrides) if args.config else lm_config_from_dict({}, overrides)
        words = ["lm", "train", args.units, args.exp_dir, *args.overrides]
        if args.config:
            words += ["--config", args.config]
        if args.device:
            words += ["--device", args.device]
        command = " ".join(shlex.quote(w) for w in words)
        world = os.environ.get("WORLD_SIZE", "1")
        command = f"torchrun --nproc_per_node {world} -m speechunits.cli {command}" if world != "1" else f"speechunits {command}"
        trainer = LMTrainer(cfg, args.exp_dir, device=args.device, resume=args.resume, command=command)
        try:
            result = trainer.fit()
        except KeyboardInterrupt:
            print("speechunits lm train: interrupted; rerun the same command to resume", file=sys.stderr)
            return 130
        if int(os.environ.get("RANK", "0")) == 0:
            for line in result.data.lines():
                print(line, file=sys.stderr)
            dev = result.dev
            ppl = f", dev perplexity {dev['ppl']:.3f}" if "ppl" in dev else ""
            print(f"{result.exp_dir}: step {result.step}, train loss {result.train.get('loss', float('nan')):.4g}{ppl}, "
                  f"{result.wall_seconds:.0f} s wall")
        return 0


@LM_ACTIONS.register("ngram")
class LMNgramCommand:
    """Fit the n-gram baseline (interpolated Kneser-Ney) on a unit file; writes a JSON model.

    Examples:
      speechunits lm ngram units/train exp/lm/ngram.json --order 4
      speechunits lm ngram units/train exp/lm/ngram-frames.json --level frames --vocab-size 64
    """

    def add_arguments(self, p):
        p.add_argument("units", help="training unit file or extract folder")
        p.add_argument("out", help="model file to write (.json)")
        p.add_argument("--order", type=int, default=4, help="n (default: %(default)s)")
        p.add_argument("--level", choices=("units", "frames"), default="units", help="token level (default: units)")
        p.add_argument("--vocab-size", type=int, help="unit ids 0..V-1 (default: max id + 1 of the data)")
        p.add_argument("--discount", type=float, help="one fixed discount (default: n1 / (n1 + 2 n2) per order)")

    def run(self, args) -> int:
        from speechunits.errors import SpeechUnitsError
        from speechunits.lm.ngram import NgramLM
        from speechunits.units.formats import read_units

        if not args.out.endswith(".json"):
            raise SpeechUnitsError(f"{args.out}: the n-gram model file must end in .json")
        seqs = read_units(args.units)
        lm = NgramLM.fit(seqs.values(), order=args.order, vocab_size=args.vocab_size, discount=args.discount,
                         level=args.level)
        lm.save(args.out)
        print(f"{args.out}: {lm.name} over {lm.vocab_size} units ({args.level}), {len(seqs)} utterances, "
              f"discounts {', '.join(f'{d:.3f}' for d in lm.discounts)}")
        return 0


@LM_ACTIONS.register("score")
class LMScoreCommand:
    """Per-utterance log-probability and perplexity of a unit file under a unit LM (or an n-gram model).

    Prints the corpus perplexity per token (units + the end of each utterance);
    --output writes a JSON with the corpus figures and every utterance's
    logprob (nats), tokens and perplexity.

    Examples:
      speechunits lm score exp/lm units/test
      speechunits lm score exp/lm/ngram.json units/test --output exp/lm/ngram_test.json
    """

    def add_arguments(self, p):
        p.add_argument("lm", help="LM checkpoint / experiment dir, or an n-gram .json")
        p.add_argument("units", help="unit file or extract folder")
        p.add_argument("--output", help="JSON with per-utterance scores")
        p.add_argument("--device", default="cpu")
        p.add_argument("--threads", type=int, help="torch CPU threads")

    def run(self, args) -> int:
        from speechunits.fileio import write_json
        from speechunits.lm.scoring import load_scorer, perplexity
        from speechunits.units.formats import read_units

        _threads(args.threads)
        scorer = load_scorer(args.lm, device=args.device)
        scores = scorer.score(read_units(args.units))
        summary = perplexity(scores)
        if args.output:
            write_json(args.output, {
                "kind": "lm-score", "lm": str(args.lm), "model": scorer.name, "units": str(args.units),
                "level": scorer.level, **summary,
                "utterances_scores": [{"utt": s.utt, "logprob": s.logprob, "tokens": s.tokens,
                                       "perplexity": s.perplexity, "dur_logprob": s.dur_logprob} for s in scores],
            })
        print(f"{scorer.name} on {args.units}: {summary['utterances']} utterances, {summary['tokens']} tokens, "
              f"NLL {summary['nll']:.4f} nats/token, perplexity {summary['perplexity']:.3f}")
        return 0


@LM_ACTIONS.register("sample")
class LMSampleCommand:
    """Sample units from a unit LM: from scratch, or continuing each utterance's first seconds.

    Writes OUT/units.txt, durations.txt and units.jsonl (what `speechunits resynth`
    decodes) and OUT/sample.json (the options and, for continuations, how many units
    of each utterance are the prompt). Seeded: the same options give the same units.

    Examples:
      speechunits lm sample exp/lm samples/ --n 4 --temperature 0.8 --top-k 20
      speechunits lm sample exp/lm cont/ --prompt units/test --prompt-seconds 1.0 --max-utts 3
      speechunits resynth exp/small samples/ samples/wav --speaker spk01
    """

    def add_arguments(self, p):
        p.add_argument("lm", help="LM checkpoint or experiment dir")
        p.add_argument("out", help="output folder for the unit files")
        p.add_argument("--n", type=int, default=4, help="sequences from scratch (default: %(default)s)")
        p.add_argument("--prompt", help="unit file: continue each utterance's first --prompt-seconds instead")
        p.add_argument("--prompt-seconds", type=float, default=1.0, help="prompt length (default: %(default)s)")
        p.add_argument("--max-utts", type=int, help="continue only the first N utterances (sorted by id)")
        p.add_argument("--max-units", type=int, default=200, help="new units per utterance at most (default: %(default)s)")
        p.add_argument("--min-units", type=int, default=10,
                       help="new units per utterance at least: the end is not drawn before (default: %(default)s)")
        p.add_argument("--temperature", type=float, default=1.0)
        p.add_argument("--top-k", type=int, default=0, help="sample among the k most likely (default: all)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--no-cache", action="store_true", help="recompute the prefix at every step (slow reference)")
        p.add_argument("--device", default="cpu")

    def run(self, args) -> int:
        import time

        from speechunits.fileio import write_json
        from speechunits.lm.checkpoint import load_lm
        from speechunits.lm.sample import SampleOptions, continue_units, sample_units
        from speechunits.units.formats import read_units, write_units

        loaded = load_lm(args.lm, device=args.device)
        opts = SampleOptions(max_units=args.max_units, temperature=args.temperature, top_k=args.top_k,
                             use_cache=not args.no_cache, min_units=min(args.min_units, args.max_units))
        t0 = time.perf_counter()
        info = {"kind": "lm-sample", "lm": loaded.path, "temperature": args.temperature, "top_k": args.top_k,
                "seed": args.seed, "max_units": args.max_units}
        if args.prompt:
            seqs = read_units(args.prompt)
            utts = sorted(seqs)[: args.max_utts] if args.max_utts else sorted(seqs)
            out, n_prompt = continue_units(loaded, {u: seqs[u] for u in utts}, args.prompt_seconds, opts, args.seed)
            info.update(prompt=str(args.prompt), prompt_seconds=args.prompt_seconds, prompt_units=n_prompt)
        else:
            out = sample_units(loaded, args.n, opts, args.seed)
        seconds = time.perf_counter() - t0
        write_units(args.out, out)
        write_json(os.path.join(args.out, "sample.json"), info)
        total = sum(s.units.size for s in out.values())
        print(f"{args.out}: {len(out)} sequences, {total} units ({seconds:.1f} s)")
        return 0


@LM_ACTIONS.register("make-sets")
class LMMakeSetsCommand:
    """Spot-the-word and grammaticality test sets from a synthetic corpus's generator (ZeroSpeech 2021 layout).

    Writes OUT/lexical/dev and OUT/syntactic/dev (<file>.wav, gold.csv, data/) and
    OUT/sets.json (last: its presence marks a finished build). Voices: speakers of
    CORPUS (default: its test speakers). Needs the `synth` extra (espeak-ng).

    Examples:
      speechunits lm make-sets data/synthetic data/spoken_lm
      speechunits lm make-sets data/synthetic data/spoken_lm --words 200 --pairs-per-type 50 --voices spk02 spk05
    """

    def add_arguments(self, p):
        from speechunits.lm.spoken_sets import SpokenSetsConfig

        d = SpokenSetsConfig()
        p.add_argument("corpus", help="synthetic corpus folder (with corpus.json)")
        p.add_argument("out", help="output folder")
        p.add_argument("--words", type=int, default=d.words, help="word / non-word pairs per voice (default: %(default)s)")
        p.add_argument("--pairs-per-type", type=int, default=d.pairs_per_type,
                       help="grammaticality pairs per subtype and voice (3 subtypes; default: %(default)s)")
        p.add_argument("--voices", nargs="+", default=[], help="corpus speakers to speak with (default: test speakers)")
        p.add_argument("--seed", type=int, default=d.seed)

    def run(self, args) -> int:
        from speechunits.lm.spoken_sets import SpokenSetsConfig, make_spoken_sets

        cfg = SpokenSetsConfig(words=args.words, pairs_per_type=args.pairs_per_type, voices=tuple(args.voices),
                               seed=args.seed)
        info = make_spoken_sets(args.corpus, args.out, cfg)
        print(f"{args.out}: {info['lexical_pairs']} spot-the-word pairs, {info['syntactic_pairs']} grammaticality "
              f"pairs, voices {', '.join(info['config']['voices'])}")
        return 0


@LM_ACTIONS.register("eval")
class LMEvalCommand:
    """Spot-the-word (sWUGGY-style) and grammaticality (sBLIMP-style) accuracy of a unit LM + unit extractor.

    SETS holds lexical/<split> and/or syntactic/<split> (wavs + gold.csv): the sets of
    `speechunits lm make-sets`, or the real ZeroSpeech 2021 dataset folder. Units come
    from --extractor (a trained model; extracted into OUT/<task>_<split>/units, resumable)
    or from --units TASK=UNITS (already extracted, e.g. by k-means; utterance ids =
    the gold filenames). Writes OUT/<task>/<split>.txt (ZeroSpeech submission lines
    `filename logprob`) and OUT/spoken_lm.json (accuracies with 95 % intervals and
    binomial p-values, by voice and type). Chance is 50 %.

    Examples:
      speechunits lm eval exp/lm data/spoken_lm exp/lm/spoken --extractor exp/small
      speechunits lm eval exp/lm/ngram.json data/spoken_lm exp/lm/spoken_ngram --extractor exp/small
      speechunits lm eval exp/lm data/spoken_lm out/ --extractor exp/masked --tap projection --kmeans exp/masked/kmeans.pt
      speechunits lm eval exp/lm zerospeech2021 out/ --units lexical=units/lex syntactic=units/syn
    """

    def add_arguments(self, p):
        p.add_argument("lm", help="LM checkpoint / experiment dir, or an n-gram .json")
        p.add_argument("sets", help="folder with lexical/<split> and/or syntactic/<split>")
        p.add_argument("out", help="output folder")
        p.add_argument("--extractor", help="model (checkpoint or experiment dir) whose units the LM was trained on")
        p.add_argument("--tap", default="bottleneck", choices=("encoder", "projection", "bottleneck", "conditioning"),
                       help="the extractor's tap (default: %(default)s; with --kmeans the tap it was fitted on)")
        p.add_argument("--kmeans", metavar="KM.pt", help="units from this k-means model over the extractor's tap "
                       "(a continuous model's units, as `speechunits extract --kmeans`)")
        p.add_argument("--dp-penalty", type=float, default=0.0, metavar="P",
                       help="with --kmeans, duration-penalised units (as `speechunits extract --dp-penalty`)")
        p.add_argument("--units", nargs="+", default=[], metavar="TASK=UNITS", help="pre-extracted units per task")
        p.add_argument("--split", default="dev", help="set split (default: %(default)s)")
        p.add_argument("--score", choices=("sum", "mean"), default="sum",
                       help="an item's score: its log-probability (sum over its units and the end, ZeroSpeech "
                            "2021's) or that per token (mean: no bias for fewer units) (default: %(default)s)")
        p.add_argument("--device", default="cpu")

    def run(self, args) -> int:
        from pathlib import Path

        from speechunits.errors import SpeechUnitsError
        from speechunits.fileio import write_json, write_lines
        from speechunits.lm.scoring import load_scorer
        from speechunits.lm.spoken_metrics import TASKS, extract_task_units, find_tasks, pair_accuracy, read_gold, score_pairs
        from speechunits.units.formats import read_units

        given = {}
        for item in args.units:
            if "=" not in item:
                raise SpeechUnitsError(f"--units {item!r}: expected TASK=UNITS")
            task, path = item.split("=", 1)
            if task not in TASKS:
                raise SpeechUnitsError(f"--units {item!r}: task must be one of {', '.join(TASKS)}")
            given[task] = path
        tasks = find_tasks(args.sets, args.split)
        scorer = load_scorer(args.lm, device=args.device)
        out = Path(args.out)
        result = {"kind": "spoken-lm", "lm": str(args.lm), "model": scorer.name, "sets": str(args.sets),
                  "split": args.split, "extractor": args.extractor, "kmeans": args.kmeans,
                  "dp_penalty": args.dp_penalty, "score": args.score, "tasks": {}}
        for task, folder in tasks.items():
            rows = read_gold(folder / "gold.csv")
            if task in given:
                units = read_units(given[task])
            elif args.extractor:
                units = extract_task_units(args.extractor, folder, rows, out / f"{task}_{args.split}", args.device,
                                           tap=args.tap, kmeans=args.kmeans, penalty=args.dp_penalty)
            else:
                raise SpeechUnitsError(f"{task}: give --extractor MODEL or --units {task}=UNITS")
            scores = {s.utt: s.logprob / max(1, s.tokens) if args.score == "mean" else s.logprob
                      for s in scorer.score(units)}
            pairs = score_pairs(rows, scores, where=str(folder / "gold.csv"))
            write_lines(out / task / f"{args.split}.txt", [f"{u} {scores[u]:.6f}" for u in sorted(scores)])
            by = ("voice", "subtype") if task == "syntactic" else ("voice",)
            acc = pair_accuracy(pairs, by=by)
            result["tasks"][task] = acc
            lo, hi = acc["ci95"]
            print(f"{TASKS[task]} ({task}/{args.split}): {100 * acc['accuracy']:.1f} % of {acc['pairs']} pairs "
                  f"(95 % CI {100 * lo:.1f}-{100 * hi:.1f}, p = {acc['p_value']:.2g} vs chance 50 %)")
            for sub, s in acc.get("by_subtype", {}).items():
                print(f"  {sub}: {100 * s['accuracy']:.1f} % of {s['pairs']} pairs")
        write_json(out / "spoken_lm.json", result)
        return 0


@LM_ACTIONS.register("snippets")
class LMSnippetsCommand:
    """Short audio snippets of where the most used units occur (OUT/unit<k>-<i>.wav + snippets.json).

    Examples:
      speechunits lm snippets exp/small/units_test data/test exp/small/lm/snippets --top 20 --per-unit 3
    """

    def add_arguments(self, p):
        p.add_argument("units", help="unit file or extract folder (with the frame shift: units.jsonl)")
        p.add_argument("audio", help="the audio the units came from: data dir, folder or list")
        p.add_argument("out", help="output folder")
        p.add_argument("--top", type=int, default=20, help="most used units (default: %(default)s)")
        p.add_argument("--per-unit", type=int, default=3, help="snippets per unit (default: %(default)s)")
        p.add_argument("--context", type=float, default=0.05, help="seconds around each unit (default: %(default)s)")
        p.add_argument("--seed", type=int, default=0)

    def run(self, args) -> int:
        from speechunits.lm.snippets import unit_snippets
        from speechunits.units.formats import read_units
        from speechunits.units.sources import open_audio_source

        res = unit_snippets(read_units(args.units), open_audio_source(args.audio), args.out, args.top,
                            args.per_unit, args.context, args.seed)
        n = sum(len(u["snippets"]) for u in res["units"])
        print(f"{args.out}: {n} snippets of {len(res['units'])} units")
        return 0
