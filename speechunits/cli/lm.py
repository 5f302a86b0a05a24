"""`speechunits lm ACTION ...`: the unit language model (train, score, sample, n-gram, spoken-LM metrics)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from speechunits.cli import COMMANDS, add_subcommands
from speechunits.registry import Registry

LM_ACTIONS = Registry("lm action")


@COMMANDS.register("lm")
class LM:
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
class Train:
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
            print(f"speechunits lm train: interrupted; rerun the same command to resume", file=sys.stderr)
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
class Ngram:
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
        from speechunits.lm.ngram import NgramLM
        from speechunits.units.formats import read_units

        if not args.out.endswith(".json"):
            raise ValueError(f"{args.out}: the n-gram model file must end in .json")
        seqs = read_units(args.units)
        lm = NgramLM.fit(seqs.values(), order=args.order, vocab_size=args.vocab_size, discount=args.discount,
                         level=args.level)
        lm.save(args.out)
        print(f"{args.out}: {lm.name} over {lm.vocab_size} units ({args.level}), {len(seqs)} utterances, "
              f"discounts {', '.join(f'{d:.3f}' for d in lm.discounts)}")
        return 0


@LM_ACTIONS.register("score")
class Score:
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
class Sample:
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
                             use_cache=not args.no_cache)
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
