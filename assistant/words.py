"""Words: the small lexical toolkit the retriever and the claim checker share.

Lower-casing, contractions, stop words, a light stemmer, the words an answer may add
without adding a claim, and typo-tolerant word matching.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from bm25s.stopwords import STOPWORDS_EN_PLUS
from rapidfuzz.distance import OSA

if TYPE_CHECKING:
    from spellchecker import SpellChecker

STOP = frozenset(STOPWORDS_EN_PLUS)


def stem(word: str) -> str:
    """A deliberately light stemmer: plural and a few verb endings."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


# Words a plain answer (or a patient's chat spelling) may use without adding a claim, and
# words that frame a comparison without asking about anything ("difference", "vs");
# contractions arrive cut ("what's" -> "what", "don't" -> "dont").
GENERIC = frozenset(
    """
    according acne actual actually also another anybody anyone anything apart are arent
    be because been being besides between called can cant cause caused causes common
    compare compared comparison did didnt differ difference differences do does doesnt
    dont due else even everybody everyone everything explain fix fixes form forms generally get
    gets got guide had happen happens has have hello help helping helps here hey hi how
    im is isnt it's its just kind kinds know known lead leads like look looks made make
    makes may mean means might nobody often ok okay one ones other others please pls r
    really refer refers result results says scar scarring scars skin so some somebody
    someone something sort stuff such tell than that their them then there these they
    thing things this those treat treated treating treatment treatments treats type
    types typically u ur use used uses using usually versus very vs want was wat wats
    way ways what whats when where which who why wont work working works you your yours
    """.split()
)


def words(text: str) -> list[str]:
    """Lower-case words; contractions keep their first part ("what's" -> "what")."""
    text = re.sub(r"'(s|re|ll|ve|d|m)\b", "", text.lower().replace("’", "'")).replace("n't", "nt")
    return re.findall(r"[a-z0-9]+", text)


def content_stems(text: str) -> set[str]:
    return {
        stem(w)
        for w in words(text)
        if w not in STOP and w not in GENERIC and not w.isdigit() and len(w) > 2
    }


def edits(a: str, b: str, limit: int) -> int:
    """Edits from ``a`` to ``b``, a swap of adjacent letters counting once (the optimal
    string alignment distance: a swapped pair is not edited again); ``limit + 1`` at once
    when the lengths alone differ by more than ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    return OSA.distance(a, b)


def alike(word: str, known: str) -> bool:
    """``word`` (as typed) is ``known`` or a misspelling of it. Words of five letters or more
    may be one edit away (two from eight letters); shorter ones only a swapped pair or a
    dropped letter ("dose" for "does", "pik" for "pick"), so "cost" never passes for "most"."""
    if word == known:
        return True
    if min(len(word), len(known)) < 3:
        return False
    if min(len(word), len(known)) >= 5:
        return edits(word, known, 2) <= (2 if min(len(word), len(known)) >= 8 else 1)
    if len(word) == len(known):  # a swapped pair of adjacent letters
        return sorted(word) == sorted(known) and edits(word, known, 1) == 1
    return len(known) == len(word) + 1 and any(
        known[:i] + known[i + 1 :] == word for i in range(len(known))
    )


def trigrams(word: str) -> list[str]:
    """The three-letter windows of ``^word$``, in order, one per position."""
    padded = f"^{word}$"
    return [padded[i : i + 3] for i in range(len(padded) - 2)]


PLAIN_WORDS = STOP | GENERIC  # a misspelling of these asks about nothing new


def uncovered_words(question: str, passage: str) -> set[str]:
    """Content words of the question that the passage lacks, even allowing for typos."""
    have = content_stems(passage) | PLAIN_WORDS
    return {w for w in content_stems(question) - have if not any(alike(w, h) for h in have)}


@lru_cache(maxsize=1)
def english_words() -> SpellChecker:
    """An English word list (pyspellchecker's; supports ``word in english_words()``)."""
    from spellchecker import SpellChecker

    return SpellChecker()


def unknown_names(text: str, context: str) -> set[str]:
    """Words of ``text`` that are neither English nor in ``context``: a product, a person
    or a term the context never names ("ZetaCream")."""
    english = english_words()
    known = context.lower()
    known_stems = content_stems(context)
    return {
        w
        for w in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", text)
        if w.lower() not in english
        and w.lower().strip("'-") not in known
        and stem(w.lower()) not in known_stems
    }
