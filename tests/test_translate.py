"""A question in another language is read in English: with the fake backend, the model's
translation is what retrieval and the choice read; the patient's words stay the question
of the record, and the answer is the guide's own sentences. The real model's reading is
measured by ``scarguide eval answers --cases eval/languages*.jsonl``."""

from __future__ import annotations

from assistant.translate import QuestionTranslator, mostly_english
from tests.test_answer import SUBCISION_CHOICE
from tests.test_api import make_client


def test_english_words_are_read_as_they_are():
    assert mostly_english("what are rolling scars?")
    assert mostly_english("what is PRP therapy for acne scars?")
    assert not mostly_english("¿qué es la subcisión y para qué sirve?")
    assert not mostly_english("什么是皮下分离术？")
    assert not mostly_english("was ist eine Narbe nach der Akne")
    # short words of other languages are in an English word list too: they do not count
    assert not mostly_english("que es la PIE? y se quita sola con el tiempo o no?")
    assert mostly_english("pih vs pie?") and mostly_english("does it hurt?")


def test_an_unusable_translation_is_not_used():
    t = QuestionTranslator()
    assert t.read("Translation: what is subcision?\n(extra)", "¿qué es la subcisión?") == \
        "what is subcision?"
    assert t.read("", "¿qué es la subcisión?") is None
    assert t.read("¿qué es la subcisión?", "¿qué es la subcisión?") is None  # not English
    assert t.read("what " * 80, "¿qué?") is None  # far longer than the question
    # a word left in the question's own script: not an English question
    assert t.read("Does staying up late熬夜 make acne scars worse?",
                  "经常熬夜会让痘疤变严重吗？") is None
    assert t.read("Is café au lait skin a scar?", "¿la piel café con leche es una cicatriz?")


def test_a_spanish_question_is_answered_from_its_english_reading(tmp_path):
    with make_client(tmp_path, "what is subcision?", SUBCISION_CHOICE, rate_limit="") as client:
        body = client.post("/api/chat", json={"message": "¿qué es la subcisión?"}).json()
        runtime = client.app.state.runtime
        [record] = runtime.desk().history(body["session_id"])
    assert body["status"] == "answered", body
    assert any("Subcision" in c["section"] for c in body["citations"]), body["citations"]
    assert record.question == "¿qué es la subcisión?"
    assert record.question_english == "what is subcision?"
    assert record.retrieved and "subcision" in record.retrieved[0].chunk_id


def test_english_only_reads_every_question_as_written(tmp_path):
    with make_client(tmp_path, SUBCISION_CHOICE, rate_limit="", languages=["en"]) as client:
        body = client.post("/api/chat", json={"message": "¿qué es la subcisión?"}).json()
        [record] = client.app.state.runtime.desk().history(body["session_id"])
    assert record.question_english is None
