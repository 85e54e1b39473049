"""The patients' page without a browser, over the fake and quote model backends: nothing
a patient types is lost (a question sent while an answer is coming waits in line, shown,
and is answered next, in order), an answer's bubble says what is happening until the
answer has come, the booking form's problems show field by field, and ending the chat
keeps a booking's reference and does not offer booking again."""

from __future__ import annotations

import threading

import gradio as gr
import pytest

from assistant.web.render import plain
from assistant.web.ui import (
    ENDING,
    LOOKING,
    MAX_WAITING,
    REACH,
    TOO_MANY,
    WAITING,
    Tab,
    build_ui,
    field_errors,
    is_pending,
)
from tests.test_answer import SUBCISION_CHOICE
from tests.test_api import make_client


def handlers(client):
    runtime = client.app.state.runtime
    demo = build_ui(runtime.desk, runtime.services.settings)
    fns = {f.name: f.fn for f in demo.fns.values() if getattr(f, "name", None)}
    blocks = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    return demo, fns, blocks


def value(update):
    return update.get("value") if isinstance(update, dict) else update


def visible(update):
    return update.get("visible") if isinstance(update, dict) else None


def messages(chat):
    return value(chat)


def users(chat):
    return [m["content"] for m in messages(chat) if m["role"] == "user"]


def bots(chat):
    return [m for m in messages(chat) if m["role"] == "assistant"]


def answer_of(chat):
    """The bubble under the last question (its text, not its sources)."""
    shown = messages(chat)
    last = max(i for i, m in enumerate(shown) if m["role"] == "user")
    return shown[last + 1]["content"]


def by_id(outputs: dict, blocks: dict) -> dict:
    """A handler's dict of updates, keyed by the components' elem_id."""
    ids = {id(b): elem for elem, b in blocks.items()}
    return {ids.get(id(k), k): v for k, v in outputs.items()}


@pytest.fixture
def answers(tmp_path):
    """Every question is answered (the fake model picks the first candidate)."""
    with make_client(tmp_path, *[SUBCISION_CHOICE] * 6, rate_limit="") as client:
        yield client


def test_a_question_sent_while_an_answer_is_coming_waits_in_line_and_is_answered_next(answers):
    _, fns, _ = handlers(answers)
    tab = Tab()
    first = fns["respond"]("what is subcision?", [], "", {}, None, tab)
    shown = next(first)
    # shown at once as the patient's message, the bubble says what is happening
    assert users(shown[0]) == ["what is subcision?"]
    [bubble] = bots(shown[0])
    assert LOOKING in bubble["content"] and is_pending(bubble)
    # the page took the question out of the box as it sent it: the answer never writes
    # to the box, so what is typed meanwhile stays
    assert shown[1] == gr.update()
    assert visible(shown[0]) is True

    # a second question while the first is on its way: in the chat at once, in line
    [queued] = list(fns["respond"]("what are boxcar scars?", shown[0], "", {}, None, tab))
    assert queued[1] == gr.update()
    assert users(queued[0]) == ["what is subcision?", "what are boxcar scars?"]
    assert WAITING in bots(queued[0])[-1]["content"]
    assert all(is_pending(m) for m in bots(queued[0]))  # no answer yet, no controls

    rest = list(first)
    # the first event answers both, in order
    assert all(out[1] == gr.update() for out in rest)
    final = rest[-1]
    chat, sid, turns = final[0], final[2], final[3]
    assert users(chat) == ["what is subcision?", "what are boxcar scars?"]
    assert not any(is_pending(m) for m in chat)
    assert [m["content"] for m in chat].count("what are boxcar scars?") == 1
    # each answer came in full, with its sources, and can be rated
    answers_at = [i for i, m in enumerate(chat) if m["role"] == "assistant"
                  and "metadata" not in m]
    assert len(answers_at) == 2 and sorted(turns) == answers_at
    assert {s for s, _ in turns.values()} == {sid}  # one conversation
    assert [t for _, t in turns.values()] == [1, 2]
    assert sum(1 for m in chat if (m.get("metadata") or {}).get("title", "").startswith(
        "Sources")) == 2
    # while the second was answered, the first answer was already whole above it
    second_started = next(out for out in rest if len(users(out[0])) == 2
                          and LOOKING in bots(out[0])[-1]["content"])
    assert not any(is_pending(m) for m in messages(second_started[0])[:-1])


