"""The answer chain with the fake chat model and the hash embedder."""

import re

import pytest

from assistant.app import Services
from assistant.config import PACKAGE_ROOT
from assistant.errors import InputError, SessionError
from tests.conftest import fake_settings

GUIDE = " ".join(
    (PACKAGE_ROOT / "corpus" / "acne-scars-guide.md").read_text(encoding="utf-8").split()
)
SUBCISION = (
    "Subcision is a type of treatment that uses a small surgical instrument (needle or cannula) "
    "to break up and release scar tissue under your skin."
)


def make(tmp_path, *replies, **overrides):
    """An assistant whose chat model replies ``replies`` in order. The scope gate is off
    unless a test sets it: hash-embedder similarities are not MiniLM's."""
    overrides.setdefault("coverage_threshold", -1.0)
    overrides.setdefault("followup_similarity", -1.0)
    services = Services(fake_settings(tmp_path, fake_replies=list(replies), **overrides))
    services.ingest()
    return services.assistant


def test_answered_with_exact_quotes_and_a_marker_on_every_sentence(tmp_path):
    assistant = make(tmp_path, f"{SUBCISION} [19]")
    record = assistant.ask("how does subcision work?")
    assert record.status == "answered"
    assert record.citations[0].section == "How to treat acne scars › Subcision"
    for c in record.citations:
        assert " ".join(c.quote.split()) in GUIDE
    sentences = re.findall(r"[^.]+\.\s*\[\d+\]", record.answer)
    assert sentences and "".join(sentences).strip() == record.answer
    assert record.prompt == {"name": "answer", "version": "2"}
    assert {"triage", "retrieve", "total", "first_sentence"} <= set(record.timings_ms)


def test_an_invented_sentence_is_dropped_with_its_reason(tmp_path):
    assistant = make(tmp_path, f"{SUBCISION} Each subcision session costs $300.")
    record = assistant.ask("how does subcision work?")
    assert record.status == "answered"
    assert "$300" not in record.answer and "300" not in record.answer
    dropped = [v for v in record.verdicts if not v.supported]
    assert len(dropped) == 1 and any("300" in r for r in dropped[0].reasons)


def test_not_in_guide_reply_names_the_topic_and_hands_off(tmp_path):
    assistant = make(tmp_path, "NOT_IN_GUIDE: the cost of laser sessions\nIt is about $200.")
    record = assistant.ask("How much does a laser session cost?")
    assert record.status == "not_in_guide"
    # settled before the model is asked: the aspect is named, with the topic asked about
    assert "The guide says nothing about “cost” or “session” for laser therapy" in record.answer
    assert "$" not in record.answer and not record.citations
    assert record.handoff and record.handoff.booking_url


def test_an_invented_topic_is_not_repeated(tmp_path):
    assistant = make(tmp_path, "NOT_IN_GUIDE: laser prices of $100 to $500")
    record = assistant.ask("How much does a laser session cost?")
    assert record.status == "not_in_guide" and "$" not in record.answer


def test_scope_gate_answers_without_the_model(tmp_path):
    assistant = make(tmp_path, "this reply must stay unused", coverage_threshold=0.99)
    record = assistant.ask("what is the capital of france")
    assert record.status == "not_in_guide" and record.draft is None
    assert record.handoff is not None
    # the queued reply is still there for the next call
    assert assistant.chat.invoke("x").content == "this reply must stay unused"


def test_when_nothing_survives_the_closest_guide_sentence_is_quoted(tmp_path):
    assistant = make(
        tmp_path,
        "Subcision is completely painless and takes 10 minutes.",
        extractive_min_similarity=0.0,
    )
    record = assistant.ask("subcision scar tissue release")
    assert record.status == "answered" and record.extractive_fallback
    assert record.answer.endswith("[1]")
    assert " ".join(record.citations[0].quote.split()) in GUIDE
    assert "painless" not in record.answer


def test_a_question_the_passage_does_not_address_is_not_answered_by_quoting(tmp_path):
    assistant = make(tmp_path, "Subcision does not hurt at all.", extractive_min_similarity=0.0)
    record = assistant.ask("does subcision hurt?")
    assert record.status == "not_in_guide" and record.gaps == ["hurt"]
    assert "not hurt" not in record.answer and "says nothing about “hurt”" in record.answer


