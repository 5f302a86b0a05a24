"""`speechunits probe MODEL DATA --features FEATS`: probing classifiers on frozen model taps."""

from __future__ import annotations

import argparse

from speechunits.cli import COMMANDS


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


@COMMANDS.register("probe")
class ProbeCommand:
    """Probe what the model's taps know: phones, speaker, gender, filterbank frames.

    MODEL is a checkpoint (.pt) or an experiment dir (its best.pt, else last.pt).
    DATA is a Kaldi data dir (utt2spk; spk2gender for gender; alignments.ctm for
    phones unless --alignments). FEATS holds the model's input features for DATA
    (the same type the model was trained on). The frozen model (eval mode, no
    gradients) is run once per utterance and its four taps (encoder, projection,
    bottleneck, conditioning) plus the input features are probed with a linear
    and a one-hidden-layer MLP head, trained with Adam and early stopping on
    held-out utterances. Splits: unseen utterances of seen speakers for every
    target; unseen speakers for phones as well.

    Targets: frame phone (accuracy; silence counts as a phone), speaker and
    gender (frame-wise accuracy), and the mean 80-bin log-mel frame under each tap
    frame (R^2 against predicting the training mean). Log-mel frames come from
    --fbank, else from FEATS when they are log-mel (CMVN included, as the model
    saw them), else from DATA's audio (no CMVN).

    Writes OUT/probes.json (every result, with baselines and frame counts) and
    OUT/probes.md (the table); OUT defaults to MODEL_DIR/probes.

    Examples:
      speechunits probe exp/small data/train --features feats/train/fbank
      speechunits probe exp/vq/best.pt data/train --features feats/train/mfcc_dd \\
          --fbank feats/train/fbank --heads linear --targets phone,speaker
    """

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("model", help="checkpoint file or experiment dir")
        p.add_argument("data", help="Kaldi data dir (utt2spk, spk2gender, alignments.ctm)")
        p.add_argument("--features", required=True, help="the model's input features for DATA (folder or .scp)")
        p.add_argument("--alignments", help="CTM phone alignments (default: DATA/alignments.ctm when it exists)")
        p.add_argument("--fbank", help="80-bin log-mel features for the fbank target (default: see above)")
        p.add_argument("--out", help="output folder (default: MODEL_DIR/probes)")
        p.add_argument("--heads", type=_names, default=("linear", "mlp"), help="comma list (default: linear,mlp)")
        p.add_argument("--targets", type=_names, default=("phone", "speaker", "gender", "fbank"),
                       help="comma list of phone,speaker,gender,fbank (default: all)")
        p.add_argument("--taps", type=_names, default=("input", "encoder", "projection", "bottleneck", "conditioning"),
                       help="comma list (default: input and the four model taps)")
        p.add_argument("--split", "--splits", dest="splits", type=_names, default=("utterance", "speaker"),
                       help="utterance and/or speaker (speaker: phone probes on unseen speakers; default: both)")
        p.add_argument("--ignore-phones", type=_names, default=(), help="phones left out of the phone target, e.g. sil")
        p.add_argument("--max-frames", type=int, default=10000, help="training frames per probe (default: %(default)s)")
        p.add_argument("--max-test-frames", type=int, default=10000, help="test frames per probe (default: %(default)s)")
        p.add_argument("--max-utts", type=int, default=0, help="probe a seeded subset of this many utterances (0: all)")
        p.add_argument("--hidden", type=int, default=256, help="MLP hidden units (default: %(default)s)")
        p.add_argument("--epochs", type=int, default=20, help="maximum epochs per probe (default: %(default)s)")
        p.add_argument("--patience", type=int, default=2, help="early-stopping patience in epochs (default: %(default)s)")
        p.add_argument("--cache-dtype", choices=["float32", "float16"], default="float32",
                       help="how cached taps are held in memory (default: %(default)s)")
        p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
        p.add_argument("--num-threads", type=int, default=1,
                       help="torch CPU threads (default: 1; probes are small matrix products, and extra threads "
                            "slow them down many times over on a busy machine)")
        p.add_argument("--seed", type=int, default=0)

    def run(self, args: argparse.Namespace) -> int:
        import torch

        from speechunits.eval.probes.checkpoint import ProbeOptions, probe_checkpoint

        if args.num_threads > 0:
            torch.set_num_threads(args.num_threads)
        options = ProbeOptions(
            targets=args.targets, heads=args.heads, taps=args.taps, splits=args.splits,
            ignore_phones=args.ignore_phones, alignments=args.alignments, fbank=args.fbank, max_utts=args.max_utts,
            max_train_frames=args.max_frames, max_test_frames=args.max_test_frames, hidden=args.hidden,
            epochs=args.epochs, patience=args.patience, cache_dtype=args.cache_dtype, device=args.device,
            seed=args.seed,
        )
        run = probe_checkpoint(args.model, args.data, args.features, options, out=args.out)
        for note in run.notes:
            print(f"probe: {note}")
        print(run.results.to_markdown())
        print(f"probe: results in {run.out}/probes.json and {run.out}/probes.md")
        return 0
