"""Spot-the-word and grammaticality test sets from the synthetic corpus's generator.

    info = make_spoken_sets("data/synthetic", "data/spoken_lm", SpokenSetsConfig(words=100))

Both sets follow the ZeroSpeech 2021 layout, so `speechunits lm eval` reads them
exactly as it reads the real sWUGGY / sBLIMP dev folders:

    OUT/lexical/dev/<file>.wav + gold.csv      id,filename,voice,frequency,word,phones,length,correct
    OUT/syntactic/dev/<file>.wav + gold.csv    id,filename,voice,type,subtype,correct,transcription
    OUT/<task>/dev/data/                       a Kaldi data dir of the wavs (voices as speakers),
                                               for `speechunits extract` with per-speaker CMVN
    OUT/sets.json                              the settings and counts (written last: marks a finished build)

A pair is two rows with the same id and voice, one with correct = 1.

Spot-the-word (sWUGGY-style): the `words` most frequent words of the text
generator (speechunits/corpora/text_source.py; frequency per million words of
20,000 generated sentences, words of at least `min_phones` phones). Each word's
phones come from espeak-ng (its phoneme events); its non-word replaces one phone
(two for words of five phones or more) by another of the same class (vowel for
vowel, keeping the stress; consonant for consonant), such that every phone
bigram of the non-word, word edges included, occurs in the words of the lexicon
(phonotactically legal), the new phone is one of the 4 of its class closest to
the old one in frequency in the generated text (so non-words are not told apart by
commoner or rarer phones alone), and the result is no word of the lexicon. Word and
non-word are both spoken from their phonemes (`[[...]]`), so they differ only in
the changed phones: same voice, rate, stress pattern and silence around them.

Grammaticality (sBLIMP-style), minimal pairs from the generator's own grammar:
- agreement / det_noun: a determiner that is only singular ("this", "a", "every")
  or only plural ("these", "many", "two") with a noun of the wrong number
  ("Mary saw these dogs." vs "Mary saw these dog.");
- word_order / adj_noun: adjective and noun swapped ("the old bridge" -> "the bridge old");
- word_order / subj_verb: subject and intransitive verb swapped ("The tall man slept." ->
  "Slept the tall man.").

Voices are speakers of the corpus (default: its test speakers, unseen by models
trained on the train split), with their espeak voice variant, rate, pitch and range,
the corpus's noise floor and fixed 0.2 s of silence around the speech.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import math
import random
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from speechunits.errors import SpeechUnitsError

log = logging.getLogger(__name__)

__all__ = ["SpokenSetsConfig", "make_spoken_sets", "make_nonword", "word_frequencies", "grammar_pairs"]

LEXICAL_FIELDS = ("id", "filename", "voice", "frequency", "word", "phones", "length", "correct")
SYNTACTIC_FIELDS = ("id", "filename", "voice", "type", "subtype", "correct", "transcription")
SILENCE_SECONDS = 0.2
BOUNDARY = "#"


@dataclasses.dataclass
class SpokenSetsConfig:
    """words: spot-the-word pairs per voice; pairs_per_type: grammaticality pairs per
    subtype and voice; voices: corpus speaker ids (empty: the corpus's test speakers)."""

    words: int = 100
    pairs_per_type: int = 40
    voices: tuple[str, ...] = ()
    seed: int = 0
    min_phones: int = 3
    text_sentences: int = 20000  # generated sentences the word frequencies come from

    def check(self) -> None:
        if self.words < 1 or self.pairs_per_type < 0 or self.min_phones < 1:
            raise SpeechUnitsError("words must be >= 1, pairs_per_type >= 0 and min_phones >= 1")


# ----------------------------------------------------------------------------- words


def word_frequencies(n_sentences: int, seed: int) -> Counter:
    """Word counts over n generated sentences (the generator's own distribution)."""
    from speechunits.corpora.text_source import TextSource, words_of

    rng = random.Random(f"{seed}:spoken-lm:frequencies")
    src = TextSource()
    counts: Counter = Counter()
    for _ in range(n_sentences):
        counts.update(words_of(src.sentence(rng)))
    return counts


def _strip(m: str) -> str:
    from speechunits.corpora.phones import strip_stress

    return strip_stress(m)


def _is_vowel(m: str) -> bool:
    from speechunits.corpora.phones import lookup

    return lookup(m).vowel


def word_phones(engine, words: Sequence[str], chunk: int = 100) -> dict[str, list[str]]:
    """espeak's phoneme mnemonics (with stress marks) of each word said on its own.
    Words are spoken `chunk` at a time as one-word phrases ("dog,\\ncat,\\n...") and
    split at the pauses; a chunk that does not split into its words is redone word by word."""
    from speechunits.corpora.espeak import VoiceSettings
    from speechunits.corpora.phones import ABSORBED, PAUSES

    def groups(text: str) -> list[list[str]]:
        out, cur = [], []
        for e in engine.synthesize(text, VoiceSettings()).events:
            name = _strip(e.mnemonic)
            if name in PAUSES:
                if cur:
                    out.append(cur)
                cur = []
            elif name not in ABSORBED:
                cur.append(e.mnemonic)
        return out + ([cur] if cur else [])

    result: dict[str, list[str]] = {}
    words = list(words)
    for a in range(0, len(words), chunk):
        part = words[a : a + chunk]
        got = groups("".join(f"{w},\n" for w in part))
        if len(got) != len(part):
            got = [sum(groups(f"{w}."), []) for w in part]
        result.update(zip(part, got))
    return result


def make_nonword(phones: Sequence[str], lexicon: Sequence[Sequence[str]], rng: random.Random,
                 tries: int = 500, phone_counts: Mapping[str, float] | None = None,
                 neighbours: int = 4) -> list[str] | None:
    """A phonotactically legal non-word matched to `phones` (see the module docstring), or None.
    With `phone_counts` (how often each phone occurs in running text), a phone is replaced only
    by one of the `neighbours` phones of its class whose counts are closest to its own (in
    log), so that a non-word is not more (or less) probable merely for having commoner phones."""
    words = {tuple(_strip(p) for p in w) for w in lexicon}
    bigrams = set()
    inventory: dict[bool, set[str]] = {True: set(), False: set()}
    for w in words:
        seq = (BOUNDARY, *w, BOUNDARY)
        bigrams.update(zip(seq[:-1], seq[1:]))
        for p in w:
            inventory[_is_vowel(p)].add(p)
    choices = {k: sorted(v) for k, v in inventory.items()}
    n_change = 1 if len(phones) <= 4 else 2
    for _ in range(tries):
        positions = rng.sample(range(len(phones)), n_change)
        new = list(phones)
        for i in positions:
            old = phones[i]
            bare = _strip(old)
            stress = old[: len(old) - len(bare)]
            pool = [p for p in choices[_is_vowel(old)] if p != bare]
            if phone_counts is not None:
                def distance(q: str) -> float:
                    return abs(math.log1p(phone_counts.get(q, 0.0)) - math.log1p(phone_counts.get(bare, 0.0)))

                pool = sorted(pool, key=lambda q: (distance(q), q))[:neighbours]
            if not pool:
                break
            new[i] = stress + rng.choice(pool)
        bare_new = tuple(_strip(p) for p in new)
        seq = (BOUNDARY, *bare_new, BOUNDARY)
        if bare_new in words or any(b not in bigrams for b in zip(seq[:-1], seq[1:])):
            continue
        return new
    return None


# ----------------------------------------------------------------------------- sentences


def grammar_pairs(n_per_type: int, seed: int) -> list[dict]:
    """[{id, type, subtype, good, bad}] minimal pairs (see the module docstring)."""
    from speechunits.corpora import text_source as ts

    rng = random.Random(f"{seed}:spoken-lm:grammar")
    singular_only = ("a", "this", "that", "every", "one", "my", "your", "his")
    plural_only = ("some", "these", "those", "many", "few", "two", "three")
    nouns = [n for n in ts.NOUNS if ts._plural(n) != n]

    def subject() -> str:
        return rng.choice(ts.NAMES) if rng.random() < 0.5 else rng.choice(ts.PRONOUNS).capitalize()

    pairs = []
    seen = set()

    def add(kind: str, sub: str, good: str, bad: str) -> bool:
        if good in seen:
            return False
        seen.add(good)
        pairs.append({"type": kind, "subtype": sub, "good": good, "bad": bad})
        return True

    for sub in ("det_noun", "adj_noun", "subj_verb"):
        made = 0
        while made < n_per_type:
            noun = rng.choice(nouns)
            adj = rng.choice(ts.ADJECTIVES)
            if sub == "det_noun":
                if rng.random() < 0.5:
                    det, good_n, bad_n = rng.choice(singular_only), noun, ts._plural(noun)
                    if det == "a" and noun[0] in "aeiou":
                        continue
                else:
                    det, good_n, bad_n = rng.choice(plural_only), ts._plural(noun), noun
                head = f"{subject()} {rng.choice(ts.VERBS_PAST)} {det}"
                ok = add("agreement", sub, f"{head} {good_n}.", f"{head} {bad_n}.")
            elif sub == "adj_noun":
                head = f"{subject()} {rng.choice(ts.VERBS_PAST)} the"
                ok = add("word_order", sub, f"{head} {adj} {noun}.", f"{head} {noun} {adj}.")
            else:
                verb = rng.choice(ts.VERBS_INTRANSITIVE)
                np_ = f"the {adj} {noun}"
                ok = add("word_order", sub, f"{np_.capitalize()} {verb}.", f"{verb.capitalize()} {np_}.")
            made += ok
    for i, p in enumerate(pairs):
        p["id"] = i
    return pairs


# ----------------------------------------------------------------------------- audio


def _render(engine, text: str, voice, cfg_noise: float | None, seed: int, phonemes: bool, sample_rate: int) -> np.ndarray:
    from speechunits.resample import resample

    out = engine.synthesize(text, voice, seed=seed, phonemes=phonemes)
    speech = resample(out.audio.astype(np.float32) / 32768.0, out.sample_rate, sample_rate)
    pad = np.zeros(int(round(SILENCE_SECONDS * sample_rate)), np.float32)
    audio = np.concatenate([pad, speech, pad])
    if cfg_noise is not None:
        noise = np.random.Generator(np.random.PCG64(seed)).standard_normal(len(audio)).astype(np.float32)
        audio = audio + noise * np.float32(10 ** (cfg_noise / 20))
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def _write_csv(path: Path, fields: Sequence[str], rows: list[dict]) -> None:
    from speechunits.fileio import atomic_open

    with atomic_open(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=list(fields), lineterminator="\n")
        w.writeheader()
        for r in sorted(rows, key=lambda r: (r["id"], r["voice"], -int(r["correct"]))):
            w.writerow(r)


def _write_data_dir(folder: Path, rows: list[dict]) -> None:
    from speechunits.data.datadir import DataDir

    dd = DataDir(
        wav_scp={r["filename"]: str((folder / f"{r['filename']}.wav").absolute()) for r in rows},
        utt2spk={r["filename"]: r["voice"] for r in rows},
    )
    dd.write(folder / "data")


def make_spoken_sets(corpus: str | os.PathLike, out: str | os.PathLike, cfg: SpokenSetsConfig) -> dict:
    """Build both sets from the synthetic corpus in `corpus` (its corpus.json) into `out`."""
    from speechunits.corpora.espeak import Espeak, TemporaryDataDir, dictionary_for
    from speechunits.corpora.synthetic import (SyntheticConfig, make_speakers, variant_name, variant_text,
                                               write_wav)
    from speechunits.config import from_dict
    from speechunits.fileio import write_json

    cfg.check()
    info_path = Path(corpus) / "corpus.json"
    if not info_path.is_file():
        raise SpeechUnitsError(f"{info_path}: not found (a corpus made by `speechunits prepare synthetic`)")
    corpus_info = json.loads(info_path.read_text())
    scfg = from_dict(SyntheticConfig, corpus_info["config"], where=str(info_path))
    speakers = {s.id: s for s in make_speakers(scfg)}
    voices = list(cfg.voices) or list(corpus_info.get("test_speakers") or [])
    if not voices:
        raise SpeechUnitsError(f"{info_path}: the corpus has no test speakers; name voices")
    unknown = [v for v in voices if v not in speakers]
    if unknown:
        raise SpeechUnitsError(f"unknown voice(s) {', '.join(unknown)}; the corpus has {', '.join(sorted(speakers))}")
    out = Path(out)
    (out / "sets.json").unlink(missing_ok=True)
    sr = scfg.sample_rate
    rng = random.Random(f"{cfg.seed}:spoken-lm:nonwords")

    freqs = word_frequencies(cfg.text_sentences, cfg.seed)
    total = sum(freqs.values())
    engine = Espeak.get()
    lexicon = word_phones(engine, sorted(freqs))
    ranked = sorted((w for w in freqs if len(lexicon[w]) >= cfg.min_phones), key=lambda w: (-freqs[w], w))
    phone_counts: Counter = Counter()
    for w, n in freqs.items():
        for ph in lexicon[w]:
            phone_counts[_strip(ph)] += n
    items = []
    for word in ranked:
        if len(items) == cfg.words:
            break
        nonword = make_nonword(lexicon[word], list(lexicon.values()), rng, phone_counts=phone_counts)
        if nonword is None:
            log.info("no legal non-word for %r; skipped", word)
            continue
        items.append((word, lexicon[word], nonword))
    if len(items) < cfg.words:
        log.warning("only %d words have a legal non-word (asked for %d)", len(items), cfg.words)
    pairs = grammar_pairs(cfg.pairs_per_type, cfg.seed)

    variants = {variant_name(v): variant_text(speakers[v].base_variant) for v in voices}
    lex_dir, syn_dir = out / "lexical" / "dev", out / "syntactic" / "dev"
    lex_rows, syn_rows = [], []
    with TemporaryDataDir(variants, dictionary_for(scfg.language)) as data_path:
        try:
            engine = Espeak.get(data_path)
            for voice in voices:
                vs = speakers[voice].voice
                for i, (word, phones, nonword) in enumerate(items):
                    for correct, ph, label in ((1, phones, word), (0, nonword, "")):
                        name = f"{voice}-w{i:04d}-{'word' if correct else 'nonword'}"
                        seed = random.Random(f"{cfg.seed}:{name}").randrange(2**31)
                        pcm = _render(engine, f"[[{''.join(ph)}]]", vs, scfg.noise_dbfs, seed, True, sr)
                        write_wav(lex_dir / f"{name}.wav", pcm, sr)
                        lex_rows.append({"id": i, "filename": name, "voice": voice,
                                         "frequency": round(1e6 * freqs[word] / total, 1),
                                         "word": label, "phones": " ".join(ph), "length": len(ph), "correct": correct})
                for p in pairs:
                    for correct, text in ((1, p["good"]), (0, p["bad"])):
                        name = f"{voice}-s{p['id']:04d}-{'good' if correct else 'bad'}"
                        seed = random.Random(f"{cfg.seed}:{name}").randrange(2**31)
                        pcm = _render(engine, text, vs, scfg.noise_dbfs, seed, False, sr)
                        write_wav(syn_dir / f"{name}.wav", pcm, sr)
                        syn_rows.append({"id": p["id"], "filename": name, "voice": voice, "type": p["type"],
                                         "subtype": p["subtype"], "correct": correct, "transcription": text})
        finally:
            Espeak.get()  # back to the packaged data: the temporary folder is about to go
    _write_csv(lex_dir / "gold.csv", LEXICAL_FIELDS, lex_rows)
    _write_data_dir(lex_dir, lex_rows)
    if syn_rows:
        _write_csv(syn_dir / "gold.csv", SYNTACTIC_FIELDS, syn_rows)
        _write_data_dir(syn_dir, syn_rows)
    info = {
        "generator": "speechunits lm make-sets", "corpus": str(Path(corpus).absolute()),
        "config": {**dataclasses.asdict(cfg), "voices": voices},
        "lexical_pairs": len(lex_rows) // 2, "syntactic_pairs": len(syn_rows) // 2,
        "words": [w for w, _, _ in items],
    }
    write_json(out / "sets.json", info)
    return info