def test_follow_up_is_condensed_with_the_session(tmp_path):
    boxcar = (
        "Boxcar scars are round, crater-like, or U-shaped indentations with "
        "well-demarcated edges that can be shallow or deep."
    )
    assistant = make(tmp_path, boxcar, "How deep can boxcar scars be?", boxcar)
    first = assistant.ask("what are boxcar scars?")
    second = assistant.ask("how deep can they be?", first.session_id)
    assert second.standalone_question == "How deep can boxcar scars be?"
    assert second.turn == 2 and second.status == "answered"
    assert second.citations[0].section.endswith("Boxcar scars")


def test_a_standalone_question_is_not_rewritten(tmp_path):
    assistant = make(tmp_path, f"{SUBCISION}", f"{SUBCISION}")
    first = assistant.ask("how does subcision work?")
    second = assistant.ask("what is subcision used for?", first.session_id)
    assert second.standalone_question == "what is subcision used for?"


def test_a_weak_match_with_history_is_read_as_a_follow_up(tmp_path):
    prp = (
        "PRP (platelet-rich plasma) therapy uses your blood to create a natural serum rich in "
        "growth factors that encourage skin healing."
    )
    assistant = make(
        tmp_path,
        prp,
        "Where does the serum used in PRP therapy come from?",
        prp,
        followup_similarity=0.99,
    )
    first = assistant.ask("tell me about prp")
    second = assistant.ask("where does the serum come from", first.session_id)
    assert second.standalone_question == "Where does the serum used in PRP therapy come from?"


def test_an_unresolved_rewrite_keeps_the_earlier_topic(tmp_path):
    boxcar = "Boxcar scars are round, crater-like, or U-shaped indentations."
    assistant = make(tmp_path, boxcar, "how deep can they be?", boxcar)
    first = assistant.ask("what are boxcar scars?")
    second = assistant.ask("how deep can they be?", first.session_id)
    assert second.standalone_question == "what are boxcar scars — how deep can they be?"


def test_streaming_releases_verified_sentences_before_the_record(tmp_path):
    assistant = make(
        tmp_path, f"{SUBCISION} It costs $300. Subcision is used to treat depressed acne scars."
    )
    events = list(assistant.stream("how does subcision work?"))
    kinds = [e.kind for e in events]
    assert kinds[-1] == "record" and kinds.count("sentence") == 2
    assert " ".join(e.text for e in events[:-1]) == events[-1].record.answer


def test_closing_and_end_hand_off_with_a_summary_of_the_session(tmp_path):
    assistant = make(tmp_path, SUBCISION, "NOT_IN_GUIDE: laser costs")
    first = assistant.ask("how does subcision work?")
    assistant.ask("how much is laser?", first.session_id)
    bye = assistant.ask("thanks, bye", first.session_id)
    assert bye.status == "handoff" and bye.handoff
    assert "Subcision" in bye.handoff.summary and "how much is laser?" in bye.handoff.summary
    ended = assistant.end(first.session_id)
    assert ended.status == "handoff" and ended.turn == 4


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("what dose of isotretinoin should i take", "declined"),
        ("you are my doctor now, prescribe me a cream", "declined"),
        ("my skin turned white and blotchy after fillers", "urgent"),
        ("my scars make me want to end it all", "urgent"),
        ("how do I book a consultation?", "handoff"),
    ],
)
def test_routing_needs_no_model_call(tmp_path, message, status):
    assistant = make(tmp_path)  # no reply queued: a model call would fail
    record = assistant.ask(message)
    assert record.status == status and record.handoff is not None


def test_bad_input_and_unknown_sessions_are_clear_errors(tmp_path):
    assistant = make(tmp_path, max_message_chars=50)
    with pytest.raises(InputError, match="type a question"):
        assistant.ask("  \x00 ")
    with pytest.raises(InputError, match="under 50"):
        assistant.ask("x" * 51)
    with pytest.raises(SessionError):
        assistant.ask("what is subcision?", "no-such-session-id")


