"""The espeak -> ARPAbet phone map and the event -> segment conversion, against hand-made references."""

import numpy as np
import pytest

from speechunits.corpora import phones
from speechunits.corpora.phones import (
    ARPABET,
    ESPEAK_EN,
    SIL,
    UnknownPhoneError,
    espeak_to_arpabet,
    segments_from_events,
    strip_stress,
)
from speechunits.errors import SpeechUnitsError

# (espeak mnemonic as emitted, expected ARPAbet): CMUdict conventions, checked by hand
KNOWN = [
    ("@", ("AH",)), ("'V", ("AH",)), ("a#", ("AH",)), ("'a", ("AE",)), ("'aa", ("AE",)),
    ("'A:", ("AA",)), ("'0", ("AA",)), ("'O:", ("AO",)), ("'O2", ("AO",)), ("'E", ("EH",)),
    ("I", ("IH",)), ("I#", ("IH",)), ("i", ("IY",)), ("'i:", ("IY",)), ("'U", ("UH",)),
    ("'u:", ("UW",)), ("'3:", ("ER",)), ("3", ("ER",)), ("'aI", ("AY",)), (",aI", ("AY",)),
    ("'eI", ("EY",)), ("'OI", ("OY",)), ("'aU", ("AW",)), ("'oU", ("OW",)), (",oU", ("OW",)),
    ("'A@", ("AA", "R")), ("'O@", ("AO", "R")), ("e@", ("EH", "R")), ("'i@3", ("IH", "R")),
    ("U@", ("UH", "R")), ("'aI3", ("AY", "ER")), ("@L", ("AH", "L")), ("n-", ("AH", "N")),
    ("p", ("P",)), ("b", ("B",)), ("t", ("T",)), ("t#", ("T",)), ("?", ("T",)), ("d", ("D",)),
    ("k", ("K",)), ("g", ("G",)), ("tS", ("CH",)), ("dZ", ("JH",)), ("f", ("F",)), ("v", ("V",)),
    ("T", ("TH",)), ("D", ("DH",)), ("s", ("S",)), ("z", ("Z",)), ("S", ("SH",)), ("Z", ("ZH",)),
    ("h", ("HH",)), ("m", ("M",)), ("n", ("N",)), ("N", ("NG",)), ("l", ("L",)), ("r", ("R",)),
    ("r-", ("R",)), ("w", ("W",)), ("j", ("Y",)),
    ("_", (SIL,)), ("_:", (SIL,)), ("_!", (SIL,)), ("||", (SIL,)), (";", ()),
]


@pytest.mark.parametrize("mnemonic,expected", KNOWN)
def test_known_mnemonics_map_to_cmudict_phones(mnemonic, expected):
    assert espeak_to_arpabet(mnemonic) == expected


def test_stress_marks_are_stripped():
    assert strip_stress("'aI") == "aI"
    assert strip_stress(",oU") == "oU"
    assert strip_stress("%E") == "E"
    assert strip_stress("t") == "t"


@pytest.mark.parametrize("bad", ["Q^", "x#", "'xyz", "(en)"])
def test_unknown_mnemonic_is_an_error_naming_it(bad):
    with pytest.raises(UnknownPhoneError) as e:
        espeak_to_arpabet(bad)
    assert repr(bad) in str(e.value)
    assert isinstance(e.value, SpeechUnitsError)


def test_table_is_consistent():
    assert len(ARPABET) == 39 and len(set(ARPABET)) == 39
    reached = set()
    for m, p in ESPEAK_EN.items():
        assert m == p.mnemonic
        assert len(p.arpabet) == len(p.weights)
        assert abs(sum(p.weights) - 1.0) < 1e-9
        assert all(w > 0 for w in p.weights)
        assert set(p.arpabet) <= set(ARPABET), m
        reached |= set(p.arpabet)
    assert reached == set(ARPABET)  # every ARPAbet phone has an espeak source
    table = phones.inventory_table()
    for m in ESPEAK_EN:
        assert f"`{m}`" in table


def _as_tuples(segs):
    return [(s.start, s.end, s.phone) for s in segs]


