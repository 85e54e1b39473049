"""The patients' page without a browser: answers link to the guide, a "not covered"
answer says so once and offers the guide's nearest topics and a booking button, and the
first screen offers questions from the guide's headings."""

from __future__ import annotations

import re

import gradio as gr
import pytest

from assistant.records import AnswerRecord, Citation, Handoff
from assistant.web.guide import Guide, anchor
from assistant.web.render import GUIDE_HREF, plain
from assistant.web.ui import NEARBY, NOT_COVERED, answer_messages, build_ui, nearby_for
from tests.test_answer import SUBCISION_CHOICE
from tests.test_api import make_client

NONE_TEXT = ("The guide doesn't cover that, so I can't answer it from the guide. "
             "A dermatologist can answer it at a consultation.")
HANDOFF = Handoff(message="A dermatologist can look at your skin and answer your questions in "
                  "person. You can book a consultation with the clinic.",
                  summary="", booking_url="/book")


def handlers(client):
    runtime = client.app.state.runtime
    demo = build_ui(runtime.desk, runtime.services.settings)
    return demo, {f.name: f.fn for f in demo.fns.values() if getattr(f, "name", None)}


def last(generator):
    outputs = list(generator)
    return outputs[-1], outputs


def value(update):
    return update.get("value") if isinstance(update, dict) else update


def visible(update):
    return update.get("visible") if isinstance(update, dict) else None


def test_a_not_covered_answer_says_so_once_without_the_repeated_handoff():
    record = AnswerRecord(status="not_in_guide", coverage="none", answer=NONE_TEXT,
                          handoff=HANDOFF, session_id="s" * 12, turn=1, question="pizza?")
    [message] = answer_messages(record)
    assert message["content"].count("Not covered in the guide") == 1
    assert message["content"].count("dermatologist") == 1  # the offer, once
    assert "look at your skin" not in message["content"]  # the booking button says it
    answered = record.model_copy(update={"status": "answered", "coverage": "full"})
    assert "look at your skin" in answer_messages(answered)[0]["content"]  # kept elsewhere


def test_markers_and_sources_link_to_their_passages(tmp_path):
    with make_client(tmp_path, SUBCISION_CHOICE) as client:
        record = AnswerRecord.model_validate(
            client.post("/api/chat", json={"message": "what is subcision?"}).json()
            | {"question": "what is subcision?"})
        chunks = client.app.state.runtime.services.chunks
    guide = Guide(chunks)
    answer, sources = answer_messages(record, guide)
    assert record.citations
    for c in record.citations:
        link = re.search(rf"\[\\\[{c.n}\\\]\]\((\S+) \"Source {c.n}: ", answer["content"])
        assert link, answer["content"]
        assert GUIDE_HREF.fullmatch(link.group(1))
        assert link.group(1).startswith(f"/guide#{anchor(c.chunk_id)}:~:text=")
        assert f"(/guide#{anchor(c.chunk_id)}" in sources["content"]
    assert "“" in sources["content"]  # the exact quote is still shown


def test_nearby_questions_come_from_the_retrieved_sections(tmp_path):
    with make_client(tmp_path) as client:
        chunks = client.app.state.runtime.services.chunks
    guide = Guide(chunks)
    laser = next(c for c in chunks if c.section.endswith("Laser therapy"))
    peels = next(c for c in chunks if c.section.endswith("Chemical peels"))
    record = AnswerRecord(
        status="not_in_guide", coverage="partial", answer="x", session_id="s" * 12, turn=1,
        question="How much does a laser session cost?",
        citations=[Citation(n=1, chunk_id=laser.chunk_id, section=laser.section, quote="q")],
        retrieved=[{"chunk_id": laser.chunk_id}, {"chunk_id": peels.chunk_id}],
    )
    questions = nearby_for(record, guide)
    assert questions[0] == "What does the guide say about chemical peels?"
    assert 2 <= len(questions) <= NEARBY
    assert not any("laser" in q.lower() for q in questions)  # already in the answer


@pytest.fixture
def gap_client(tmp_path):
    # nothing is covered: every question gets the "not covered" answer
    with make_client(tmp_path, coverage_threshold=0.99, rate_limit="") as client:
        yield client


def test_the_first_screen_offers_questions_and_hides_the_empty_chat(gap_client):
    demo, _ = handlers(gap_client)
    blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert "not-covered" not in blocks  # the banner that repeated the notice is gone
    assert blocks["chat"].visible is False and blocks["intro"].visible is not False
    guide = Guide(gap_client.app.state.runtime.services.chunks)
    buttons = [b.value for b in demo.blocks.values()
               if "suggestion" in (getattr(b, "elem_classes", None) or []) and b.value]
    assert buttons == guide.starter_questions() and 3 <= len(buttons) <= 5
    assert "What are acne scars?" in buttons
    covers = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "covers")
    assert "6 topics and 16 subtopics" in covers.value and "(/guide" in covers.value


def test_a_not_covered_answer_offers_nearby_topics_and_booking(gap_client):
    _, fns = handlers(gap_client)
    final, outputs = last(fns["respond"]("can you recommend a pizza place?", [], "", {}, None))
    (chat, box, sid, turns, urgent, error, intro, row, *buttons) = final
    assert len(buttons) == NEARBY and sid
    shown = [m["content"] for m in chat if m["role"] == "assistant"]
    assert len(shown) == 1 and shown[0].startswith(NOT_COVERED)
    assert "\n".join(shown).count("Not covered in the guide") == 1
    assert visible(row) is True and visible(intro) is False and visible(urgent) is False
    offered = [value(b) for b in buttons if visible(b)]
    assert 2 <= len(offered) <= NEARBY
    assert all(q.endswith("?") for q in offered)
    assert not any("pizza" in q for q in offered)  # the guide's headings, not the question
    # while the answer streams, the last offer is taken away
    assert visible(outputs[0][7]) is False

    # one click on a suggestion asks it; what is typed in the box is left alone
    final, _ = last(fns["ask_suggestion"](offered[0], chat, sid, turns, None))
    chat2, box2 = final[0], final[1]
    assert [m["content"] for m in chat2 if m["role"] == "user"] == [
        plain("can you recommend a pizza place?"), plain(offered[0])]
    assert box2 == gr.update()

    # a reload of the tab shows the offer again under the last answer
    restored = {getattr(k, "elem_id", None): v for k, v in fns["restore"](sid).items()}
    assert visible(restored["nearby"]) is True
    assert [value(restored[f"nearby-{i}"]) for i in range(NEARBY)
            if visible(restored[f"nearby-{i}"])]


def test_an_answered_question_offers_nothing_and_links_its_markers(tmp_path):
    with make_client(tmp_path, SUBCISION_CHOICE, rate_limit="") as client:
        _, fns = handlers(client)
        final, _ = last(fns["respond"]("what is subcision?", [], "", {}, None))
    chat, row = final[0], final[7]
    assert visible(row) is False
    answer = chat[1]["content"]
    assert re.search(r"\[\\\[1\\\]\]\(/guide#[A-Za-z0-9_-]+:~:text=", answer), answer
    assert chat[2]["metadata"]["title"].startswith("Sources")


def test_the_booking_buttons_open_the_form(gap_client):
    demo, fns = handlers(gap_client)
    openers = [d for d in demo.fns.values() if getattr(d, "name", None) == "open_booking"]
    ids = {t[0] for d in openers for t in d.targets}
    by_id = {b._id: getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"book-btn", "nearby-book"} <= {by_id.get(i) for i in ids}
    opened, _summary, _result = fns["open_booking"]("", "")
    assert visible(opened) is True