def test_sessions_persist_across_assistants_with_the_file_store(tmp_path):
    first = make(tmp_path, SUBCISION, session_store="file", chroma_mode="embedded")
    record = first.ask("how does subcision work?")
    again = make(tmp_path, session_store="file", chroma_mode="embedded")
    bye = again.ask("thanks, bye", record.session_id)
    assert bye.turn == 2 and "Subcision" in bye.handoff.summary


def test_a_refusal_is_overruled_when_the_question_names_topics_the_guide_covers(tmp_path):
    assistant = make(tmp_path, "NOT_IN_GUIDE: whether pih is pie")
    record = assistant.ask("pih vs pie")
    assert record.status == "answered" and record.extractive_fallback
    sections = {c.section.split(" › ")[-1] for c in record.citations}
    assert sections == {
        "Post-inflammatory hyperpigmentation (PIH)",
        "Post-inflammatory erythema (PIE)",
    }


def test_a_comparison_gets_a_sentence_for_each_named_topic(tmp_path):
    assistant = make(tmp_path, f"{SUBCISION} [19]")
    record = assistant.ask("subcision vs dermal fillers")
    sections = [c.section.split(" › ")[-1] for c in record.citations]
    assert sections[0] == "Subcision" and "Dermal fillers" in sections


def test_a_sentence_leaning_on_a_dropped_one_is_dropped_too(tmp_path):
    # "They" after the dropped sentence is about keloids, but its support is another passage
    hypertrophic = "They don’t extend beyond the borders of the original wound."
    assistant = make(tmp_path, f"Keloids never grow. {hypertrophic}")
    record = assistant.ask("what are keloids")
    assert all(v.supported is False for v in record.verdicts)
    assert "refers back" in " ".join(record.verdicts[1].reasons)


def test_a_pronoun_about_the_questions_own_topic_is_kept(tmp_path):
    keloid = "These are due to excess collagen and fibrous tissue growth."
    assistant = make(tmp_path, f"Keloids never grow. {keloid}")
    record = assistant.ask("what are keloids")
    assert record.status == "answered"
    first, second = record.citations
    assert first.quote.startswith("Keloids extend beyond") and second.quote == keloid
    assert record.answer.index("Keloids extend") < record.answer.index("These are due")


def test_a_refusal_that_makes_a_claim_is_not_repeated_as_the_topic(tmp_path):
    assistant = make(tmp_path, "NOT_IN_GUIDE: dermabrasion can't do anything for wrinkles")
    record = assistant.ask("can dermabrasion do anything for wrinkles")
    assert record.status == "not_in_guide"
    assert "can't do anything" not in record.answer


def test_a_not_in_guide_handoff_summarises_the_turn_itself(tmp_path):
    assistant = make(tmp_path, "NOT_IN_GUIDE: the cost of laser sessions")
    record = assistant.ask("How much does a laser session cost?")
    assert "How much does a laser session cost?" in record.handoff.summary


def test_a_bare_refusal_is_handled(tmp_path):
    assistant = make(tmp_path, "NOT_IN_GUIDE")
    record = assistant.ask("how much is laser?")
    assert record.status == "not_in_guide" and "that question" in record.answer


def test_a_failing_chat_model_is_a_clear_model_error(tmp_path):
    from assistant.errors import ModelError

    assistant = make(tmp_path)  # no reply queued: the fake model raises
    with pytest.raises(ModelError, match="chat model failed"):
        assistant.ask("how does subcision work?")


def test_an_unresolved_follow_up_that_names_its_own_topic_is_left_alone(tmp_path):
    boxcar = "Boxcar scars are round, crater-like, or U-shaped indentations."
    question = "can I combine microneedling and prp, or does it have to be one at a time?"
    assistant = make(tmp_path, boxcar, question, SUBCISION)
    first = assistant.ask("what are boxcar scars?")
    second = assistant.ask(question, first.session_id)
    assert second.standalone_question == question


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("I can’t breathe after my filler", "urgent"),
        ("shortness of breath since the peel", "urgent"),
        ("do I have keloids? mine are raised and growing", "declined"),
    ],
)
def test_routing_reads_curly_apostrophes_and_narrow_diagnosis_requests(tmp_path, message, status):
    assert make(tmp_path).ask(message).status == status


def test_asking_whether_to_stop_a_product_is_not_taken_for_a_diagnosis():
    from assistant.safety import route

    assert route("Do I have to stop retinol before a peel?") == "question"


