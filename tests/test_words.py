"""The lexical helpers give exactly what the hand-written versions they replaced gave."""

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.retrieve import lexical_tokens, word_tokens
from assistant.words import alike, edits, trigrams

# short words over a few letters (so edits, swaps and repeats are common), some not ASCII
_WORDS = st.text(alphabet="abcdeé\u00fcß\U0001f600", max_size=10)


def _edits_by_hand(a: str, b: str, limit: int) -> int:
    """The dynamic programme ``edits`` was: optimal string alignment, stopping past ``limit``
    only when the lengths already differ by more."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _lexical_tokens_by_hand(text: str) -> list[str]:
    """The retriever's tokens as they were built: each word, then its own trigrams."""
    tokens: list[str] = []
    for word in word_tokens(text):
        padded = f"^{word}$"
        tokens.append(word)
        tokens.extend(f"#{padded[i : i + 3]}" for i in range(len(padded) - 2))
    return tokens


@settings(max_examples=3000, deadline=None)
@given(_WORDS, _WORDS, st.integers(min_value=0, max_value=4))
def test_edits_is_the_optimal_string_alignment_distance(a, b, limit):
    assert edits(a, b, limit) == _edits_by_hand(a, b, limit)


def test_edits_counts_a_swap_once_but_never_edits_a_swapped_pair_again():
    assert edits("dose", "does", 1) == 1
    assert edits("ca", "abc", 3) == 3  # Damerau-Levenshtein proper would say 2
    assert edits("scarz", "scars", 2) == 1
    assert edits("a", "abcd", 2) == 3  # the lengths differ by more than the limit
    assert edits("", "", 0) == 0
    assert alike("icepcik", "icepick") and not alike("cost", "most")


def test_trigrams_are_the_padded_words_three_letter_windows_in_order():
    assert trigrams("scar") == ["^sc", "sca", "car", "ar$"]
    assert trigrams("a") == ["^a$"]
    assert trigrams("") == []
    assert trigrams("aaaa") == ["^aa", "aaa", "aaa", "aa$"]  # one per position


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abcdeé ,.?!-'ABC1", max_size=40))
def test_lexical_tokens_are_each_word_then_its_trigrams(text):
    assert lexical_tokens(text) == _lexical_tokens_by_hand(text)


def test_lexical_tokens_of_a_question():
    assert lexical_tokens("Icepick scarz?") == _lexical_tokens_by_hand("Icepick scarz?")
    assert lexical_tokens("Icepick scarz?")[:2] == ["icepick", "#^ic"]
