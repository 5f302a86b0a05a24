"""`speechunits prepare CORPUS ...`: build a corpus's audio, data dirs, alignments and items.

Each corpus is a sub-command registered in CORPORA (the project's one registry
idiom), so adding one is adding a class here:

    @CORPORA.register("speechocean762")
    class Speechocean762:
        '''One-line help.'''
        def add_arguments(self, parser): ...
        def run(self, args) -> int: ...
"""

from __future__ import annotations


from speechunits.cli import COMMANDS, add_subcommands
from speechunits.registry import Registry

CORPORA = Registry("corpus")


@COMMANDS.register("prepare")
class Prepare:
    """Prepare a corpus: audio, Kaldi data dirs, phone alignments (CTM), ABX item files.

    Corpora:
      synthetic   multi-speaker English speech from espeak-ng with exact phone alignments
    Run `speechunits prepare CORPUS --help` for a corpus's options.
    """

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="corpus", metavar="CORPUS")
        sub.required = True
        add_subcommands(sub, CORPORA, "_corpus")

    def run(self, args) -> int:
        return int(args._corpus.run(args) or 0)


def _noise(text: str) -> float | None:
    return None if text.lower() in ("none", "off") else float(text)


@CORPORA.register("synthetic")
class Synthetic:
    """Synthetic multi-speaker English corpus (espeak-ng) with exact phone alignments.

    Writes OUT/audio/<spk>/<utt>.wav (16 kHz), the Kaldi data dirs OUT/data/{all,train,test}
    (wav.scp utt2spk spk2utt spk2gender text utt2dur), OUT/data/<split>/alignments.ctm,
    OUT/data/<split>/{phone,triphone}.item and OUT/corpus.json. train and test are
    speaker-disjoint. The same options give byte-identical files (whatever --nj).
    wav.scp paths are absolute unless --relative-paths (then relative to OUT: pass
    --base-dir OUT to readers). Needs the `synth` extra (espeakng-loader).

    Examples:
      speechunits prepare synthetic data/synth --minutes 10 --seed 0 --nj 2
      speechunits prepare synthetic data/tiny max_sentences=1 --minutes 0.5 --speakers 4
    """

    def add_arguments(self, parser) -> None:
        from speechunits.corpora.synthetic import SyntheticConfig

        d = SyntheticConfig()
        parser.add_argument("out", metavar="OUT", help="corpus folder to write")
        parser.add_argument(
            "overrides", nargs="*", metavar="key=value",
            help="other SyntheticConfig fields, right after OUT, e.g. max_sentences=1 rate_range=[150,190]",
        )
        parser.add_argument("--minutes", type=float, default=d.minutes, help="total audio over all speakers (default %(default)s)")
        parser.add_argument("--seed", type=int, default=d.seed, help="everything random derives from it (default %(default)s)")
        parser.add_argument("--speakers", type=int, default=d.speakers, help="number of speakers, alternately m/f (default %(default)s)")
        parser.add_argument(
            "--test-speakers", type=int, default=d.test_speakers,
            help="speakers held out in data/test, one of each gender first (default %(default)s)",
        )
        parser.add_argument(
            "--phone-set", choices=("arpabet", "espeak"), default=d.phone_set,
            help="labels in alignments and items: ARPAbet 39 + sil, or espeak mnemonics (default %(default)s)",
        )
        parser.add_argument("--language", default=d.language, help="espeak voice language (default %(default)s; the phone map covers en-us)")
        parser.add_argument(
            "--noise-dbfs", type=_noise, default=d.noise_dbfs,
            help="RMS of the white noise floor in dB full scale, or 'none' (default %(default)s)",
        )
        parser.add_argument("--relative-paths", action="store_true", help="wav.scp paths relative to OUT instead of absolute")
        parser.add_argument("--nj", type=int, default=d.nj, help="parallel processes (default %(default)s)")

    def run(self, args) -> int:
        from speechunits.config import apply_overrides
        from speechunits.corpora.synthetic import SyntheticConfig, build_corpus

        cfg = SyntheticConfig(
            minutes=args.minutes,
            seed=args.seed,
            speakers=args.speakers,
            test_speakers=args.test_speakers,
            phone_set=args.phone_set,
            language=args.language,
            noise_dbfs=args.noise_dbfs,
            relative_paths=args.relative_paths,
            nj=args.nj,
        )
        cfg = apply_overrides(cfg, args.overrides)
        corpus = build_corpus(args.out, cfg)
        n_test = sum(u.speaker in set(corpus.test_speakers) for u in corpus.utterances)
        print(
            f"{args.out}: {len(corpus.utterances)} utterances, {corpus.seconds / 60:.2f} min, "
            f"{len(corpus.speakers)} speakers (test: {' '.join(corpus.test_speakers) or 'none'}, {n_test} utterances)"
        )
        return 0
