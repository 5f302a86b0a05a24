"""The seeded sentence generator, and that espeak + the phone map cover its whole lexicon."""

import random
import re

import pytest

from speechunits.corpora import text_source as ts
from speechunits.corpora.phones import ARPABET, SIL, segments_from_events

LISTS = [
    ts.DETERMINERS, ts.PLURAL_DETERMINERS, ts.ADJECTIVES, ts.NOUNS, ts.VERBS_PAST, ts.VERBS_INTRANSITIVE,
    ts.VERBS_BASE, ts.PREPOSITIONS, ts.ADVERBS, ts.NAMES, ts.PRONOUNS, ts.CONJUNCTIONS, ts.QUESTION_WORDS,
    ts.AUXILIARIES, ts.MODIFIERS,
]


def lexicon():
    words = {w for lst in LISTS for phrase in lst for w in phrase.split()}
    words |= {ts._plural(n) for n in ts.NOUNS}
    return sorted(words)


def test_same_seed_same_text_different_seed_different_text():
    src = ts.TextSource()
    a = [src.utterance(random.Random(f"7:{k}")) for k in range(20)]
    b = [src.utterance(random.Random(f"7:{k}")) for k in range(20)]
    c = [src.utterance(random.Random(f"8:{k}")) for k in range(20)]
    assert a == b
    assert a != c


def test_sentences_are_well_formed():
    src = ts.TextSource()
    rng = random.Random(0)
    for _ in range(300):
        s = src.sentence(rng)
        assert re.fullmatch(r"[A-Z][A-Za-z' ,]*[.?!]", s), s
        assert "  " not in s and not s.startswith(" ")
    u = src.utterance(random.Random(1), 3, 3)
    assert len(re.findall(r"[.?!]", u)) == 3


def test_words_of_gives_lower_case_words_without_punctuation():
    assert ts.words_of("Helen, the Judge's cat slept. Why?") == ["helen", "the", "judge's", "cat", "slept", "why"]


def test_plurals():
    assert [ts._plural(w) for w in ("box", "city", "day", "knife", "child", "potato", "dog")] == [
        "boxes", "cities", "days", "knives", "children", "potatoes", "dogs",
    ]


def test_lexicon_is_large_and_plain():
    words = lexicon()
    assert len(words) > 500
    assert all(re.fullmatch(r"[A-Za-z]+", w) for w in words)


def test_every_word_maps_to_known_phones_and_all_arpabet_phones_occur():
    es = pytest.importorskip("speechunits.corpora.espeak")
    engine = es.Espeak.get()
    words = lexicon()
    seen = set()
    for k in range(0, len(words), 150):  # a few long texts: one word per "sentence"
        text = ". ".join(words[k : k + 150]) + "."
        out = engine.synthesize(text, es.VoiceSettings("en-us"))
        events = [(e.sample, e.mnemonic) for e in out.events]
        segs = segments_from_events(events, len(out.audio), audio=out.audio)  # raises on an unknown phone
        seen |= {s.phone for s in segs}
    assert seen == set(ARPABET) | {SIL}