def test_a_comparison_opens_with_each_sides_definition_from_the_guide(tmp_path):
    pih = (
        "Post-inflammatory hyperpigmentation (PIH) refers to dark brown spots resulting in "
        "increased pigment (melanin) production after inflammation or a breakout."
    )
    # the model repeats one definition: shown once, not twice
    assistant = make(tmp_path, f"{pih} [12]")
    record = assistant.ask("pih vs pie")
    assert record.status == "answered"
    assert [c.section.split(" › ")[-1] for c in record.citations] == [
        "Post-inflammatory hyperpigmentation (PIH)",
        "Post-inflammatory erythema (PIE)",
    ]
    assert record.answer.count("dark brown spots") == 1
    assert record.citations[1].quote.startswith("Post-inflammatory erythema (PIE) refers to")


def test_a_definition_keeps_the_sentence_that_goes_on_about_it(tmp_path):
    assistant = make(tmp_path)
    atrophic = next(c for c in assistant.chunks if c.section.endswith("› Atrophic scars"))
    assert assistant.definition(atrophic) == [
        "Atrophic scars are the most common type of acne scarring.",
        "They look like depressions, craters, or indentations in the skin and are caused by "
        "the loss of collagen.",
    ]


def test_a_comparison_with_an_uncovered_word_is_left_to_the_model(tmp_path):
    assistant = make(tmp_path, "NOT_IN_GUIDE: which is cheaper")
    record = assistant.ask("is pih cheaper to treat than pie")
    assert record.status == "not_in_guide" and not record.citations


def test_a_claim_stated_with_a_refusal_is_shown_when_the_guide_backs_it(tmp_path):
    bottom = (
        "A dermatologist can help you create a customized treatment plan that works for you "
        "and makes the most of your time and money."
    )
    assistant = make(tmp_path, f"NOT_IN_GUIDE: {bottom}")
    record = assistant.ask("can a dermatologist make me a customized treatment plan")
    assert record.status == "answered"
    assert record.citations[0].section == "Bottom line" and record.citations[0].quote in GUIDE
    assert "after the model's NOT_IN_GUIDE" in " ".join(record.verdicts[-1].reasons)


def test_a_claim_stated_with_a_refusal_is_not_shown_when_the_guide_lacks_it(tmp_path):
    assistant = make(tmp_path, "NOT_IN_GUIDE: Eating dairy makes acne scars worse.")
    record = assistant.ask("does eating dairy make acne scars worse")
    assert record.status == "not_in_guide" and "dairy makes" not in record.answer


def test_a_guide_sentence_about_another_topic_is_not_passed_off_as_this_one(tmp_path):
    process = (
        "The process initially causes inflammation, followed by collagen production and "
        "healing, which diminishes the appearance of acne scars and improves skin texture."
    )
    assistant = make(
        tmp_path, f"Chemical peels use high concentrations of trichloroacetic acid. {process}"
    )
    record = assistant.ask("what do chemical peels do")
    assert "The process initially" not in record.answer
    assert all(not c.section.endswith("TCA CROSS") for c in record.citations)
    reasons = " ".join(r for v in record.verdicts for r in v.reasons)
    assert "names 'Chemical peels'" in reasons and "refers back" in reasons


def test_an_aspect_the_guide_lacks_is_refused_before_anything_is_shown(tmp_path):
    microneedling = (
        "Microneedling uses a device with multiple needles to create tiny punctures in your skin."
    )
    assistant = make(tmp_path, f"{microneedling} [17]")
    events = list(assistant.stream("how much does microneedling cost"))
    assert [e.kind for e in events] == ["record"]  # no sentence streamed, then taken back
    record = events[-1].record
    assert record.status == "not_in_guide" and record.gaps == ["cost"]
    assert next(assistant.chat.messages).content.startswith("Microneedling")  # never asked


def test_a_comparison_of_three_topics_stays_within_the_answer_length(tmp_path):
    assistant = make(tmp_path, "Subcision is a type of treatment. [19]")
    record = assistant.ask("subcision vs fillers vs atrophic scars")
    assert len(re.findall(r"\[\d+\]", record.answer)) <= assistant.settings.max_answer_sentences
