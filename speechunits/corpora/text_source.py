"""A seeded, phonetically rich English sentence generator that the project owns.

Why not a public text corpus: the synthetic corpus must be byte-reproducible from a
seed with nothing downloaded, and every word must go through espeak-ng's English
dictionary to phones that :mod:`speechunits.corpora.phones` knows. So the words
here are a few hundred common English words, chosen to cover every American
English phone (including the rare ones: /ʒ/ measure, /ɔɪ/ boy, /ʊ/ book,
/θ/ think, /ð/ this, /ŋ/ sing, /aʊ/ house, /ɝ/ bird), and slotted into simple
sentence templates. The sentences are grammatical enough for natural prosody
and random enough that the word sequence carries no information the units
could exploit beyond single words.

Punctuation shapes the prosody and the pauses: commas separate phrases (a short
pause, labelled ``sil``), sentences end in ``.``, ``?`` or ``!`` (a longer pause).

Randomness uses :class:`random.Random`, whose stream for ``random()``,
``randrange`` and ``choice`` is stable across Python versions, so a seed gives the
same text everywhere.
"""

from __future__ import annotations

import random
import re

# --- the lexicon, by part of speech -------------------------------------------------

DETERMINERS = ("the", "a", "this", "that", "my", "your", "his", "her", "our", "their", "every", "one")
PLURAL_DETERMINERS = ("the", "some", "these", "those", "many", "few", "two", "three", "all the", "our", "their")

ADJECTIVES = (
    "big", "small", "old", "young", "new", "good", "bad", "red", "blue", "green", "yellow", "white",
    "black", "brown", "orange", "purple", "happy", "sad", "quick", "slow", "quiet", "loud", "warm",
    "cold", "hot", "cool", "soft", "hard", "smooth", "rough", "bright", "dark", "clean", "dirty",
    "rich", "poor", "strong", "weak", "tall", "short", "long", "thin", "thick", "fresh", "sweet",
    "bitter", "sour", "early", "late", "heavy", "light", "noisy", "lazy", "busy", "funny", "strange",
    "usual", "visual", "casual", "pleasant", "gentle", "tiny", "huge", "empty", "full", "wooden",
    "golden", "silver", "round", "square", "careful", "curious", "famous", "foolish", "honest",
    "joyful", "loyal", "royal", "moist", "proud", "loose", "smart", "wise", "sharp", "broken",
)

NOUNS = (
    "dog", "cat", "bird", "fish", "horse", "cow", "sheep", "goat", "mouse", "frog", "bear", "wolf",
    "fox", "duck", "goose", "lion", "tiger", "monkey", "snake", "rabbit",
    "man", "woman", "child", "boy", "girl", "king", "queen", "judge", "teacher", "doctor", "farmer",
    "sailor", "soldier", "singer", "writer", "baker", "nurse", "pilot", "driver", "worker", "neighbor",
    "mother", "father", "brother", "sister", "uncle", "aunt", "friend", "stranger", "person",
    "house", "home", "room", "door", "window", "wall", "roof", "floor", "garden", "yard", "garage",
    "kitchen", "table", "chair", "bed", "lamp", "clock", "book", "page", "letter", "pencil", "paper",
    "picture", "mirror", "bottle", "glass", "cup", "spoon", "knife", "fork", "plate", "bowl", "box",
    "bag", "coin", "key", "ring", "watch", "shoe", "shirt", "coat", "hat", "jacket",
    "car", "truck", "bus", "train", "boat", "ship", "plane", "bicycle", "road", "street", "bridge",
    "river", "lake", "sea", "ocean", "beach", "island", "mountain", "hill", "valley", "forest", "tree",
    "flower", "leaf", "grass", "stone", "rock", "sand", "earth", "water", "fire", "air", "wind",
    "rain", "snow", "cloud", "sun", "moon", "star", "sky", "night", "morning", "evening", "day",
    "week", "year", "hour", "minute", "summer", "winter", "spring", "autumn",
    "bread", "butter", "cheese", "milk", "egg", "apple", "orange", "lemon", "cherry", "potato",
    "tomato", "cake", "soup", "meat", "rice", "sugar", "salt", "honey", "juice", "coffee", "tea",
    "music", "song", "voice", "noise", "story", "question", "answer", "idea", "thought", "dream",
    "measure", "treasure", "vision", "decision", "television", "pleasure", "leisure", "toy", "oil",
    "point", "choice", "joy", "thing", "thumb", "tooth", "mouth", "path", "month", "health",
    "village", "city", "country", "church", "school", "office", "market", "shop", "hospital",
    "machine", "engine", "chicken", "jungle", "jewel", "puzzle", "zebra", "zoo", "wagon", "yacht",
)

