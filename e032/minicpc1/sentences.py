"""A fixed bank of ordinary English sentences (4-10 words) built from a small grammar.

The sentences are written by this project: a handful of templates filled from word lists of a few
hundred word types in total, so that a tiny ASR trained for minutes can learn the vocabulary. The bank
is the same for every seed (it is drawn with a constant seed); the dataset seed only decides which
sentences go to which part of the dataset (:func:`partition_sentences`).

All text is lower case, words separated by single spaces, no punctuation (CPC1 prompts are lower case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

BANK_SEED: Final[int] = 20220618  # constant: the bank (and its vocabulary) never depends on the run seed
MIN_WORDS: Final[int] = 4
MAX_WORDS: Final[int] = 10

NOUNS: Final[tuple[str, ...]] = (
    "dog",
    "cat",
    "horse",
    "bird",
    "fish",
    "car",
    "boat",
    "train",
    "house",
    "garden",
    "window",
    "door",
    "table",
    "chair",
    "book",
    "letter",
    "paper",
    "bottle",
    "glass",
    "cup",
    "plate",
    "bag",
    "box",
    "coat",
    "hat",
    "shoe",
    "key",
    "clock",
    "phone",
    "picture",
    "ball",
    "cake",
    "bread",
    "apple",
    "orange",
    "lamp",
    "bed",
    "road",
    "bridge",
    "river",
    "tree",
    "flower",
    "ticket",
    "radio",
    "camera",
    "basket",
    "bicycle",
    "kettle",
    "blanket",
    "pencil",
)
PEOPLE: Final[tuple[str, ...]] = (
    "man",
    "woman",
    "boy",
    "girl",
    "doctor",
    "teacher",
    "farmer",
    "driver",
    "baker",
    "nurse",
    "student",
    "neighbour",
    "child",
    "friend",
    "soldier",
    "painter",
    "singer",
    "sailor",
    "king",
    "queen",
)
FAMILY: Final[tuple[str, ...]] = (
    "mother",
    "father",
    "brother",
    "sister",
    "uncle",
    "aunt",
    "cousin",
    "son",
    "daughter",
    "grandmother",
)
ADJECTIVES: Final[tuple[str, ...]] = (
    "old",
    "new",
    "big",
    "small",
    "red",
    "green",
    "blue",
    "black",
    "white",
    "yellow",
    "brown",
    "heavy",
    "light",
    "long",
    "short",
    "clean",
    "dirty",
    "warm",
    "cold",
    "quiet",
    "happy",
    "tired",
    "young",
    "pretty",
    "strong",
    "broken",
    "empty",
    "full",
    "soft",
    "wooden",
)
# (past tense, base form) of transitive verbs
VERBS: Final[tuple[tuple[str, str], ...]] = (
    ("found", "find"),
    ("bought", "buy"),
    ("sold", "sell"),
    ("carried", "carry"),
    ("painted", "paint"),
    ("washed", "wash"),
    ("opened", "open"),
    ("closed", "close"),
    ("moved", "move"),
    ("dropped", "drop"),
    ("lost", "lose"),
    ("kept", "keep"),
    ("brought", "bring"),
    ("took", "take"),
    ("gave", "give"),
    ("saw", "see"),
    ("watched", "watch"),
    ("liked", "like"),
    ("wanted", "want"),
    ("cleaned", "clean"),
    ("fixed", "fix"),
    ("checked", "check"),
    ("pushed", "push"),
    ("pulled", "pull"),
    ("lifted", "lift"),
    ("packed", "pack"),
    ("showed", "show"),
    ("covered", "cover"),
    ("filled", "fill"),
    ("hid", "hide"),
)
# (past tense, base form) of intransitive verbs
INTRANSITIVE: Final[tuple[tuple[str, str], ...]] = (
    ("waited", "wait"),
    ("slept", "sleep"),
    ("sang", "sing"),
    ("laughed", "laugh"),
    ("walked", "walk"),
    ("ran", "run"),
    ("danced", "dance"),
    ("worked", "work"),
    ("stayed", "stay"),
    ("played", "play"),
    ("cried", "cry"),
    ("talked", "talk"),
    ("swam", "swim"),
    ("stopped", "stop"),
    ("arrived", "arrive"),
)
PLACES: Final[tuple[str, ...]] = (
    "kitchen",
    "station",
    "market",
    "school",
    "office",
    "park",
    "shop",
    "church",
    "hospital",
    "library",
    "garage",
    "beach",
    "farm",
    "village",
    "city",
    "hotel",
    "restaurant",
    "bank",
    "hall",
    "cinema",
)
PREPOSITIONS: Final[tuple[str, ...]] = ("in", "near", "behind", "outside", "at", "beside")
ON_PREPOSITIONS: Final[tuple[str, ...]] = ("on", "under", "beside", "behind", "near")
TIMES: Final[tuple[str, ...]] = (
    "today",
    "yesterday",
    "tomorrow",
    "tonight",
    "last week",
    "next week",
    "this morning",
    "this evening",
    "on monday",
    "on friday",
    "at noon",
    "every day",
    "last summer",
    "next winter",
)
NUMBERS: Final[tuple[str, ...]] = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
PRONOUNS: Final[tuple[str, ...]] = ("i", "we", "they", "she", "he", "you")
ADVERBS: Final[tuple[str, ...]] = ("quickly", "slowly", "quietly", "again", "carefully", "early", "late")
POSSESSIVES: Final[tuple[str, ...]] = ("my", "your", "his", "her", "our", "their")


def _plural(noun: str) -> str:
    """English plural of the nouns above (regular rules are enough for this vocabulary)."""
    irregular = {"man": "men", "woman": "women", "child": "children", "shoe": "shoes", "knife": "knives"}
    if noun in irregular:
        return irregular[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _pick(rng: np.random.Generator, words: Sequence) -> object:
    return words[int(rng.integers(len(words)))]


def _article(rng: np.random.Generator) -> str:
    return str(_pick(rng, ("the", "the", "a", "this", "that")))


def _a_an(next_word: str) -> str:
    return "an" if next_word[0] in "aeiou" else "a"


def _noun_phrase(rng: np.random.Generator, nouns: Sequence[str], adjective_prob: float = 0.5) -> str:
    noun = str(_pick(rng, nouns))
    words = [str(_pick(rng, ADJECTIVES)), noun] if rng.random() < adjective_prob else [noun]
    det = _article(rng)
    if det == "a":
        det = _a_an(words[0])
    return " ".join([det, *words])


def _template_sentence(rng: np.random.Generator) -> str:
    """One sentence from one of the templates (chosen uniformly)."""
    kind = int(rng.integers(10))
    if kind == 0:  # the old man bought a red car yesterday
        return (
            f"{_noun_phrase(rng, PEOPLE)} {_pick(rng, VERBS)[0]} "
            f"{_noun_phrase(rng, NOUNS)} {_pick(rng, TIMES)}"
        )
    if kind == 1:  # she found the key in the kitchen
        return (
            f"{_pick(rng, PRONOUNS)} {_pick(rng, VERBS)[0]} {_noun_phrase(rng, NOUNS)} "
            f"{_pick(rng, PREPOSITIONS)} the {_pick(rng, PLACES)}"
        )
    if kind == 2:  # my sister will paint the blue door tomorrow
        return (
            f"{_pick(rng, POSSESSIVES)} {_pick(rng, FAMILY)} will {_pick(rng, VERBS)[1]} "
            f"{_noun_phrase(rng, NOUNS)} {_pick(rng, TIMES)}"
        )
    if kind == 3:  # can you bring the small box to the station
        return f"can you {_pick(rng, VERBS)[1]} {_noun_phrase(rng, NOUNS)} " f"to the {_pick(rng, PLACES)}"
    if kind == 4:  # there are five green apples on the table
        return (
            f"there are {_pick(rng, NUMBERS)} {_pick(rng, ADJECTIVES)} {_plural(str(_pick(rng, NOUNS)))} "
            f"{_pick(rng, ON_PREPOSITIONS)} the {_pick(rng, NOUNS)}"
        )
    if kind == 5:  # the tired farmer waited at the hotel
        return (
            f"{_noun_phrase(rng, PEOPLE, 0.7)} {_pick(rng, INTRANSITIVE)[0]} "
            f"{_pick(rng, PREPOSITIONS)} the {_pick(rng, PLACES)}"
        )
    if kind == 6:  # we walked slowly to the park last week
        return (
            f"{_pick(rng, PRONOUNS)} {_pick(rng, INTRANSITIVE)[0]} {_pick(rng, ADVERBS)} "
            f"{_pick(rng, TIMES)}"
        )
    if kind == 7:  # please put the wooden chair behind the bed
        return (
            f"please put {_noun_phrase(rng, NOUNS)} {_pick(rng, ON_PREPOSITIONS)} " f"the {_pick(rng, NOUNS)}"
        )
    if kind == 8:  # the teacher gave her brother an old clock
        noun = str(_pick(rng, NOUNS))
        adj = str(_pick(rng, ADJECTIVES))
        return (
            f"the {_pick(rng, PEOPLE)} gave {_pick(rng, POSSESSIVES)} {_pick(rng, FAMILY)} "
            f"{_a_an(adj)} {adj} {noun}"
        )
    # kind 9: do not leave the empty bottle in the garden
    return (
        f"do not {_pick(rng, ('leave', 'drop', 'hide', 'move', 'wash', 'open'))} "
        f"{_noun_phrase(rng, NOUNS)} {_pick(rng, PREPOSITIONS)} the "
        f"{_pick(rng, ('garden', 'kitchen', 'car', 'house', 'office', 'hall'))}"
    )


def sentence_bank(n_sentences: int = 3000) -> list[str]:
    """Return ``n_sentences`` distinct sentences of 4-10 words, always the same for the same size.

    Parameters
    ----------
    n_sentences : number of distinct sentences wanted (the grammar offers far more than 10 000).

    Returns
    -------
    list of str, in a fixed (pseudo-random) order.

    Examples
    --------
    >>> bank = sentence_bank(50)
    >>> len(set(bank)) == 50 and all(4 <= len(s.split()) <= 10 for s in bank)
    True
    """
    rng = np.random.default_rng(BANK_SEED)
    seen: dict[str, None] = {}
    while len(seen) < n_sentences:
        text = _template_sentence(rng)
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            seen.setdefault(text, None)
    return list(seen)


def vocabulary(sentences: Sequence[str]) -> set[str]:
    """Set of word types in ``sentences``."""
    return {w for s in sentences for w in s.split()}


@dataclass(frozen=True)
class SentencePartition:
    """Which sentences serve which purpose (lists are disjoint except as documented).

    ``clean_train`` contains the training-scene sentences plus extra ones; it never contains a test,
    babble or clean-valid sentence.
    """

    test: list[str]
    train: list[str]
    babble: list[str]
    clean_valid: list[str]
    clean_train: list[str]


def partition_sentences(
    rng: np.random.Generator,
    n_train: int,
    n_test: int,
    n_babble: int,
    n_clean_valid: int,
    n_clean_train: int,
    bank_size: int = 3000,
) -> SentencePartition:
    """Split the bank into test, train, babble, clean-valid and clean-train sentences.

    The clean-train list (the ASR pre-training text) is the train-scene sentences, then sentences that
    bring in any word of the test or valid sentences not yet covered, then random others, up to
    ``n_clean_train`` (or more if coverage needs it).

    Raises
    ------
    ValueError
        If the bank is too small for the requested sizes.
    """
    bank = sentence_bank(bank_size)
    need = n_train + n_test + n_babble + n_clean_valid
    if need > len(bank):
        raise ValueError(f"sentence bank has {len(bank)} sentences, the sizes asked for need {need}")
    order = rng.permutation(len(bank))
    shuffled = [bank[i] for i in order]
    test = shuffled[:n_test]
    train = shuffled[n_test : n_test + n_train]
    babble = shuffled[n_test + n_train : n_test + n_train + n_babble]
    clean_valid = shuffled[n_test + n_train + n_babble : need]
    rest = shuffled[need:]
    clean_train = list(train)
    covered = vocabulary(clean_train)
    missing = vocabulary(test + clean_valid) - covered
    remaining = []
    for text in rest:  # first pass: bring in every missing word
        new_words = set(text.split()) & missing
        if new_words:
            clean_train.append(text)
            missing -= new_words
        else:
            remaining.append(text)
    n_more = max(0, n_clean_train - len(clean_train))
    clean_train += remaining[:n_more]
    return SentencePartition(test, train, babble, clean_valid, clean_train)
