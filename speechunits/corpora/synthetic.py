"""A synthetic multi-speaker English corpus with exact phone alignments, from espeak-ng.

Why: every other stage (features, models, probes, ABX) needs a corpus with known
phone boundaries and speakers to be tested end to end in seconds, without a
download. espeak-ng reports where each phone starts, so the alignments are exact
by construction (see :mod:`speechunits.corpora.phones` for the few approximate
inner boundaries), and the corpus is a pure function of its config: the same seed
gives byte-identical files, whatever ``nj``.

What is built (``build_corpus(out, cfg)``, through :mod:`speechunits.corpora.writer`;
``corpus.json`` is written last and marks a finished build; building into an
existing OUT replaces the earlier build, including its .wav files under OUT/audio)::

    OUT/audio/<spk>/<utt>.wav        16 kHz, 16-bit mono
    OUT/data/all/                    wav.scp utt2spk spk2utt spk2gender text utt2dur alignments.ctm
    OUT/data/train/, OUT/data/test/  the same, speaker-disjoint (test: --test-speakers speakers)
    OUT/data/<split>/{phone,triphone}.item    ABX item files (ZeroSpeech format)
    OUT/corpus.json                  the resolved config and each speaker's voice

Speakers: ``spk01``..``spkNN``, alternately male and female, each an espeak
``en-us`` voice variant (m1-m8, f1-f5; cycled when there are more speakers) with
its own speaking rate, pitch and pitch range drawn from the seed. The stock
variants with an echo get it removed (an echo smears speech into the pauses and
so across phone boundaries). Utterance ids are ``<spk>-<k>`` (k = 0000, 0001, ...).

Audio: espeak speaks at 22050 Hz; audio is resampled to 16 kHz (soxr), boundary
sample b becomes ``round(b * 16000 / 22050)``, the same rounding as the resampled
length, so the last phone ends exactly at the end of the audio. Each utterance
gets a random lead and tail silence, and a faint white-noise floor (default
-70 dBFS) so that silence is not digital zero (log-energies stay finite and the
silence looks like a recording's).

Size: each speaker gets about ``minutes * 60 / speakers`` seconds: the prefix of
its own utterance stream whose duration is closest to that (at least one
utterance, so tiny corpora overshoot). Utterance k of a speaker depends only on
(seed, speaker, k), so a longer corpus with the same seed extends a shorter one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import random
from pathlib import Path
from typing import Sequence

import numpy as np

from speechunits.corpora import phones as phone_inventory
from speechunits.corpora import writer
from speechunits.corpora.espeak import Espeak, EspeakError, TemporaryDataDir, VoiceSettings, dictionary_for, read_variant
from speechunits.corpora.text_source import TextSource, words_of
from speechunits.data.ctm import LabelledSegment
from speechunits.errors import SpeechUnitsError
from speechunits.jobs.processes import worker_pool

log = logging.getLogger(__name__)

MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")
ESPEAK_RATE = 22050
SPEAKER_VOLUME = 85  # espeak volume (100 = normal): peaks at 100 come within 3 % of full scale; leave headroom
_INITIAL_SECONDS_PER_UTT = 6.0  # first guess of utterance length, only to size the first batch


@dataclasses.dataclass
class SyntheticConfig:
    """Everything that determines the corpus. Same config -> byte-identical corpus.

    minutes: total audio over all speakers. speakers: number of speakers (>= 2).
    test_speakers: held out as data/test (at least one of each gender when >= 2).
    language: espeak voice language; the phone map covers American English only.
    phone_set: labels of the CTM and item files: "arpabet" (CMUdict's 39 + sil) or
        "espeak" (stress-free espeak mnemonics).
    rate_range, pitch_range, range_range: per-speaker espeak rate (words/minute),
        pitch (0-100) and pitch range (0-100), drawn uniformly (inclusive).
    rate_jitter: per-utterance relative change of the speaker's rate, uniform in +-.
    lead_silence, tail_silence: seconds of silence before/after the speech, uniform.
    noise_dbfs: RMS of the added white noise floor (dB full scale); None = no noise.
    min_sentences, max_sentences: sentences per utterance.
    relative_paths: wav.scp paths relative to the corpus folder (relocatable; readers
        then need base_dir=OUT) instead of absolute (Kaldi's habit).
    train_only: synthesise only the training speakers (no data/test): each gets the
        share it has in the full corpus of these minutes, the same utterances, so the
        result is that corpus's train split (more speech in the training voices, e.g.
        a unit LM's training set beside a smaller corpus of the same seed).
    nj: parallel processes (each its own espeak engine); does not change the output.
    """

    minutes: float = 1.0
    seed: int = 0
    speakers: int = 8
    test_speakers: int = 2
    language: str = "en-us"
    sample_rate: int = 16000
    phone_set: str = "arpabet"
    rate_range: tuple[int, int] = (145, 195)
    pitch_range: tuple[int, int] = (35, 65)
    range_range: tuple[int, int] = (30, 80)
    rate_jitter: float = 0.05
    lead_silence: tuple[float, float] = (0.15, 0.4)
    tail_silence: tuple[float, float] = (0.15, 0.4)
    noise_dbfs: float | None = -70.0
    min_sentences: int = 1
    max_sentences: int = 3
    relative_paths: bool = False
    train_only: bool = False
    nj: int = 1

    def check(self) -> None:
        if not self.minutes > 0:
            raise SpeechUnitsError(f"minutes must be positive, got {self.minutes}")
        if self.speakers < 2:
            raise SpeechUnitsError(f"need at least 2 speakers, got {self.speakers}")
        if not 0 <= self.test_speakers < self.speakers:
            raise SpeechUnitsError(f"test_speakers must be in [0, speakers), got {self.test_speakers} of {self.speakers}")
        if self.phone_set not in ("arpabet", "espeak"):
            raise SpeechUnitsError(f"phone_set must be 'arpabet' or 'espeak', got {self.phone_set!r}")
        if not 1 <= self.min_sentences <= self.max_sentences:
            raise SpeechUnitsError(f"need 1 <= min_sentences <= max_sentences, got {self.min_sentences}, {self.max_sentences}")
        if self.nj < 1:
            raise SpeechUnitsError(f"nj must be >= 1, got {self.nj}")


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: id, gender ("m"/"f"), the stock variant it is built on, its voice."""

    id: str
    gender: str
    base_variant: str
    voice: VoiceSettings


@dataclasses.dataclass(frozen=True)
class UttPlan:
    """Everything needed to synthesise utterance ``index`` of speaker ``speaker``."""

    utt: str
    speaker: str
    index: int
    text: str
    voice: VoiceSettings
    lead: int  # samples at the output rate
    tail: int
    seed: int


@dataclasses.dataclass
class UttResult:
    """A synthesised utterance: its audio file (relative to the corpus folder), length, and phones.

    segments: (start sample, end sample, phone) at the output rate, contiguous from 0
    to ``num_samples``.
    """

    utt: str
    speaker: str
    text: str
    audio_path: str
    num_samples: int
    segments: list[tuple[int, int, str]]


@dataclasses.dataclass
class SyntheticCorpus:
    """What :func:`build_corpus` made."""

    root: Path
    speakers: list[Speaker]
    test_speakers: list[str]
    utterances: list[UttResult]
    sample_rate: int

    @property
    def seconds(self) -> float:
        return sum(u.num_samples for u in self.utterances) / self.sample_rate


# ----------------------------------------------------------------------------- speakers


def variant_name(speaker_id: str) -> str:
    """The name of a speaker's own variant file in the private espeak data folder."""
    return f"su_{speaker_id.lower()}"


def variant_text(base_variant: str, data_path: str | os.PathLike | None = None) -> str:
    """A stock variant file with its echo removed (espeak's echo spills speech into pauses)."""
    lines = [ln for ln in read_variant(base_variant, data_path).splitlines() if not ln.strip().lower().startswith("echo")]
    return "\n".join(lines + ["echo 0 0", ""])


def make_speakers(cfg: SyntheticConfig) -> list[Speaker]:
    """The speakers of a config: alternately male and female, voices drawn from the seed."""
    width = max(2, len(str(cfg.speakers)))
    pick = random.Random(f"{cfg.seed}:variants")
    males, females = list(MALE_VARIANTS), list(FEMALE_VARIANTS)
    pick.shuffle(males)
    pick.shuffle(females)
    speakers = []
    for i in range(cfg.speakers):
        spk = f"spk{i + 1:0{width}d}"
        gender = "m" if i % 2 == 0 else "f"
        pool = males if gender == "m" else females
        base = pool[(i // 2) % len(pool)]
        rng = random.Random(f"{cfg.seed}:speaker:{i}")
        voice = VoiceSettings(
            name=f"{cfg.language}+{variant_name(spk)}",
            rate=rng.randint(*cfg.rate_range),
            pitch=rng.randint(*cfg.pitch_range),
            range=rng.randint(*cfg.range_range),
            volume=SPEAKER_VOLUME,
        )
        speakers.append(Speaker(spk, gender, base, voice))
    return speakers


def choose_test_speakers(speakers: Sequence[Speaker], k: int, seed: int) -> list[str]:
    """k speakers for the test split, seeded; one of each gender first when k >= 2."""
    rng = random.Random(f"{seed}:test-speakers")
    chosen: list[str] = []
    if k >= 2:
        for gender in ("m", "f"):
            pool = [s.id for s in speakers if s.gender == gender]
            if pool:
                chosen.append(rng.choice(pool))
    rest = [s.id for s in speakers if s.id not in chosen]
    rng.shuffle(rest)
    chosen += rest[: k - len(chosen)]
    return sorted(chosen[:k])


def plan_utterance(cfg: SyntheticConfig, speaker: Speaker, speaker_index: int, k: int) -> UttPlan:
    """Utterance k of a speaker: a function of (seed, speaker index, k) only."""
    rng = random.Random(f"{cfg.seed}:utt:{speaker_index}:{k}")
    text = TextSource().utterance(rng, cfg.min_sentences, cfg.max_sentences)
    jitter = 1.0 + rng.uniform(-cfg.rate_jitter, cfg.rate_jitter)
    voice = dataclasses.replace(speaker.voice, rate=int(round(speaker.voice.rate * jitter)))
    sr = cfg.sample_rate
    return UttPlan(
        utt=f"{speaker.id}-{k:04d}",
        speaker=speaker.id,
        index=k,
        text=text,
        voice=voice,
        lead=int(round(rng.uniform(*cfg.lead_silence) * sr)),
        tail=int(round(rng.uniform(*cfg.tail_silence) * sr)),
        seed=rng.randrange(2**31),
    )


# ----------------------------------------------------------------------------- one utterance


def render_utterance(plan: UttPlan, engine: Espeak, cfg: SyntheticConfig) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Synthesise a plan: (int16 audio at cfg.sample_rate, segments in output samples).

    The segments cover the whole audio: lead silence, espeak's phones (boundaries
    moved to the output rate), tail silence; adjacent "sil" merged.
    """
    from speechunits.resample import resample, resampled_length

    out = engine.synthesize(plan.text, plan.voice, seed=plan.seed)
    raw = phone_inventory.segments_from_events(
        [(e.sample, e.mnemonic) for e in out.events], len(out.audio), cfg.phone_set, audio=out.audio
    )
    for seg in raw:  # espeak's pauses are exact zeros; sound there means events and audio disagree
        if seg.phone == phone_inventory.SIL and np.any(out.audio[seg.start : seg.end]):
            raise EspeakError(
                f"utterance {plan.utt}: espeak's phone events disagree with its audio "
                f"(sound inside a pause at samples {seg.start}-{seg.end} of {len(out.audio)})"
            )
    sr = cfg.sample_rate
    speech = resample(out.audio.astype(np.float32) / 32768.0, out.sample_rate, sr)
    n_speech = resampled_length(len(out.audio), out.sample_rate, sr)
    if len(speech) != n_speech:  # soxr and resampled_length agree; keep the invariant explicit
        speech = np.pad(speech, (0, max(0, n_speech - len(speech))))[:n_speech]
    audio = np.concatenate([np.zeros(plan.lead, np.float32), speech, np.zeros(plan.tail, np.float32)])
    if cfg.noise_dbfs is not None:
        noise_rng = np.random.Generator(np.random.PCG64(plan.seed))
        audio = audio + noise_rng.standard_normal(len(audio)).astype(np.float32) * np.float32(10 ** (cfg.noise_dbfs / 20))
    clipped = int(np.count_nonzero(np.abs(audio) >= 1.0))
    if clipped:
        log.warning("utterance %s: %d samples clipped", plan.utt, clipped)
    pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)

    segments: list[tuple[int, int, str]] = []

    def add(start: int, end: int, phone: str) -> None:
        if end <= start:
            return
        if segments and segments[-1][2] == phone == phone_inventory.SIL:
            segments[-1] = (segments[-1][0], end, phone)
        else:
            segments.append((start, end, phone))

    add(0, plan.lead, phone_inventory.SIL)
    for seg in raw:
        start = plan.lead + resampled_length(seg.start, out.sample_rate, sr)
        end = plan.lead + resampled_length(seg.end, out.sample_rate, sr)
        add(start, end, seg.phone)
    add(plan.lead + n_speech, len(pcm), phone_inventory.SIL)
    return pcm, segments


def write_wav(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM WAV, written atomically (a WAV header holds no timestamp: same data, same bytes)."""
    import soundfile

    from speechunits.fileio import atomic_open

    with atomic_open(path, "wb") as f:
        soundfile.write(f, pcm, sample_rate, format="WAV", subtype="PCM_16")


def _audio_relpath(plan: UttPlan) -> str:
    return f"audio/{plan.speaker}/{plan.utt}.wav"


def synthesize_to_file(plan: UttPlan, root: Path, engine: Espeak, cfg: SyntheticConfig) -> UttResult:
    pcm, segments = render_utterance(plan, engine, cfg)
    rel = _audio_relpath(plan)
    write_wav(root / rel, pcm, cfg.sample_rate)
    return UttResult(plan.utt, plan.speaker, plan.text, rel, len(pcm), segments)


# worker-process state for nj > 1 (one espeak engine per process)
_WORKER: dict = {}


def _worker_init(data_path: str, root: str, cfg: SyntheticConfig) -> None:
    _WORKER.update(engine=Espeak.get(Path(data_path)), root=Path(root), cfg=cfg)


def _worker_run(plan: UttPlan) -> UttResult:
    return synthesize_to_file(plan, _WORKER["root"], _WORKER["engine"], _WORKER["cfg"])


# ----------------------------------------------------------------------------- the corpus


def synthesize_utterances(cfg: SyntheticConfig, root: Path, speakers: list[Speaker], data_path: Path,
                          skip: Sequence[str] = ()) -> list[UttResult]:
    """Synthesise each speaker's utterance prefix whose duration is closest to its share of audio.

    Speakers in ``skip`` get nothing (their share is not given to the others).
    """
    target = cfg.minutes * 60.0 / cfg.speakers
    results: dict[str, list[UttResult]] = {s.id: [] for s in speakers}
    seconds_per_utt = _INITIAL_SECONDS_PER_UTT
    engine = Espeak.get(data_path)
    for s in speakers:
        engine.check_voice(s.voice)
    workers = worker_pool(cfg.nj, _worker_init, (str(data_path), str(root), cfg)) if cfg.nj > 1 \
        else contextlib.nullcontext()  # None: synthesise in this process
    with workers as pool:
        while True:
            plans = []
            for i, s in enumerate(speakers):
                if s.id in skip:
                    continue
                have = sum(r.num_samples for r in results[s.id]) / cfg.sample_rate
                if have < target:
                    n_more = max(1, math.ceil((target - have) / seconds_per_utt))
                    start = len(results[s.id])
                    plans += [plan_utterance(cfg, s, i, k) for k in range(start, start + n_more)]
            if not plans:
                break
            if pool is not None:
                done = pool.map(_worker_run, plans, chunksize=max(1, len(plans) // (4 * cfg.nj)))
            else:
                done = [synthesize_to_file(p, root, engine, cfg) for p in plans]
            for r in done:
                results[r.speaker].append(r)
            all_done = [r for rs in results.values() for r in rs]
            seconds_per_utt = sum(r.num_samples for r in all_done) / cfg.sample_rate / len(all_done)

    chosen: list[UttResult] = []
    for s in speakers:
        if s.id in skip:
            continue
        n = _prefix_closest_to(results[s.id], target, cfg.sample_rate)
        chosen += results[s.id][:n]
        for r in results[s.id][n:]:  # synthesised beyond the prefix: drop
            (root / r.audio_path).unlink(missing_ok=True)
    return chosen


def _prefix_closest_to(results: list[UttResult], target: float, sample_rate: int) -> int:
    """The number of leading utterances (at least 1) whose total duration is closest to target seconds."""
    best_n, best_err, total = 1, math.inf, 0.0
    for n, r in enumerate(results, 1):
        total += r.num_samples / sample_rate
        if abs(total - target) < best_err:
            best_n, best_err = n, abs(total - target)
        if total >= target:
            break
    return best_n


def build_corpus(out: str | os.PathLike, cfg: SyntheticConfig) -> SyntheticCorpus:
    """Build the whole corpus under ``out`` (see the module docstring). Returns what was made."""
    cfg.check()
    root = writer.start_build(out, SPLITS)
    speakers = make_speakers(cfg)
    test = choose_test_speakers(speakers, cfg.test_speakers, cfg.seed)
    variants = {variant_name(s.id): variant_text(s.base_variant) for s in speakers}
    with TemporaryDataDir(variants, dictionary_for(cfg.language)) as data_path:
        try:
            utterances = synthesize_utterances(cfg, root, speakers, data_path, skip=test if cfg.train_only else ())
        finally:
            Espeak.get()  # back to the packaged data: the temporary folder is about to go
    _remove_stale_audio(root, {u.audio_path for u in utterances})
    corpus = SyntheticCorpus(root, speakers, test, utterances, cfg.sample_rate)
    write_data_dirs(corpus, cfg)
    write_corpus_info(corpus, cfg)
    return corpus


SPLITS = ("all", "train", "test")


def _remove_stale_audio(root: Path, keep: set[str]) -> None:
    """Delete .wav files of an earlier build in OUT/audio that this build does not list."""
    audio = root / "audio"
    if not audio.is_dir():
        return
    for path in sorted(audio.glob("*/*.wav")):
        rel = path.relative_to(root).as_posix()
        if rel not in keep:
            log.info("removing stale %s", path)
            path.unlink()


def alignments_of(corpus: SyntheticCorpus, utts: set[str] | None = None) -> dict[str, list[LabelledSegment]]:
    """The corpus's phone alignments in the shared in-memory form: utt -> [(start s, end s, phone)]."""
    sr = corpus.sample_rate
    return {
        u.utt: [LabelledSegment(a / sr, b / sr, p) for a, b, p in u.segments]
        for u in corpus.utterances
        if utts is None or u.utt in utts
    }


def write_data_dirs(corpus: SyntheticCorpus, cfg: SyntheticConfig) -> None:
    """OUT/data/{all,train,test}: Kaldi tables, alignments.ctm, and ABX item files (writer.write_split)."""
    from speechunits.data.datadir import DataDir

    root, sr = corpus.root, corpus.sample_rate
    gender = {s.id: s.gender for s in corpus.speakers}

    def path_of(u: UttResult) -> str:
        return u.audio_path if cfg.relative_paths else str(root / u.audio_path)

    all_dir = DataDir(
        wav_scp={u.utt: path_of(u) for u in corpus.utterances},
        utt2spk={u.utt: u.speaker for u in corpus.utterances},
        text={u.utt: " ".join(words_of(u.text)) for u in corpus.utterances},
        spk2gender={s: gender[s] for s in sorted({u.speaker for u in corpus.utterances})},
        utt2dur={u.utt: u.num_samples / sr for u in corpus.utterances},
    )
    splits = {"all": all_dir}
    test = set(corpus.test_speakers)
    splits["train"] = all_dir.subset(u.utt for u in corpus.utterances if u.speaker not in test)
    if any(u.speaker in test for u in corpus.utterances):
        splits["test"] = all_dir.subset(u.utt for u in corpus.utterances if u.speaker in test)
    for name, dd in splits.items():
        writer.write_split(root / "data" / name, dd, alignments_of(corpus, set(dd.utt2spk)))


def write_corpus_info(corpus: SyntheticCorpus, cfg: SyntheticConfig) -> None:
    """OUT/corpus.json (writer.finish_build): the resolved config, the speakers' voices, the totals."""
    from speechunits.config import to_dict

    info = {
        "generator": "speechunits prepare synthetic",
        "config": {k: v for k, v in to_dict(cfg).items() if k != "nj"},  # nj does not change the output
        "sample_rate": corpus.sample_rate,
        "seconds": round(corpus.seconds, 4),
        "num_utterances": len(corpus.utterances),
        "test_speakers": corpus.test_speakers,
        "speakers": [
            {"id": s.id, "gender": s.gender, "variant": s.base_variant, **dataclasses.asdict(s.voice)}
            for s in corpus.speakers
        ],
        "phone_set": cfg.phone_set,
    }
    writer.finish_build(corpus.root, info)


__all__ = [
    "SyntheticConfig", "Speaker", "UttPlan", "UttResult", "SyntheticCorpus", "make_speakers",
    "choose_test_speakers", "plan_utterance", "render_utterance", "build_corpus", "alignments_of",
    "EspeakError",
]
