"""`speechunits train`: train an autoencoder from a pipeline config."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from speechunits.cli import COMMANDS


class _IntermixedParser(argparse.ArgumentParser):
    """Positional key=value overrides mixed freely with options (`CONFIG --exp-dir X a=1 --device cpu b=2`)."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


@COMMANDS.register("train")
class TrainCommand:
    """Train a speech autoencoder (pipelines/*.yaml) into an experiment dir.

    Data paths come from the config's data: section or key=value overrides. The
    resolved config, command line, checkpoints (last.pt, best.pt, checkpoints/step-N.pt)
    and metrics.jsonl go to --exp-dir. An existing EXP/last.pt is resumed exactly
    unless --no-resume. Multi-process: run under torchrun (one process per GPU, or
    gloo on CPU); only rank 0 writes.

    Examples:
      speechunits train pipelines/small.yaml --exp-dir exp/small \\
          data.train_dir=data/train data.input_feats=feats/train/fbank data.target_feats=feats/train/fbank
      speechunits train pipelines/wavenet-vq.yaml --exp-dir exp/vq optim.lr=2e-4 \\
          data.train_dir=data/train data.input_feats=feats/train/mfcc_dd
      torchrun --nproc_per_node 2 -m speechunits.cli train pipelines/wavenet-vq.yaml --exp-dir exp/vq ...
    """

    def add_arguments(self, p):
        p.add_argument("config", help="pipeline YAML (pipelines/*.yaml) or an experiment's config.yaml")
        p.add_argument("overrides", nargs="*", metavar="key=value",
                       help="dotted overrides, e.g. optim.lr=1e-3 model.encoder.channels=256 data.train_dir=data/train")
        p.add_argument("--exp-dir", required=True, help="experiment directory (checkpoints, logs)")
        p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--resume", dest="resume", action="store_true", default=None,
                       help="resume from EXP/last.pt (an error if there is none)")
        g.add_argument("--no-resume", dest="resume", action="store_false",
                       help="start afresh even if EXP/last.pt exists (its old checkpoints are removed)")
        p.add_argument("--threads", type=int,
                       help="torch CPU threads per process (default: torch's choice; 1 is fastest on a busy machine)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        # key=value overrides may come before or after the options (plain argparse stops
        # collecting a positional list at the first option)
        p.__class__ = _IntermixedParser

    def run(self, args) -> int:
        from speechunits.train.config import load_experiment_config
        from speechunits.train.trainer import Callback, Trainer

        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        cfg = load_experiment_config(args.config, args.overrides)
        rank = int(os.environ.get("RANK", "0"))
        show = rank == 0 and not args.no_progress

        class Progress(Callback):
            """A tqdm bar over steps; the latest train / dev figures as its postfix."""

            def __init__(self):
                self.bar = None
                self.post: dict[str, str] = {}

            def on_start(self, trainer):
                from tqdm import tqdm

                self.bar = tqdm(total=trainer.config.train.max_steps, initial=trainer.step, unit="step",
                                dynamic_ncols=True, file=sys.stderr, disable=not show)

            def on_step(self, trainer, step):
                self.bar.update(1)

            def on_log(self, trainer, step, split, scalars):
                if split == "train":
                    self.post["loss"] = f"{scalars['loss']:.4g}"
                    if "batch_perplexity" in scalars:
                        self.post["ppl"] = f"{scalars['batch_perplexity']:.1f}"
                elif split == "dev":
                    self.post["dev"] = f"{scalars['loss']:.4g}"
                    if "gap_shuffled" in scalars:
                        self.post["gap"] = f"{scalars['gap_shuffled']:.3g}"
                self.bar.set_postfix(self.post, refresh=False)

            def on_end(self, trainer, result):
                self.bar.close()

        words = ["train", args.config, *args.overrides, "--exp-dir", args.exp_dir]
        if args.device:
            words += ["--device", args.device]
        if args.resume is not None:
            words.append("--resume" if args.resume else "--no-resume")
        command = " ".join(shlex.quote(w) for w in words)
        if os.environ.get("WORLD_SIZE", "1") != "1":
            command = f"torchrun --nproc_per_node {os.environ['WORLD_SIZE']} -m speechunits.cli {command}"
        else:
            command = f"speechunits {command}"
        trainer = Trainer(cfg, args.exp_dir, device=args.device, resume=args.resume,
                          callbacks=[Progress()], command=command)
        try:
            result = trainer.fit()
        except KeyboardInterrupt:
            if rank == 0:
                print(f"speechunits train: interrupted; rerun the same command to resume from "
                      f"{os.path.join(args.exp_dir, 'last.pt')}", file=sys.stderr)
            return 130
        if rank == 0:
            for line in result.data.lines():
                print(line, file=sys.stderr)
            print(result.summary_line())
        return 0
