"""General English sentences for the stand-in ASR: the example sentences of WordNet 3.0.

WordNet's glosses carry about 48,000 quoted usage examples ("the comedian drew a lot of laughter"):
short, everyday sentences written by lexicographers over the whole vocabulary of English, which is
what a stand-in for a read-speech recogniser should hear. They are read from the Debian package
``wordnet-base`` (``/usr/share/wordnet/data.{noun,verb,adj,adv}``; WordNet 3.0 licence, see NOTICE)
and normalised to what a TTS engine reads unambiguously and an ASR transcript holds: lower case,
letters, apostrophes and spaces only. Examples with digits or other symbols are dropped rather than
spelled out.

References
----------
C. Fellbaum (ed.), *WordNet: An Electronic Lexical Database*, MIT Press, 1998.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import numpy as np

WORDNET_DIR: Final[Path] = Path("/usr/share/wordnet")
WORDNET_PARTS: Final[tuple[str, ...]] = ("noun", "verb", "adj", "adv")
MIN_WORDS: Final[int] = 4
MAX_WORDS: Final[int] = 16
_EXAMPLE = re.compile(r'"([^"]+)"')
_ALLOWED = re.compile(r"^[a-z' .,;:!?\-]+$")


def normalise(example: str) -> str | None:
    """Lower-case words of a usage example, or None when it holds digits or other symbols.

    Examples
    --------
    >>> normalise("The comedian drew a lot of laughter!")
    'the comedian drew a lot of laughter'
    >>> normalise("it costs $5") is None
    True
    """
    text = example.strip().lower()
    if not _ALLOWED.match(text):
        return None
    words = [w.strip("'") for w in re.sub(r"[.,;:!?\-]", " ", text).split()]
    words = [w for w in words if w]
    return " ".join(words) if MIN_WORDS <= len(words) <= MAX_WORDS else None


def examples_from_lines(lines: Iterable[str]) -> set[str]:
    """Normalised usage examples of WordNet ``data.*`` lines (the part after ``|`` of each synset)."""
    found = set()
    for line in lines:
        if line.startswith("  ") or " | " not in line:  # licence header, or a synset without gloss
            continue
        for example in _EXAMPLE.findall(line.split(" | ", 1)[1]):
            sentence = normalise(example)
            if sentence is not None:
                found.add(sentence)
    return found


def wordnet_sentences(wordnet_dir: Path = WORDNET_DIR) -> list[str]:
    """All usable WordNet example sentences, sorted.

    Raises
    ------
    FileNotFoundError
        When the WordNet data files are missing (install the Debian package ``wordnet-base``).
    """
    sentences: set[str] = set()
    for part in WORDNET_PARTS:
        path = wordnet_dir / f"data.{part}"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: the stand-in's text source is WordNet 3.0; install it with "
                "`apt-get install wordnet-base` (or `make standin`, which does)"
            )
        with open(path, encoding="latin-1") as f:
            sentences |= examples_from_lines(f)
    return sorted(sentences)


def split_sentences(sentences: list[str], n_test: int, n_valid: int, seed: int) -> dict[str, list[str]]:
    """Shuffle with ``seed`` and cut into ``test`` (held out), ``valid`` and ``train`` sentences.

    Examples
    --------
    >>> parts = split_sentences([f"s{i}" for i in range(10)], n_test=2, n_valid=3, seed=0)
    >>> [len(parts[k]) for k in ("test", "valid", "train")]
    [2, 3, 5]
    """
    if n_test + n_valid >= len(sentences):
        raise ValueError(
            f"n_test + n_valid = {n_test + n_valid} leaves no training sentence of {len(sentences)}"
        )
    order = np.random.default_rng(seed).permutation(len(sentences))
    shuffled = [sentences[i] for i in order]
    return {
        "test": shuffled[:n_test],
        "valid": shuffled[n_test : n_test + n_valid],
        "train": shuffled[n_test + n_valid :],
    }
