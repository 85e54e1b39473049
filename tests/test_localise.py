"""The patient's language around the guide's English sentences: reviewed answer texts per
language, and each cited sentence's automatic translation, shown only when its check
passes. The real model's translations are measured by ``scarguide eval languages``."""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.config import PACKAGE_ROOT
from assistant.errors import ConfigError
from assistant.localise import (
    ANSWER_KEYS,
    SentenceTranslator,
    all_answer_texts,
    answer_texts,
    template_patterns,
)
from assistant.records import AnswerRecord, Citation, Translation
from assistant.web.ui import answer_markdown
from tests.test_answer import SUBCISION_CHOICE
from tests.test_api import make_client

PROMPTS = PACKAGE_ROOT / "prompts"
SENTENCE = ("Subcision is used to treat depressed acne scars and help improve the "
            "appearance of atrophic and fibrotic scars.")


def test_every_offered_language_has_every_answer_text_and_english_keeps_its_own():
    texts = all_answer_texts(PROMPTS)
    assert set(texts) == {"en", "es", "fr", "pt", "de", "it", "zh"}
    for language, t in texts.items():
        assert all(t.render(k, missing="x", topic="y") for k in ANSWER_KEYS), language
    assert answer_texts("en").render("none").startswith("The guide doesn't cover that")
    assert answer_texts("es").render("none").startswith("La guía no trata")
    assert answer_texts("xx").language == "en"  # a language with no texts: English
    # each language's refusal is one an answer may show (the verbatim check knows it)
    patterns = template_patterns(PROMPTS)
    for language, t in texts.items():
        assert any(p.match(t.render("none")) for p in patterns), language


def test_a_language_file_missing_an_answer_text_stops_the_program(tmp_path):
    shutil.copytree(PROMPTS, tmp_path / "prompts")
    path = tmp_path / "prompts" / "replies" / "es.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  offer:", "  offre:"),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="offer"):
        all_answer_texts(tmp_path / "prompts")


class _Embeddings:
    """Bag-of-words vectors: enough to tell a sentence from a different one."""

    def embed_documents(self, texts):
        words = sorted({w for t in texts for w in t.lower().split()})
        return [[t.lower().split().count(w) for w in words] for t in texts]


def test_the_check_passes_a_faithful_translation_and_fails_the_wrong_ones():
    t = SentenceTranslator(_Embeddings(), PROMPTS)
    spanish = ("La subcisión se usa para tratar las cicatrices de acné deprimidas y mejorar "
               "el aspecto de las cicatrices atróficas y fibróticas.")
    assert t.check(SENTENCE, spanish, SENTENCE, "es").passed
    # the back-translation says something else
    other = "Laser therapy uses beams of light to vaporize damaged skin cells."
    assert "back-translation" in " ".join(t.check(SENTENCE, spanish, other, "es").problems)
    # not translated at all
    assert not t.check(SENTENCE, SENTENCE, SENTENCE, "es").passed
    assert not t.check(SENTENCE, "Subcision is used", SENTENCE, "zh").passed
    # a number changed, a negation lost
    four = "Rolling scars are wide and shallow (4-5 mm) depressions in the skin."
    assert "numbers" in " ".join(t.check(four, "Las cicatrices (3-5 mm) son anchas.", four,
                                         "es").problems)
    assert t.check("Dos 1,5 mm", "Zwei 1,5 mm", "Two 1.5 mm", "de").similarity is not None
    negated = "Ice pick scars do not respond to fillers."
    lost = t.check(negated, "Las cicatrices responden a los rellenos.",
                   "Ice pick scars respond to fillers.", "es")
    assert "a negation was lost or added" in lost.problems
    # a word the language does not have, read back as what the model meant: not shown;
    # a medical term spelled like the English one is a cognate, not an invented word
    invented = t.check("Dermal fillers are injected to raise depressed acne scars.",
                       "Dermal-Fillerungen werden injiziert, um depressierte Akne-Scarren zu "
                       "erhöhen.", "Dermal fillers are injected to raise depressed acne scars.",
                       "de")
    assert not invented.passed and "Scarren" in " ".join(invented.problems)
    left = t.check("Acne scars are the result of healing after a breakout.",
                   "痤疮疤痕是皮肤在 breakout后愈合的结果。",
                   "Acne scars are the result of healing after a breakout.", "zh")
    assert not left.passed and "breakout" in " ".join(left.problems)
    assert t.check("PRP therapy uses your blood.", "PRP疗法使用您的血液。",
                   "PRP therapy uses your blood.", "zh").passed
    # no embeddings: nothing to compare, so nothing is shown
    assert not SentenceTranslator(None, PROMPTS).check(SENTENCE, spanish, SENTENCE, "es").passed


def test_a_translation_is_its_first_line_without_a_label():
    assert SentenceTranslator.line("Traducción: «Hola.»\n(nota)") == "Hola."
    assert SentenceTranslator.line("") == ""


def test_a_sentence_is_translated_once_per_language_and_kept_on_disk(tmp_path):
    calls = []
    replies = {"Spanish": "La subcisión trata las cicatrices deprimidas.",
               "English": "Subcision treats depressed scars."}

    def ask(text):
        calls.append(text)
        return replies["Spanish" if "into Spanish" in text else "English"]

    cache = tmp_path / "cache" / "translations.json"
    first = SentenceTranslator(_Embeddings(), PROMPTS, cache=cache)
    done = first.translate(ask, 1, "Subcision treats depressed scars.", "es")
    assert done.passed and len(calls) == 2
    again = SentenceTranslator(_Embeddings(), PROMPTS, cache=cache)  # a new process
    kept = again.translate(ask, 3, "Subcision treats depressed scars.", "es")
    assert len(calls) == 2 and kept.n == 3 and kept.text == done.text
    # what is kept is the guide's sentence and its translations, never a patient's words
    assert all(k.endswith("|Subcision treats depressed scars.")
               for k in json.loads(cache.read_text(encoding="utf-8")))
    again.translate(ask, 1, "Subcision treats depressed scars.", "fr")  # another language
    assert len(calls) == 4


