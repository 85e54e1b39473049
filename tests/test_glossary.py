"""The glossary is the guide's own: every term found in the real guide's chunks, each
defined by a sentence that stands in its chunk word for word; an answer carries the
terms it shows; the page links each to its definition, the API returns them."""

from __future__ import annotations

import re

import pytest

from assistant.config import PACKAGE_ROOT
from assistant.corpus import Chunk, build_chunks, split_sentences
from assistant.glossary import Glossary, long_form
from assistant.records import AnswerRecord, Citation, GlossaryEntry
from assistant.web.guide import Guide
from assistant.web.render import GUIDE_HREF, link_terms, plain
from assistant.web.ui import answer_messages
from tests.test_answer import SUBCISION_CHOICE
from tests.test_api import make_client


@pytest.fixture(scope="module")
def chunks() -> list[Chunk]:
    return build_chunks(PACKAGE_ROOT / "corpus", 220)


@pytest.fixture(scope="module")
def glossary(chunks) -> Glossary:
    return Glossary.from_chunks(chunks)


def test_the_guides_terms_and_abbreviations_are_found(glossary):
    for name in ("PIH", "PIE", "TCA", "PRP", "CROSS", "Subcision", "Boxcar scars",
                 "Post-inflammatory hyperpigmentation", "post-inflammatory erythema",
                 "trichloroacetic acid", "platelet-rich plasma", "Keloids", "Microneedling"):
        assert glossary.get(name) is not None, name
    assert glossary.get("PIH") is glossary.get("post-inflammatory hyperpigmentation")
    assert "refers to dark brown spots" in glossary.get("PIH").definition  # the defining one
    assert "trichloroacetic acid (TCA)" in glossary.get("TCA").definition


def test_every_definition_is_the_guides_own_sentence_in_its_chunk(glossary, chunks):
    by_id = {c.chunk_id: c for c in chunks}
    assert len(glossary) >= 15
    for entry in glossary.entries:
        chunk = by_id[entry.chunk_id]
        sentences = [" ".join(s.split()) for p in chunk.text.split("\n\n")
                     for s in split_sentences(p)]
        for sentence in split_sentences(entry.definition):
            assert " ".join(sentence.split()) in sentences, (entry.term, sentence)
        assert entry.section == chunk.section


def test_no_term_the_guide_does_not_define(glossary):
    """The guide names collagen and sebum but defines neither; "the final result" is a
    phrase, and acne scars are the guide's subject: none is a term."""
    for name in ("collagen", "sebum", "final result", "acne scars", "it", "They"):
        assert glossary.get(name) is None, name


def test_a_long_form_is_found_by_its_letters():
    assert long_form("TCA", "high concentrations of trichloroacetic acid".split()) == \
        "trichloroacetic acid"
    assert long_form("PIH", "called post-inflammatory hyperpigmentation".split()) == \
        "post-inflammatory hyperpigmentation"
    assert long_form("XYZ", "nothing like it here".split()) is None


def test_an_answer_names_the_terms_it_shows_not_those_it_defines(glossary):
    shown = ["Subcision is a type of treatment that uses a small surgical instrument (needle "
             "or cannula) to break up and release scar tissue under your skin.",
             "Boxcar scars respond to TCA and to post-inflammatory erythema creams."]
    terms = [e.term for e in glossary.terms_in(" ".join(shown), shown[:1])]
    assert "Subcision" not in terms  # its defining sentence is already shown
    assert terms == ["Boxcar scars", "TCA", "Post-inflammatory erythema"]
    assert glossary.terms_in("scarring is common", []) == []


def test_the_page_links_each_term_once_to_its_definition(glossary, chunks):
    guide = Guide(chunks)
    tca = glossary.get("TCA")
    record = AnswerRecord(
        status="answered", session_id="s", turn=1, question="q",
        answer="Peels with TCA help; TCA is strong [1]",
        citations=[Citation(n=1, chunk_id=tca.chunk_id, section=tca.section, quote="x")],
        glossary=[GlossaryEntry(term=tca.term, definition=tca.definition,
                                chunk_id=tca.chunk_id, section=tca.section,
                                also=list(tca.also))])
    answer, sources = answer_messages(record, guide)
    links = re.findall(r"\[TCA\]\((\S+) \"TCA, as the guide defines it: ([^\"]+)\"\)",
                       answer["content"])
    assert len(links) == 1, answer["content"]  # the first mention only
    assert GUIDE_HREF.fullmatch(links[0][0]) and "trichloroacetic acid" in links[0][1]
    assert "Terms, as the guide defines them" in sources["content"]
    assert plain(tca.definition)[:40] in sources["content"]
    # a link that is not the guide's is never made
    assert link_terms("TCA", [(("TCA",), "https://example.org", "t")]) == "TCA"


def test_the_api_returns_the_glossary_of_an_answer(tmp_path):
    question = "what is the difference between acne marks and scars?"
    with make_client(tmp_path, SUBCISION_CHOICE) as client:
        body = client.post("/api/chat", json={"message": question}).json()
    terms = [entry["term"] for entry in body["glossary"]]
    assert "Post-inflammatory hyperpigmentation" in terms, (body["answer"], terms)
    assert "Acne marks" not in terms  # the answer shows the sentence that defines it
    shown = {c["quote"] for c in body["citations"]}
    for entry in body["glossary"]:
        assert entry["definition"] not in shown
        assert set(entry) >= {"term", "definition", "chunk_id", "section", "also"}
