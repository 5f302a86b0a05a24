"""`speechunits resynth`: decode units back to audio, in any training speaker's voice."""

from __future__ import annotations

import sys

from speechunits.cli import COMMANDS
from speechunits.cli.jobs import report_failures


@COMMANDS.register("resynth")
class ResynthCommand:
    """Resynthesise audio from units with a trained model (voice conversion with --speaker).

    UNITS is a units.jsonl, a units.txt (with durations.txt beside it), or a
    `speechunits extract` output folder (for a continuous bottleneck: one extracted
    with --tap bottleneck, whose dense latents are decoded). Writes OUT/<utt>.wav
    (16-bit PCM at the decoder's rate, 16 kHz). --speaker names the training speaker
    whose embedding the decoder gets: units from another speaker's audio decoded
    with it is voice conversion.

    A WaveNet decoder samples the waveform incrementally, batched over utterances
    (slow on a CPU, one thread: the small WaveNet about 1,300 samples/s for one
    utterance, 8,000 for a batch of 8; real time is 16,000). The
    filterbank decoder predicts log-mel frames (also written, OUT/frames/<utt>.npy);
    its audio comes from Griffin-Lim inversion of the mel spectrogram, a ROUGH
    vocoder (buzzy, smeared; for listening checks only).

    Examples:
      speechunits resynth exp/vqvae units/test resynth/ --speaker spk03 --max-utts 4
      speechunits resynth exp/wavenet units/test/units.jsonl vc/ --speaker spk01 --temperature 0.9
    """

    def add_arguments(self, p):
        p.add_argument("model", help="checkpoint file or experiment dir")
        p.add_argument("units", help="units.jsonl, units.txt (+ durations.txt), or an extract output folder")
        p.add_argument("out", help="output folder for <utt>.wav")
        p.add_argument("--speaker", help="training speaker to decode with (required for speaker-conditioned models)")
        p.add_argument("--batch-size", type=int, default=8, help="utterances decoded together (default: %(default)s)")
        p.add_argument("--temperature", type=float, default=1.0, help="WaveNet sampling temperature (default: 1)")
        p.add_argument("--greedy", action="store_true", help="WaveNet: take the most likely sample (argmax)")
        p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
        p.add_argument("--max-utts", type=int, help="only the first N utterances (sorted by id)")
        p.add_argument("--utts", nargs="+", metavar="UTT", help="only these utterances")
        p.add_argument("--griffin-lim-iters", type=int, default=32,
                       help="Griffin-Lim iterations (default: %(default)s)")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        p.add_argument("--allow-failures", action="store_true", help="exit 0 even if some utterances failed")

    def run(self, args) -> int:
        from pathlib import Path

        from tqdm import tqdm

        from speechunits.errors import SpeechUnitsError
        from speechunits.models.checkpoint import resolve_checkpoint
        from speechunits.units.resynth import Resynthesizer
        from speechunits.units.resynth_job import ResynthOptions, load_unit_inputs, resynthesize
        from speechunits.units.vocoder import GriffinLimConfig

        path = resolve_checkpoint(args.model)
        rs = Resynthesizer.from_checkpoint(path, device=args.device,
                                           griffin_lim=GriffinLimConfig(iterations=args.griffin_lim_iters))
        if rs.speakers and args.speaker is None:
            raise SpeechUnitsError(f"--speaker is required: the model was trained on {', '.join(rs.speakers)}")
        if args.speaker is not None and rs.speakers:
            rs.model.speaker_table.id(args.speaker)  # unknown speaker: an error listing the known ones
        inputs = load_unit_inputs(args.units, continuous=not rs.model.discrete)
        utts = sorted(inputs)
        if args.utts:
            missing = [u for u in args.utts if u not in inputs]
            if missing:
                raise SpeechUnitsError(f"{args.units}: no units for {', '.join(missing)}")
            utts = sorted(args.utts)
        if args.max_utts is not None:
            utts = utts[: args.max_utts]
        options = ResynthOptions(speaker=args.speaker, batch_size=args.batch_size, temperature=args.temperature,
                                 greedy=args.greedy, seed=args.seed, model=str(Path(path).resolve()))
        with tqdm(total=len(utts), desc="resynth", unit="utt", disable=None, file=sys.stderr) as bar:
            report = resynthesize(rs, {u: inputs[u] for u in utts}, args.out, options, on_progress=bar.update)
        if rs.kind == "frames":
            print("resynth: audio made with Griffin-Lim from predicted log-mel frames (a rough vocoder)",
                  file=sys.stderr)
        return report_failures(report, args.allow_failures, "resynth")