VERBS_PAST = (
    "saw", "found", "took", "gave", "kept", "left", "held", "brought", "bought", "caught", "taught",
    "made", "sold", "told", "moved", "pushed", "pulled", "washed", "watched", "touched", "painted",
    "cleaned", "carried", "opened", "closed", "fixed", "filled", "changed", "noticed", "liked",
    "loved", "wanted", "needed", "heard", "followed", "visited", "enjoyed", "destroyed", "measured",
    "treasured", "thanked", "joined", "judged", "chased", "cooked", "showed", "shared", "stole",
    "threw", "drew", "chose", "wore", "used", "missed", "hugged", "packed", "dropped", "lifted",
)

VERBS_INTRANSITIVE = (
    "slept", "laughed", "cried", "smiled", "sang", "danced", "jumped", "ran", "walked", "waited",
    "rested", "worked", "played", "swam", "stayed", "arrived", "returned", "listened", "shouted",
    "whispered", "yawned", "coughed", "sneezed", "wondered", "thought", "agreed", "stood", "fell",
)

VERBS_BASE = (
    "see", "find", "take", "give", "keep", "hold", "bring", "buy", "catch", "teach", "make", "sell",
    "tell", "move", "push", "pull", "wash", "watch", "touch", "paint", "clean", "carry", "open",
    "close", "fix", "fill", "change", "like", "love", "want", "hear", "follow", "visit", "enjoy",
    "measure", "join", "judge", "chase", "cook", "show", "share", "throw", "draw", "choose", "use",
)

PREPOSITIONS = (
    "in", "on", "under", "over", "behind", "beside", "near", "through", "across", "along", "around",
    "into", "from", "with", "without", "after", "before", "between", "above", "below", "toward",
    "inside", "outside", "past", "beyond", "against",
)

ADVERBS = (
    "quickly", "slowly", "quietly", "loudly", "gently", "carefully", "happily", "sadly", "really",
    "nearly", "always", "never", "often", "sometimes", "usually", "rarely", "soon", "again", "today",
    "yesterday", "together", "alone", "early", "late", "suddenly", "finally", "certainly", "easily",
)

NAMES = (
    "John", "Mary", "Peter", "Susan", "George", "Helen", "Charles", "Judy", "Thomas", "Ruth", "Joseph",
    "Anna", "Michael", "Sarah", "David", "Lucy", "Robert", "Grace", "Edward", "Joyce", "Arthur",
    "Rose", "Walter", "Emma", "Frank", "Laura", "Oliver", "Zoe", "Victor", "Irene",
)

PRONOUNS = ("he", "she", "we", "they", "I", "you")
CONJUNCTIONS = ("and", "but", "so", "because", "while", "although", "when")
QUESTION_WORDS = ("why", "where", "when", "how")
AUXILIARIES = ("did", "could", "would", "should", "will", "can", "might", "must")
MODIFIERS = ("very", "quite", "rather", "too", "so", "really", "almost")

# --- templates ----------------------------------------------------------------------
# Slots in capitals are filled from the lists above; other tokens are literal words.
# A sentence is one or two clauses, optionally linked by a conjunction after a comma.

