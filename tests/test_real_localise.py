"""Translations with the real things: the real MiniLM judges back-translations, and the
real default model answers a Spanish question with the guide's English sentences, each
followed by its checked translation (``scarguide eval languages`` measures the rest)."""

from __future__ import annotations

import pytest

from assistant.localise import SentenceTranslator, answer_texts

pytestmark = pytest.mark.real

SENTENCE = ("Subcision is used to treat depressed acne scars and help improve the "
            "appearance of atrophic and fibrotic scars.")
SPANISH = ("La subcisión se usa para tratar las cicatrices de acné deprimidas y ayudar a "
           "mejorar el aspecto de las cicatrices atróficas y fibróticas.")


def test_minilm_passes_a_faithful_back_translation_and_fails_a_different_sentence(
        real_embeddings):
    t = SentenceTranslator(real_embeddings)
    faithful = t.check(SENTENCE, SPANISH, "Subcision is used to treat depressed acne scars "
                       "and to improve the look of atrophic and fibrotic scars.", "es")
    assert faithful.passed, faithful
    # the translation of another sentence of the same section: the meaning differs
    other = t.check(SENTENCE, SPANISH, "Subcision uses a small needle to release scar "
                    "tissue under the skin.", "es")
    assert not other.passed and other.similarity < t.threshold, other


def test_a_spanish_question_gets_the_guides_sentences_each_with_its_checked_translation(
        real_assistant):
    record = real_assistant.ask("¿qué es la subcisión?")
    assert record.status == "answered" and record.language == "es", record.answer
    assert any(c.section.endswith("Subcision") for c in record.citations)
    for c in record.citations:  # the English sentences, cited, as for an English question
        assert f"{c.quote} [{c.n}]" in record.answer
    assert [t.n for t in record.translations] == [c.n for c in record.citations]
    assert record.translation_label == answer_texts("es").render("label")
    for t in record.translations:
        if t.passed:
            assert t.shown == t.text and not t.problems
            assert t.similarity is not None and t.similarity >= 0.85
        else:
            assert t.shown == answer_texts("es").render("unchecked") and t.problems