def test_segments_simple_and_split():
    # "the" + comma pause + "car": D @2 _: _ k 'A@ ; A@ splits 60/40 into AA R
    events = [(10, "D"), (20, "@2"), (30, "_:"), (40, "_"), (50, "k"), (60, "'A@")]
    got = _as_tuples(segments_from_events(events, 80))
    assert got == [
        (0, 10, SIL), (10, 20, "DH"), (20, 30, "AH"), (30, 50, SIL), (50, 60, "K"),
        (60, 72, "AA"), (72, 80, "R"),
    ]


def test_segments_espeak_phone_set_keeps_mnemonics():
    events = [(0, "D"), (10, "'A@"), (30, "_")]
    got = _as_tuples(segments_from_events(events, 40, phone_set="espeak"))
    assert got == [(0, 10, "D"), (10, 30, "A@"), (30, 40, SIL)]


def test_dark_l_takes_the_tail_of_the_vowel():
    # "fell bad": f 'E l b ; espeak's l is empty before a consonant, E holds the /l/
    events = [(0, "f"), (10, "'E"), (30, "l"), (30, "b"), (40, "_")]
    got = _as_tuples(segments_from_events(events, 50))
    assert got == [(0, 10, "F"), (10, 22, "EH"), (22, 30, "L"), (30, 40, "B"), (40, 50, SIL)]
    # before a vowel the /l/ is clear and keeps its own interval
    events = [(0, "f"), (10, "'E"), (30, "l"), (40, "i")]
    got = _as_tuples(segments_from_events(events, 50))
    assert got == [(0, 10, "F"), (10, 30, "EH"), (30, 40, "L"), (40, 50, "IY")]


def test_glide_is_absorbed_into_previous_phone():
    events = [(0, "D"), (10, "i"), (20, ";"), (25, "'E"), (40, "n")]
    got = _as_tuples(segments_from_events(events, 50))
    assert got == [(0, 10, "DH"), (10, 25, "IY"), (25, 40, "EH"), (40, 50, "N")]


def test_stop_closure_moves_to_the_stop():
    # vowel [0, 100) ends with 30 zero samples: the closure of the following k
    audio = np.ones(150, dtype=np.int16)
    audio[70:100] = 0
    events = [(0, "'I"), (100, "k"), (120, "s")]
    got = _as_tuples(segments_from_events(events, 150, audio=audio))
    assert got == [(0, 70, "IH"), (70, 120, "K"), (120, 150, "S")]
    # without audio the boundary stays at espeak's event (the release)
    assert _as_tuples(segments_from_events(events, 150))[0] == (0, 100, "IH")
    # a short run of zeros is not a closure; nor is silence before a non-stop
    audio2 = np.ones(150, dtype=np.int16)
    audio2[95:100] = 0
    assert _as_tuples(segments_from_events(events, 150, audio=audio2))[0] == (0, 100, "IH")
    events3 = [(0, "'I"), (100, "s"), (120, "k")]
    assert _as_tuples(segments_from_events(events3, 150, audio=audio))[0] == (0, 100, "IH")


def test_segments_cover_and_are_contiguous_for_random_event_streams(rng):
    names = list(ESPEAK_EN) + ["_", "_:", ";"]
    for _ in range(200):
        n = int(rng.integers(1, 30))
        starts = np.sort(rng.integers(0, 500, size=n))
        events = [(int(s), str(rng.choice(names))) for s in starts]
        audio = (rng.random(520) < 0.7).astype(np.int16)
        segs = segments_from_events(events, 520, audio=audio)
        assert segs[0].start == 0 and segs[-1].end == 520
        for a, b in zip(segs, segs[1:]):
            assert a.end == b.start
            assert not (a.phone == SIL and b.phone == SIL)
        assert all(s.end > s.start for s in segs)


def test_events_out_of_order_are_rejected():
    with pytest.raises(SpeechUnitsError):
        segments_from_events([(10, "D"), (5, "@")], 20)
    with pytest.raises(SpeechUnitsError):
        segments_from_events([(0, "D"), (25, "@")], 20)


def test_docs_table_is_the_inventory():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "phones.md"
    if not doc.is_file():
        pytest.skip("docs/phones.md not present")
    text = doc.read_text(encoding="utf-8")
    assert phones.inventory_table() in text, "docs/phones.md is out of date: regenerate its table with inventory_table()"
