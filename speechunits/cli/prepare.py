"""`speechunits prepare CORPUS ...`: build a corpus's audio, data dirs, alignments and items.

Each corpus is a sub-command registered in CORPORA (the project's one registry
idiom), so adding one is adding a class here:

    @CORPORA.register("speechocean762")
    class PrepareSpeechocean762Command:
        '''One-line help.'''
        def add_arguments(self, parser): ...
        def run(self, args) -> int: ...
"""

from __future__ import annotations


from speechunits.cli import COMMANDS, add_subcommands
from speechunits.cli.jobs import report_failures
from speechunits.registry import Registry

CORPORA = Registry("corpus")


@COMMANDS.register("prepare")
class PrepareCommand:
    """Prepare a corpus: audio, Kaldi data dirs, phone alignments (CTM), ABX item files.

    Corpora:
      synthetic        multi-speaker English speech from espeak-ng with exact phone alignments
      speechocean762   read English by Mandarin-L1 adults and children, phones by forced alignment
      folder           any folder of audio files (+ transcripts, TextGrid/CTM alignments)
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
class PrepareSyntheticCommand:
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


@CORPORA.register("speechocean762")
class PrepareSpeechocean762Command:
    """speechocean762: read English by Mandarin-L1 speakers; phone alignments by forced alignment.

    CORPUS is the full release (train/, test/, resource/, WAVE/) or a flat folder
    with wav.scp, text, text-phone, lexicon.txt, utt2spk, spk2gender, spk2age in it
    (e.g. ../shared/corpora/speechocean762-train, the train split beside the
    repository). Writes the Kaldi data dirs OUT/data/{all,train,dev[,test]} (ids
    <spk>-<corpus id>, absolute wav paths, utt2dur, spk2gender, spk2age,
    spk2agegroup, utt2corpus_id), alignments.ctm (phones, ARPAbet + sil),
    words.ctm, phone.item and triphone.item per split,
    OUT/failed.txt and OUT/corpus.json. Phones come from pocketsphinx forced
    alignment with the corpus's canonical pronunciations (text-phone). dev holds
    --dev-speakers speakers of the train part, balanced by gender and age group.
    Utterances that fail to align are left out of the data dirs, listed in
    OUT/failed.txt, and make the exit status 1 unless --allow-failures (then
    corpus.json, the mark of a finished build, is written anyway).
    Needs the `align` extra (pocketsphinx).

    Examples:
      speechunits prepare speechocean762 ../shared/corpora/speechocean762-train data/so762 --nj 4
      speechunits prepare speechocean762 ~/corpora/speechocean762 data/so762 --dev-speakers 12 --seed 1
    """

    def add_arguments(self, parser) -> None:
        from speechunits.corpora.speechocean762 import Speechocean762Config

        d = Speechocean762Config()
        parser.add_argument("corpus", metavar="CORPUS", help="the corpus folder")
        parser.add_argument("out", metavar="OUT", help="folder to write")
        parser.add_argument("--nj", type=int, default=d.nj, help="parallel alignment processes (default %(default)s)")
        parser.add_argument("--dev-speakers", type=int, default=d.dev_speakers,
                            help="train-part speakers held out as dev (default %(default)s)")  # fmt: skip
        parser.add_argument("--seed", type=int, default=d.seed, help="draws the dev speakers (default %(default)s)")
        parser.add_argument("--max-utts-per-speaker", type=int, default=None, metavar="N",
                            help="only the first N utterances of each speaker (quick runs)")  # fmt: skip
        parser.add_argument("--allow-failures", action="store_true",
                            help="exit 0 even if some utterances failed to align")  # fmt: skip

    def run(self, args) -> int:
        from speechunits.corpora.speechocean762 import Speechocean762Config, prepare

        cfg = Speechocean762Config(
            dev_speakers=args.dev_speakers,
            seed=args.seed,
            max_utts_per_speaker=args.max_utts_per_speaker,
            allow_failures=args.allow_failures,
            nj=args.nj,
        )
        made = prepare(args.corpus, args.out, cfg)
        batch = made.batch
        print(f"{args.out}: {len(batch.alignments)} of {made.num_utterances} utterances aligned "
              f"({batch.audio_seconds / 3600:.2f} h; alignment {batch.speed:.1f}x real time with nj={args.nj})")  # fmt: skip
        for name, dd in made.splits.items():
            print(f"  {name}: {len(dd.utt2spk)} utterances, {len(dd.speakers)} speakers")
        return report_failures(made.report, args.allow_failures, "prepare", listed_in=f"{args.out}/failed.txt")


@CORPORA.register("folder")
class PrepareFolderCommand:
    """Import a folder of audio files (wav/flac/ogg/mp3) as a Kaldi data dir.

    Speakers come from the first folder level (--speaker-from dir), from a file-name
    regular expression with a group (?P<spk>...) (--speaker-from pattern --pattern
    RE), or each file is its own speaker (--speaker-from file). Utterance ids are
    <spk>-<stem> (the stem alone if it already starts with <spk>-). Optional
    transcripts: a Kaldi `text` file keyed by utterance id, relative path without
    extension, or stem; or `--transcripts sidecar` for <stem>.txt/.lab beside each
    file. Optional alignments: a folder of Praat TextGrids (tier --tier, default
    phones; long or short text format) or a CTM file; then alignments.ctm and ABX
    item files are written too. OUT is the data dir (wav.scp with absolute paths,
    utt2spk, spk2utt, utt2dur, [text], [spk2gender]) and OUT/failed.txt. Bad files
    are left out and named; the exit status is 1 unless --allow-failures.

    Examples:
      speechunits prepare folder ~/recordings data/rec
      speechunits prepare folder wavs/ data/x --speaker-from pattern --pattern '^(?P<spk>[A-Z]{2}\\d+)_'
      speechunits prepare folder audio/ data/y --transcripts sidecar --alignments mfa_out/ --strip-stress
    """

    def add_arguments(self, parser) -> None:
        from speechunits.corpora.folder import SPEAKER_FROM, FolderConfig

        d = FolderConfig()
        parser.add_argument("audio_dir", metavar="AUDIO_DIR", help="folder of audio files (any depth)")
        parser.add_argument("out", metavar="OUT", help="the data dir to write")
        parser.add_argument("--speaker-from", choices=SPEAKER_FROM, default=None,
                            help=f"where speaker ids come from (default: pattern if --pattern, else {d.speaker_from})")  # fmt: skip
        parser.add_argument("--pattern", default=None, help="file-name regex with a group (?P<spk>...)")
        parser.add_argument("--transcripts", default=None, metavar="TEXT|sidecar",
                            help="a Kaldi text file, or 'sidecar' for <stem>.txt/.lab files")  # fmt: skip
        parser.add_argument("--alignments", default=None, metavar="TEXTGRID_DIR|CTM",
                            help="phone alignments: a folder of TextGrids or a CTM file")  # fmt: skip
        parser.add_argument("--tier", default=d.tier, help="TextGrid tier with the phones (default %(default)s)")
        parser.add_argument("--strip-stress", action="store_true", help="drop stress digits from phone labels (AH0 -> AH)")
        parser.add_argument("--spk2gender", default=None, metavar="FILE", help="<speaker> m|f lines")
        parser.add_argument("--extensions", default=",".join(d.extensions),
                            help="audio file extensions, comma-separated (default %(default)s)")  # fmt: skip
        parser.add_argument("--allow-failures", action="store_true", help="exit 0 even if some files were left out")

    def run(self, args) -> int:
        from speechunits.corpora.folder import FolderConfig, import_folder

        from speechunits.errors import SpeechUnitsError

        speaker_from = args.speaker_from or ("pattern" if args.pattern else FolderConfig().speaker_from)
        if args.pattern and speaker_from != "pattern":
            raise SpeechUnitsError(f"--pattern is for --speaker-from pattern, not {speaker_from}")
        cfg = FolderConfig(
            speaker_from=speaker_from,
            pattern=args.pattern,
            transcripts=args.transcripts,
            alignments=args.alignments,
            tier=args.tier,
            strip_stress=args.strip_stress,
            spk2gender=args.spk2gender,
            extensions=tuple(e.strip() for e in args.extensions.split(",") if e.strip()),
        )
        made = import_folder(args.audio_dir, args.out, cfg)
        dd = made.datadir
        extra = ", with alignments" if made.alignments is not None else ""
        print(f"{args.out}: {len(dd.utt2spk)} of {made.num_files} files imported, {len(dd.speakers)} speakers, "
              f"{sum(dd.utt2dur.values()) / 60:.2f} min{extra}")  # fmt: skip
        return report_failures(made.report, args.allow_failures, "prepare", listed_in=f"{args.out}/failed.txt")