def test_questions_are_answered_in_the_order_the_page_sent_them(answers):
    """The page numbers each question; a later one that reaches the server first waits
    (a moment) for the earlier one, which is answered first."""
    _, fns, _ = handlers(answers)
    tab = Tab()
    outputs: list = []
    second = threading.Thread(target=lambda: outputs.extend(
        fns["respond"]("what are boxcar scars?", [], "", {}, None, tab, 2)))
    second.start()
    try:
        for _ in range(200):
            with tab.lock:
                if tab.answering:
                    break
            threading.Event().wait(0.01)
        [queued] = list(fns["respond"]("what is subcision?", [], "", {}, None, tab, 1))
        assert users(queued[0]) == ["what is subcision?", "what are boxcar scars?"]
    finally:
        second.join(60)
    final = outputs[-1][0]
    assert users(final) == ["what is subcision?", "what are boxcar scars?"]
    assert "subcision" in answer_of(final[:3]).lower()


def test_the_line_of_one_tab_is_bounded_and_says_so(answers):
    _, fns, _ = handlers(answers)
    tab = Tab()
    first = fns["respond"]("what is subcision?", [], "", {}, None, tab)
    next(first)
    for i in range(MAX_WAITING):
        list(fns["respond"](f"what are boxcar scars? {i}", [], "", {}, None, tab))
    [refused] = list(fns["respond"]("what are rolling scars?", [], "", {}, None, tab))
    assert refused[1] == "what are rolling scars?"  # the text goes back in the box
    assert visible(refused[5]) is True and value(refused[5]) == TOO_MANY
    first.close()


def test_what_cannot_be_asked_stays_in_the_box_with_the_reason(answers):
    _, fns, _ = handlers(answers)
    [out] = list(fns["respond"]("   ", [], "", {}, None, Tab()))
    assert out[0] == gr.update() and out[1] == gr.update()  # nothing shown, nothing lost
    [out] = list(fns["ask_suggestion"]("x" * 5000, [], "", {}, None, Tab()))
    assert out[1] == gr.update() and visible(out[5]) is True  # a suggestion: box untouched
    assert visible(out[5]) is True and value(out[5])


def test_a_queued_question_is_shown_escaped():
    tab = Tab()
    tab.add(None, '<img src=x onerror="alert(1)"> hi')
    view = tab.view()
    assert view[0]["content"] == plain('<img src=x onerror="alert(1)"> hi')
    assert "<img" not in view[0]["content"]


def test_a_patient_waiting_for_the_model_is_told_the_place_in_line(tmp_path):
    # one answer at a time, each takes a while: a second patient waits behind the first
    with make_client(tmp_path, llm_backend="quote", fake_delay_s=1.5, answer_slots=1,
                     rate_limit="") as client:
        _, fns, _ = handlers(client)
        other = threading.Thread(
            target=lambda: list(fns["respond"]("what is subcision?", [], "", {}, None, Tab())))
        other.start()
        try:
            line = client.app.state.runtime.desk().line
            for _ in range(500):  # until the other patient's answer holds the slot
                if line.serving:
                    break
                threading.Event().wait(0.01)
            assert line.serving == 1
            outputs = list(fns["respond"]("what are boxcar scars?", [], "", {}, None, Tab()))
        finally:
            other.join(30)
    contents = [answer_of(out[0]) for out in outputs]
    assert LOOKING in contents[0]
    waiting = [c for c in contents if "in line" in c]
    assert waiting and "you are number 1 in line" in waiting[0], contents
    assert all("sg-pending" in c for c in contents[:-1])
    assert "sg-pending" not in contents[-1] and "[\\[1\\]]" in contents[-1]


def test_sentences_show_as_they_come_and_the_controls_come_with_the_answer(answers):
    _, fns, _ = handlers(answers)
    outputs = list(fns["respond"]("what is subcision?", [], "", {}, None, Tab()))
    steps = [bots(out[0]) for out in outputs]
    partial = [s for s in steps if s and "\\[1\\]" in s[-1]["content"] and is_pending(s[-1])]
    assert partial, "no sentence was shown before the whole answer"
    assert all(len(s) == 1 for s in steps[:-1])  # no sources until the answer is whole
    assert not is_pending(steps[-1][0])
    assert steps[-1][1]["metadata"]["title"].startswith("Sources")


# -- the booking form -------------------------------------------------------------------

EMPTY = dict(session_id=None, name="", email=None, phone=None, preferred_times="",
             concern="", consent=False)