CLAUSES = (
    "SUBJ VPAST OBJ",
    "SUBJ VPAST OBJ PREP OBJ",
    "SUBJ ADV VPAST OBJ",
    "SUBJ VINTR PREP OBJ",
    "SUBJ VINTR ADV",
    "SUBJ was MOD ADJ",
    "SUBJ looked ADJ PREP OBJ",
    "there was OBJ PREP OBJ",
    "SUBJ wanted to VBASE OBJ",
    "SUBJ said that SUBJ VPAST OBJ",
)

QUESTIONS = (
    "AUX SUBJ VBASE OBJ",
    "QWORD AUX SUBJ VBASE OBJ PREP OBJ",
    "QWORD was SUBJ so ADJ",
    "AUX you VBASE OBJ",
)


class TextSource:
    """Draws sentences and utterances from the templates with a seeded RNG.

    The generator is stateless: every call takes its own :class:`random.Random`,
    so utterance k of speaker s is a function of (seed, s, k) only, never of the
    order in which utterances are generated or of the number of parallel jobs.
    """

    def sentence(self, rng: random.Random) -> str:
        """One sentence with capital initial and final punctuation."""
        r = rng.random()
        if r < 0.15:
            text, end = self._fill(rng.choice(QUESTIONS), rng), "?"
        else:
            text = self._fill(rng.choice(CLAUSES), rng)
            if rng.random() < 0.4:
                text += ", " + rng.choice(CONJUNCTIONS) + " " + self._fill(rng.choice(CLAUSES), rng)
            if rng.random() < 0.25:
                text = self._fill("ADV", rng) + ", " + text
            end = "!" if r > 0.93 else "."
        return text[0].upper() + text[1:] + end

    def utterance(self, rng: random.Random, min_sentences: int = 1, max_sentences: int = 3) -> str:
        """A few sentences separated by spaces (espeak pauses between them)."""
        n = rng.randint(min_sentences, max_sentences)
        return " ".join(self.sentence(rng) for _ in range(n))

    # -- slot filling ----------------------------------------------------------------

    def _fill(self, template: str, rng: random.Random) -> str:
        return " ".join(self._slot(tok, rng) for tok in template.split())

    def _slot(self, tok: str, rng: random.Random) -> str:
        if tok == "SUBJ":
            r = rng.random()
            if r < 0.25:
                return rng.choice(NAMES)
            if r < 0.4:
                return rng.choice(PRONOUNS)
            return self._noun_phrase(rng)
        if tok == "OBJ":
            return rng.choice(NAMES) if rng.random() < 0.1 else self._noun_phrase(rng)
        table = {
            "VPAST": VERBS_PAST,
            "VINTR": VERBS_INTRANSITIVE,
            "VBASE": VERBS_BASE,
            "PREP": PREPOSITIONS,
            "ADV": ADVERBS,
            "ADJ": ADJECTIVES,
            "MOD": MODIFIERS,
            "AUX": AUXILIARIES,
            "QWORD": QUESTION_WORDS,
        }
        if tok in table:
            return rng.choice(table[tok])
        return tok

    def _noun_phrase(self, rng: random.Random) -> str:
        plural = rng.random() < 0.3
        det = rng.choice(PLURAL_DETERMINERS if plural else DETERMINERS)
        words = [det]
        if rng.random() < 0.6:
            words.append(rng.choice(ADJECTIVES))
        noun = rng.choice(NOUNS)
        words.append(_plural(noun) if plural else noun)
        return " ".join(words)


_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "mouse": "mice", "goose": "geese",
    "sheep": "sheep", "fish": "fish", "tooth": "teeth", "leaf": "leaves", "knife": "knives",
    "wolf": "wolves", "potato": "potatoes", "tomato": "tomatoes", "hero": "heroes",
}


def _plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    if re.search(r"(s|sh|ch|x|z)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


def words_of(text: str) -> list[str]:
    """The words of a generated text for the Kaldi ``text`` file: lower case, no punctuation."""
    return re.findall(r"[a-z']+", text.lower())
