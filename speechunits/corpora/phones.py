"""The project's phone inventory and the map from espeak-ng's English phonemes to it.

Probes and ABX compare labels across corpora, so every corpus speaks one phone
set: the 39 ARPAbet phones of CMUdict without stress digits (what speechocean762
uses), plus ``sil`` for silence and pauses. This module maps espeak-ng's
American English phoneme mnemonics (``en-us``, which includes ``en`` and
``base1``) onto that set, and turns espeak's phoneme events into labelled
segments.

How espeak's phones become ARPAbet segments
-------------------------------------------

- Stress marks in front of a mnemonic (``'`` primary, ``,`` secondary, ``%``, ``=``)
  are dropped: ``'aI`` -> ``aI`` -> ``AY``.
- Pauses (``_``, ``_:``, ``_!``, ``_;_``, ``_|``, ``_::``, ``_^_``, ``||``) and the
  audio before the first phone become ``sil``; adjacent ``sil`` merge.
- Most mnemonics map to one ARPAbet phone over the same samples (exact).
- A few espeak phones are two ARPAbet phones in one: r-coloured vowels (``A@`` =
  [ɑɹ] -> ``AA R``), triphthongs (``aI@`` -> ``AY AH``) and syllabic consonants
  (``n-`` -> ``AH N``, as CMUdict writes them). espeak reports one start for
  them, so the interval is split at a fixed fraction (the weights in the table).
  These inner boundaries are approximations; all other boundaries are espeak's
  own.
- Dark /l/: espeak synthesises an /l/ that follows a vowel (or /j/, /w/) and
  precedes a consonant or a pause *inside the vowel's segment*; the ``l`` event's
  own segment is empty or a few milliseconds of silence. So such an ``L`` is
  given the last 40 % of the preceding vowel segment plus its own segment (the
  fraction comes from measuring how much longer espeak's vowels are before dark
  /l/ than before other consonants: 28-68 %, median about 40 %). Again an
  approximate inner boundary.
- Stop closures: before a voiceless stop or affricate, espeak ends the preceding
  phone with the stop's closure, as exact digital silence, and the stop's event
  marks the release. The closure belongs to the stop (as in TIMIT-style
  alignments, where the 39-phone set folds ``kcl`` into ``k``), so the boundary
  is moved back to where the silence starts. This is exact: the zeros are there
  in espeak's output.
- The glide ``;`` that espeak appends to /i/-like vowels before another vowel,
  and the virtual ``:``/``-``, are absorbed into the preceding phone (CMUdict has
  no phone there).
- The glottal stop ``?`` is how en-us realises /t/ before a syllabic /n/
  ("certainly"): ``T``, as in CMUdict.
- A mnemonic that is not in the table raises :class:`UnknownPhoneError` naming it:
  an unmapped phone is never silently dropped or guessed.

With ``phone_set="espeak"`` the labels are the stress-free espeak mnemonics
instead (no splitting; the dark-/l/ and stop-closure corrections still apply).

The inventory is ``ESPEAK_EN`` below (mnemonic, IPA, example, ARPAbet, split
weights); :func:`inventory_table` renders it as the Markdown table of
docs/phones.md.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

from speechunits.errors import ConfigError, SpeechUnitsError

SIL = "sil"

# CMUdict's 39 phones, stress removed.
ARPABET = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH",
    "UH", "UW", "V", "W", "Y", "Z", "ZH",
)
ARPABET_VOWELS = frozenset(("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"))

STRESS_MARKS = "',%="
PAUSES = frozenset(("_", "_:", "_!", "_;_", "_|", "_::", "_^_", "||"))
ABSORBED = frozenset((";", ":", "-"))
DARK_L_FRACTION = 0.4  # share of the preceding vowel segment given to a dark /l/
MIN_CLOSURE = 22  # samples (1 ms at 22050 Hz): shorter runs of exact zeros are not a closure
_STOP_ARPABET = frozenset(("P", "T", "K", "B", "D", "G", "CH", "JH"))


class UnknownPhoneError(SpeechUnitsError):
    """espeak produced a phoneme mnemonic that the inventory does not map."""


@dataclasses.dataclass(frozen=True)
class EspeakPhone:
    """One espeak English phoneme: its IPA, an example word, and its ARPAbet phones.

    ``weights`` (same length as ``arpabet``, summing to 1) split the phone's
    interval when it maps to more than one ARPAbet phone.
    """

    mnemonic: str
    ipa: str
    example: str
    arpabet: tuple[str, ...]
    weights: tuple[float, ...] = (1.0,)
    vowel: bool = False


def _v(m, ipa, ex, arpa, weights=None):
    arpa = tuple(arpa.split())
    if weights is None:
        weights = (1.0,) if len(arpa) == 1 else (0.6, 0.4)
    return EspeakPhone(m, ipa, ex, arpa, tuple(weights), vowel=True)


def _c(m, ipa, ex, arpa, weights=None):
    arpa = tuple(arpa.split())
    return EspeakPhone(m, ipa, ex, arpa, tuple(weights or (1.0,)), vowel=False)


_SYLLABIC = (0.35, 0.65)

_TABLE = (
    # vowels
    _v("@", "ə", "comma (a)", "AH"),
    _v("@2", "ə", "the", "AH"),
    _v("@5", "ə", "to", "AH"),
    _v("@#", "ə", "(fronted schwa)", "AH"),
    _v("3", "ɚ", "butter (er)", "ER"),
    _v("3:", "ɝ", "bird", "ER"),
    _v("a", "æ", "trap", "AE"),
    _v("aa", "æ", "bath", "AE"),
    _v("a2", "æ", "(unreduced a)", "AE"),
    _v("a#", "ɐ", "about (a)", "AH"),
    _v("a#2", "ɐ", "an", "AH"),
    _v("A:", "ɑː", "father", "AA"),
    _v("A#", "ɑː", "(bath, American)", "AA"),
    _v("0", "ɑː", "lot", "AA"),
    _v("0#", "ɑː", "(unstressed o)", "AA"),
    _v("02", "ʌ", "(becomes V in en-us)", "AH"),
    _v("V", "ʌ", "strut", "AH"),
    _v("O2", "ɔː", "long, cloth", "AO"),
    _v("O:", "ɔː", "thought", "AO"),
    _v("O", "ɔ", "(short o)", "AO"),
    _v("o:", "oː", "(long o)", "OW"),
    _v("E", "ɛ", "dress", "EH"),
    _v("E2", "ɛ", "(unreduced e)", "EH"),
    _v("E#", "ɛ", "(e, reducible)", "EH"),
    _v("e#", "ɛ", "explore", "EH"),
    _v("e:", "eː", "(long e)", "EY"),
    _v("I", "ɪ", "kit", "IH"),
    _v("I2", "ɪ", "intend", "IH"),
    _v("I#", "ᵻ", "roses (e)", "IH"),
    _v("I2#", "ɪ", "wanted (e)", "IH"),
    _v("i", "i", "happy (y)", "IY"),
    _v("i:", "iː", "fleece", "IY"),
    _v("U", "ʊ", "foot", "UH"),
    _v("u:", "uː", "goose", "UW"),
    _v("aI", "aɪ", "price", "AY"),
    _v("eI", "eɪ", "face", "EY"),
    _v("OI", "ɔɪ", "choice", "OY"),
    _v("aU", "aʊ", "mouth", "AW"),
    _v("oU", "oʊ", "goat", "OW"),
    _v("oU#", "oʊ", "(reducible o)", "OW"),
    _v("A~", "ɑ̃", "(French loans)", "AA"),
    _v("O~", "ɔ̃", "(French loans)", "AO"),
    # r-coloured vowels and triphthongs: two ARPAbet phones, interval split 60/40
    _v("A@", "ɑɹ", "start", "AA R"),
    _v("O@", "ɔɹ", "north", "AO R"),
    _v("o@", "oɹ", "force", "AO R"),
    _v("e@", "ɛɹ", "square", "EH R"),
    _v("i@3", "ɪɹ", "near", "IH R"),
    _v("U@", "ʊɹ", "cure", "UH R"),
    _v("IR", "əɹ", "(split ir)", "IH R"),
    _v("VR", "ʌɹ", "(split ur)", "AH R"),
    _v("i@", "iə", "idea", "IY AH"),
    _v("aI@", "aɪə", "science", "AY AH"),
    _v("aI3", "aɪɚ", "fire", "AY ER"),
    _v("aU@", "aʊɚ", "hour", "AW ER"),
    # syllabic consonants: CMUdict writes schwa + consonant
    _v("@L", "əl", "simple (le)", "AH L", _SYLLABIC),
    _v("l-", "l̩", "(syllabic l)", "AH L", _SYLLABIC),
    _v("n-", "n̩", "certain (n)", "AH N", _SYLLABIC),
    _v("m-", "m̩", "(syllabic m)", "AH M", _SYLLABIC),
    # consonants
    _c("p", "p", "pin", "P"),
    _c("b", "b", "bin", "B"),
    _c("t", "t", "tin", "T"),
    _c("t2", "t", "(unreduced t)", "T"),
    _c("t#", "ɾ", "city (flap)", "T"),
    _c("?", "ʔ", "certain (t)", "T"),
    _c("d", "d", "din", "D"),
    _c("d#", "d", "(d or t)", "D"),
    _c("k", "k", "kin", "K"),
    _c("g", "ɡ", "give", "G"),
    _c("tS", "tʃ", "chin", "CH"),
    _c("dZ", "dʒ", "jam", "JH"),
    _c("f", "f", "fin", "F"),
    _c("v", "v", "vine", "V"),
    _c("T", "θ", "thin", "TH"),
    _c("D", "ð", "this", "DH"),
    _c("s", "s", "sin", "S"),
    _c("z", "z", "zoo", "Z"),
    _c("z#", "z", "(z or s)", "Z"),
    _c("z/2", "z", "(plural s)", "Z"),
    _c("S", "ʃ", "shin", "SH"),
    _c("Z", "ʒ", "measure", "ZH"),
    _c("h", "h", "hat", "HH"),
    _c("x", "x", "loch", "HH"),
    _c("m", "m", "map", "M"),
    _c("n", "n", "nap", "N"),
    _c("N", "ŋ", "sing", "NG"),
    _c("l", "l", "leaf", "L"),
    _c("l/", "l", "(clear l)", "L"),
    _c("l/2", "ɫ", "(dark l)", "L"),
    _c("r", "ɹ", "red", "R"),
    _c("r-", "ɹ", "far away (linking r)", "R"),
    _c("r/", "ɹ", "(r before consonant)", "R"),
    _c("w", "w", "wet", "W"),
    _c("w#", "ʍ", "which", "W"),
    _c("j", "j", "yes", "Y"),
)

ESPEAK_EN: dict[str, EspeakPhone] = {p.mnemonic: p for p in _TABLE}
STOPS = frozenset(m for m, p in ESPEAK_EN.items() if p.arpabet[0] in _STOP_ARPABET)  # stops and affricates


def strip_stress(mnemonic: str) -> str:
    """``"'aI"`` -> ``"aI"``: drop the stress marks espeak puts in front of a vowel."""
    return mnemonic.lstrip(STRESS_MARKS)


def lookup(mnemonic: str) -> EspeakPhone:
    """The table entry of an espeak mnemonic (stress marks allowed); raises for pauses and unknowns."""
    name = strip_stress(mnemonic)
    try:
        return ESPEAK_EN[name]
    except KeyError:
        raise UnknownPhoneError(
            f"espeak phoneme {mnemonic!r} is not in the phone inventory (speechunits/corpora/phones.py); "
            "add it to the table with its ARPAbet mapping"
        ) from None


def espeak_to_arpabet(mnemonic: str) -> tuple[str, ...]:
    """ARPAbet phones of one espeak mnemonic: ``"'A@"`` -> ``("AA", "R")``; pauses -> ``("sil",)``; ``";"`` -> ``()``."""
    name = strip_stress(mnemonic)
    if name in PAUSES:
        return (SIL,)
    if name in ABSORBED:
        return ()
    return lookup(mnemonic).arpabet


@dataclasses.dataclass(frozen=True)
class PhoneSegment:
    """A labelled interval in samples: ``[start, end)``."""

    start: int
    end: int
    phone: str


def segments_from_events(
    events: Sequence[tuple[int, str]],
    num_samples: int,
    phone_set: str = "arpabet",
    audio: np.ndarray | None = None,
    min_closure: int = MIN_CLOSURE,
) -> list[PhoneSegment]:
    """Labelled segments covering ``[0, num_samples)`` from espeak phoneme events.

    events: ``(start sample, mnemonic)`` in time order (as
    :class:`speechunits.corpora.espeak.PhoneEvent` gives them); each phone lasts
    until the next event, the last until ``num_samples``. audio: espeak's output
    ``(num_samples,)``; with it, stop closures are given to their stops (see the
    module doc). Returns contiguous, non-empty segments in time order, adjacent
    ``sil`` merged. Integer sample positions: fractional split points are rounded.
    """
    if phone_set not in ("arpabet", "espeak"):
        raise ConfigError(f"phone_set must be 'arpabet' or 'espeak', got {phone_set!r}")
    starts = [int(s) for s, _ in events]
    if any(b < a for a, b in zip(starts, starts[1:])) or any(s < 0 or s > num_samples for s in starts):
        raise SpeechUnitsError(f"espeak events are not in time order within [0, {num_samples}]: {starts[:20]}")
    names = [strip_stress(m) for _, m in events]

    # 1. one raw interval per event, with its list of (label, weight) parts
    raw: list[list] = []  # [start, end, parts, name]
    if not starts or starts[0] > 0:
        raw.append([0, starts[0] if starts else num_samples, [(SIL, 1.0)], "_"])
    for i, name in enumerate(names):
        end = starts[i + 1] if i + 1 < len(starts) else num_samples
        raw.append([starts[i], end, _parts(name, phone_set), name])

    # 2. absorb glides/virtual phones into the preceding interval
    merged: list[list] = []
    for item in raw:
        if item[3] in ABSORBED and merged:
            merged[-1][1] = item[1]
        elif item[3] in ABSORBED:
            item[2] = [(SIL, 1.0)]
            merged.append(item)
        else:
            merged.append(item)

    # 3. dark /l/: move it into the tail of the preceding vowel interval
    for i in range(1, len(merged)):
        if merged[i][3] == "l" and _is_dark_l(merged, i):
            prev = merged[i - 1]
            cut = prev[0] + round((1.0 - DARK_L_FRACTION) * (prev[1] - prev[0]))
            if cut > prev[0]:
                prev[1] = cut
                merged[i][0] = cut

    # 4. stop closures: espeak ends the phone before a stop with the stop's closure
    #    (exact zeros); the closure belongs to the stop, as in TIMIT-style alignments
    if audio is not None:
        if len(audio) != num_samples:
            raise ConfigError(f"audio has {len(audio)} samples, expected {num_samples}")
        for i in range(1, len(merged)):
            prev = merged[i - 1]
            if merged[i][3] not in STOPS or prev[3] in PAUSES or prev[2] == [(SIL, 1.0)]:
                continue
            nonzero = np.flatnonzero(audio[prev[0] : prev[1]])
            if len(nonzero) == 0:  # the whole phone is silent (a glottal stop): leave it be
                continue
            run = (prev[1] - prev[0]) - (int(nonzero[-1]) + 1)
            if run >= min_closure:
                prev[1] -= run
                merged[i][0] = prev[1]

    # 5. split multi-phone intervals, drop empty pieces, merge adjacent sil
    out: list[PhoneSegment] = []
    for start, end, parts, _ in merged:
        total = end - start
        pos, acc = start, 0.0
        for k, (label, weight) in enumerate(parts):
            acc += weight
            stop = end if k == len(parts) - 1 else start + round(acc * total)
            if stop > pos:
                if out and label == SIL and out[-1].phone == SIL:
                    out[-1] = PhoneSegment(out[-1].start, stop, SIL)
                else:
                    out.append(PhoneSegment(pos, stop, label))
                pos = stop
    return out


def _parts(name: str, phone_set: str) -> list[tuple[str, float]]:
    if name in PAUSES:
        return [(SIL, 1.0)]
    if name in ABSORBED:
        return []
    phone = lookup(name)
    if phone_set == "espeak":
        return [(name, 1.0)]
    return list(zip(phone.arpabet, phone.weights))


def _is_dark_l(items: list[list], i: int) -> bool:
    """espeak's own rule (ph_english): /l/ after a vowel, /j/ or /w/ and not before a vowel."""
    prev = items[i - 1][3]
    nxt = items[i + 1][3] if i + 1 < len(items) else "_"
    prev_ok = prev in ("j", "w") or (prev in ESPEAK_EN and ESPEAK_EN[prev].vowel)
    next_vowel = nxt in ESPEAK_EN and ESPEAK_EN[nxt].vowel
    return prev_ok and not next_vowel


def inventory_table(phones: Iterable[EspeakPhone] = _TABLE) -> str:
    """The inventory as a Markdown table (espeak mnemonic, IPA, example, ARPAbet, split weights)."""
    lines = ["| espeak | IPA | example | ARPAbet | split |", "|---|---|---|---|---|"]
    for p in phones:
        split = "" if len(p.arpabet) == 1 else " / ".join(f"{w:.2f}" for w in p.weights)
        lines.append(f"| `{p.mnemonic}` | {p.ipa} | {p.example} | {' '.join(p.arpabet)} | {split} |")
    pauses = ", ".join(f"`{m}`".replace("|", "\\|") for m in sorted(PAUSES))  # a bare | would end the cell
    lines.append(f"| {pauses} | | pauses | {SIL} | |")
    lines.append(f"| {', '.join(f'`{m}`' for m in sorted(ABSORBED))} | | glide / virtual | (absorbed into previous) | |")
    return "\n".join(lines)