def test_every_problem_of_the_form_shows_under_its_field_at_once():
    errors = field_errors(EMPTY)
    assert list(errors) == ["name", "email", "preferred_times", "consent"]
    assert errors["email"] == REACH  # the whole form's check, reached with stand-ins
    assert errors["name"] == "Please enter your name."
    errors = field_errors({**EMPTY, "name": "  ", "email": "not-an-email", "phone": "call me",
                           "preferred_times": "mornings", "consent": True})
    assert set(errors) == {"name", "email", "phone"}
    assert "name@example.org" in errors["email"] and "digits" in errors["phone"]
    assert field_errors({**EMPTY, "name": "Sam", "phone": "+44 20 7946 0000",
                         "preferred_times": "any", "consent": True}) == {}
    long = field_errors({**EMPTY, "name": "A\nB", "email": "a@example.org",
                         "preferred_times": "x" * 600, "concern": "y" * 5000, "consent": True})
    assert long["name"].startswith("Your name must be one line")
    assert "500 characters" in long["preferred_times"] and "4000" in long["concern"]


def test_a_refused_booking_marks_each_field_and_sends_the_focus_to_the_first(answers):
    _, fns, blocks = handlers(answers)
    tab = Tab()
    result = fns["submit_for"]("", "", "", "", "", "", "", False, None, tab)
    assert result.startswith("Please check the form")
    assert "email address or a phone number" in result  # the summary names every problem
    shown = by_id(fns["booking_shown"](result, tab), blocks)
    for field in ("b-name", "b-email", "b-times", "b-consent"):
        error = shown[f"{field}-error"]
        assert visible(error) is True and 'role="alert"' in value(error), field
    assert visible(shown["b-phone-error"]) is False and visible(shown["b-concern-error"]) is False
    assert shown["form-focus"] == "b-name"
    assert "booking" not in shown  # the form stays open with what was typed

    # only the email is wrong: the focus goes there, the other errors go
    result = fns["submit_for"]("", "", "", "Sam", "sam@", "", "mornings", True, None, tab)
    shown = by_id(fns["booking_shown"](result, tab), blocks)
    assert shown["form-focus"] == "b-email"
    assert visible(shown["b-name-error"]) is False and visible(shown["b-email-error"]) is True


def test_the_form_marks_what_is_required(answers):
    _, _, blocks = handlers(answers)
    assert "(required)" in blocks["b-name"].label
    assert "required" in blocks["b-times"].label and "required" in blocks["b-consent"].label
    assert "required, or give a phone number" in blocks["b-email"].label
    assert "email" not in blocks["b-phone"].label.lower()  # "Email" finds one field
    assert "(required)" not in blocks["b-concern"].label


def book_then_end(fns, blocks, tab, sid):
    result = fns["submit_for"](sid, "", "scars", "Sam", "sam@example.org", "", "mornings",
                               True, None, tab)
    booked = by_id(fns["booking_shown"](result, tab), blocks)
    ended = list(fns["end_chat"](sid, tab.chat, tab.turns, tab))
    return result, booked, by_id(ended[-1], blocks)


def test_after_booking_then_ending_the_reference_stays_and_booking_is_not_offered(answers):
    _, fns, blocks = handlers(answers)
    tab = Tab()
    final = list(fns["respond"]("what is subcision?", [], "", {}, None, tab))[-1]
    sid = final[2]
    result, booked, ended = book_then_end(fns, blocks, tab, sid)
    reference = tab.booked
    assert reference and reference in result and "booking-ref" in result
    # booked: the form closes, emptied; the confirmation shows outside it; focus to it
    assert visible(booked["booking"]) is False and booked["b-name"] == ""
    assert visible(booked["booking-done"]) is True and reference in value(booked["booking-done"])
    assert booked["form-focus"] == "booking-done"
    assert visible(booked["book-btn"]) is False and visible(booked["nearby-book"]) is False

    # ending: the confirmation is not touched (it stays), booking is not offered again
    assert "booking-done" not in ended
    assert visible(ended["book-btn"]) is False and visible(ended["nearby-book"]) is False
    closing = bots(ended["chat"])[-1]["content"]
    assert reference in closing and "book a consultation" not in closing.lower()
    assert visible(ended["ended-row"]) is True and "ended" in value(ended["ended"])
    assert ended["session-id"] == "" and ended["ended-session"] == sid