def test_a_model_call_that_fails_shows_no_translation():
    def broken(_text):
        raise RuntimeError("the server went away")

    done = SentenceTranslator(_Embeddings(), PROMPTS).translate(broken, 1, SENTENCE, "es")
    assert not done.passed and done.problems == ["the model call failed"]


def test_a_spanish_question_gets_spanish_texts_and_a_failed_translation_is_not_shown(tmp_path):
    # the stand-in translator echoes the English: the check fails, the note is shown
    with make_client(tmp_path, "what is subcision?", SUBCISION_CHOICE, rate_limit="") as client:
        body = client.post("/api/chat", json={"message": "¿qué es la subcisión?"}).json()
    assert body["status"] == "answered" and body["language"] == "es", body
    assert body["translation_label"].startswith("Traducción automática")
    assert [t["n"] for t in body["translations"]] == [c["n"] for c in body["citations"]]
    for t in body["translations"]:
        assert not t["passed"] and "not in the patient's language" in t["problems"]
        assert t["shown"] == answer_texts("es").render("unchecked")


def test_the_stream_sends_each_translation_after_the_sentences(tmp_path):
    with make_client(tmp_path, "what is subcision?", SUBCISION_CHOICE, rate_limit="") as client:
        with client.stream("POST", "/api/chat/stream",
                           json={"message": "¿qué es la subcisión?"}) as response:
            kinds = [line.removeprefix("event: ") for line in response.iter_lines()
                     if line.startswith("event: ")]
    assert kinds[0] == "sentence" and kinds[-1] == "record" and "translation" in kinds
    assert kinds.index("translation") > max(i for i, k in enumerate(kinds) if k == "sentence")


def test_an_uncovered_question_is_refused_in_the_patients_language(tmp_path):
    with make_client(tmp_path, "what is the best moisturiser for oily skin?",
                     coverage_threshold=0.99, rate_limit="") as client:
        body = client.post("/api/chat",
                           json={"message": "¿cuál es la mejor crema hidratante?"}).json()
        end = client.post(f"/api/sessions/{body['session_id']}/end").json()
    assert body["status"] == "not_in_guide" and body["language"] == "es", body
    texts = answer_texts("es")
    assert body["answer"] == f"{texts.render('none')} {texts.render('offer')}"
    assert body["handoff"]["message"] == texts.render("handoff")
    assert end["handoff"]["message"] == texts.render("handoff")


@pytest.mark.parametrize("overrides", [{"languages": ["en"]}, {"translate_answers": False}])
def test_english_only_or_no_translations(tmp_path, overrides):
    with make_client(tmp_path, "what is subcision?", SUBCISION_CHOICE, rate_limit="",
                     **overrides) as client:
        body = client.post("/api/chat", json={"message": "¿qué es la subcisión?"}).json()
    assert body["translations"] == [] and body["translation_label"] is None
    assert body["language"] == ("en" if overrides.get("languages") else "es")


def test_the_page_shows_a_passed_translation_and_only_a_note_for_a_failed_one():
    note = answer_texts("es").render("unchecked")
    record = AnswerRecord(
        status="answered", session_id="s" * 12, turn=1, question="¿qué es?",
        answer=f"{SENTENCE} [1] Rolling scars are wide. [2]", language="es",
        citations=[Citation(n=1, chunk_id="a", section="A", quote=SENTENCE),
                   Citation(n=2, chunk_id="b", section="B", quote="Rolling scars are wide.")],
        translation_label=answer_texts("es").render("label"),
        translations=[
            Translation(n=1, language="es", text="La subcisión se usa.", passed=True,
                        shown="La subcisión se usa."),
            Translation(n=2, language="es", text="Cicatrices de rodillo son anchas.",
                        passed=False, shown=note, problems=["x"]),
        ],
    )
    shown = answer_markdown(record)
    assert "Traducción automática" in shown and "\\[1\\] La subcisión se usa." in shown
    assert "Cicatrices de rodillo" not in shown and f"\\[2\\] _{note}_" in shown
    assert shown.index(SENTENCE) < shown.index("La subcisión")  # the English comes first
    assert json.loads(record.model_dump_json())["translations"][1]["passed"] is False


def test_the_whole_guide_can_be_translated_ahead_and_is_kept(tmp_path):
    from assistant.corpus import guide_units

    with make_client(tmp_path, rate_limit="") as client:
        assistant = client.app.state.runtime.services.assistant
        seen = []
        done = assistant.translate_guide("fr", progress=lambda i, n: seen.append((i, n)))
    units = sum(len(guide_units(c.text)) for c in assistant.chunks)
    assert len(done) == units and seen[-1] == (units, units)
    # the stand-in model cannot translate: nothing passes, everything is kept
    assert not any(t.passed for t in done)
    [cache] = (tmp_path / "data" / "cache").glob("translations-*.json")
    kept = json.loads(cache.read_text(encoding="utf-8"))
    assert {k.rsplit("|", 1)[1] for k in kept if "|fr|" in k} == {
        u for c in assistant.chunks for u in guide_units(c.text)}