def test_a_reload_shows_the_ended_conversation_with_its_booking(answers):
    """The tab keeps the id of the conversation it ended (SAVE_SESSION_JS): a reload
    shows that conversation, the ended note and the booking's confirmation again, and
    does not offer booking; the next question starts a new conversation."""
    _, fns, blocks = handlers(answers)
    tab = Tab()
    final = list(fns["respond"]("what is subcision?", [], "", {}, None, tab))[-1]
    sid = final[2]
    book_then_end(fns, blocks, tab, sid)
    reference = tab.booked

    again = Tab()  # the reloaded page: a new tab state, the ids from the tab's storage
    shown = by_id(fns["restore"]("", again, sid), blocks)
    assert users(shown["chat"]) == ["what is subcision?"]
    assert reference in bots(shown["chat"])[-1]["content"]
    assert visible(shown["ended-row"]) is True and "booking request" in shown["ended"]
    assert visible(shown["booking-done"]) is True
    assert reference in value(shown["booking-done"])
    assert visible(shown["book-btn"]) is False and visible(shown["nearby-book"]) is False
    assert shown["session-id"] == "" and shown["ended-session"] == sid
    assert again.ended and again.sid == "" and again.booked == reference

    # a conversation that is not ended is not shown as ended from a stale id
    fresh = list(fns["respond"]("what is subcision?", [], "", {}, None, Tab()))[-1][2]
    stale = by_id(fns["restore"]("", Tab(), fresh), blocks)
    assert value(stale["chat"]) == [] and visible(stale["ended-row"]) is False
    # a conversation going on, booked: its confirmation again, no second offer
    ongoing = Tab()
    fns["submit_for"](fresh, "", "scars", "Sam", "sam@example.org", "", "mornings", True,
                      None, ongoing)
    back = by_id(fns["restore"](fresh, Tab(), ""), blocks)
    assert back["session-id"] == fresh and visible(back["ended-row"]) is False
    assert visible(back["booking-done"]) is True and visible(back["book-btn"]) is False


def test_ending_closes_the_form_and_clears_details_not_sent(answers):
    _, fns, blocks = handlers(answers)
    tab = Tab()
    final = list(fns["respond"]("what is subcision?", [], "", {}, None, tab))[-1]
    ended = by_id(list(fns["end_chat"](final[2], final[0], final[3], tab))[-1], blocks)
    assert visible(ended["booking"]) is False
    for field in ("b-name", "b-email", "b-phone", "b-times", "b-concern"):
        assert ended[field] == "", field
    assert ended["b-consent"] is False
    # not booked: the closing message and the buttons offer the consultation
    assert "book a consultation" in bots(ended["chat"])[-1]["content"].lower()
    assert visible(ended["book-btn"]) is True
    opened, summary, _ = fns["open_booking"](ended["session-id"], ended["ended-session"])
    assert visible(opened) is True and summary.startswith("Asked about")


def test_after_ending_the_next_question_starts_a_new_conversation_on_a_clear_screen(answers):
    _, fns, blocks = handlers(answers)
    tab = Tab()
    final = list(fns["respond"]("what is subcision?", [], "", {}, None, tab))[-1]
    old_sid = final[2]
    _, _, ended = book_then_end(fns, blocks, tab, old_sid)
    final = list(fns["respond"]("what are boxcar scars?", ended["chat"], "", {}, None, tab))[-1]
    assert users(final[0]) == ["what are boxcar scars?"]
    assert final[2] and final[2] != old_sid
    assert tab.booked is None and tab.ended is False  # no booking in this one yet


def test_new_conversation_shows_the_first_screen_again(answers):
    _, fns, blocks = handlers(answers)
    tab = Tab()
    final = list(fns["respond"]("what is subcision?", [], "", {}, None, tab))[-1]
    list(fns["end_chat"](final[2], final[0], final[3], tab))
    fresh = by_id(fns["start_new"](tab), blocks)
    assert visible(fresh["intro"]) is True and visible(fresh["chat"]) is False
    assert value(fresh["chat"]) == [] and fresh["session-id"] == ""
    assert visible(fresh["ended-row"]) is False and visible(fresh["book-btn"]) is True
    assert tab.sid == "" and tab.chat == []


def test_end_chat_waits_for_the_answer_on_its_way(answers):
    _, fns, blocks = handlers(answers)
    tab = Tab()
    first = fns["respond"]("what is subcision?", [], "", {}, None, tab)
    next(first)
    ending = fns["end_chat"]("", [], {}, tab)
    told = by_id(next(ending), blocks)  # the answer is still coming: it says so
    assert "Ending the chat after the answer" in value(told["ended"])
    # meanwhile a new question is refused, kept in the box, with the reason
    [refused] = list(fns["respond"]("what are boxcar scars?", [], "", {}, None, tab))
    assert refused[1] == "what are boxcar scars?" and value(refused[5]) == ENDING
    answered = list(first)[-1][0]
    done = by_id(list(ending)[-1], blocks)
    chat = value(done["chat"])
    assert chat[: len(answered)] == answered  # the answer, then the closing message
    assert "Thank you for your questions" in chat[-1]["content"]
    assert tab.ended and not tab.answering and not tab.ending


def test_each_tab_gets_its_own_line():
    state = gr.State(Tab())
    import copy

    first, second = copy.deepcopy(state.value), copy.deepcopy(state.value)
    assert isinstance(first, Tab) and first is not second and first.lock is not second.lock
