"""The patients' chat (Gradio Blocks), a thin adapter over the FrontDesk.

- The first screen says what the guide covers and offers questions drawn from its
  headings (one click asks one); the question box and Send are on it, also on a phone.
- A question shows in the chat at once. One sent while an answer is still coming is not
  lost: it shows in the chat "in line" and is answered next, in the order sent (a few at
  most wait; past that the box keeps the text and says why).
- While an answer is on its way its bubble says so ("Looking in the guide…", "You are
  number N in line…"), with no copy, thumbs or sources: they come with the answer. The
  guide's sentences show as they pass verification, then the whole answer with its
  ``[n]`` markers, and a collapsed "Sources" panel lists every footnote's section and
  exact quote. Each marker and each source links to its passage on the guide page
  (``/guide#…``, in a new tab, so the conversation stays as it is).
- ``not_in_guide`` answers say "Not covered in the guide" once, in the answer; under it,
  the guide's topics nearest to the question (one click asks about one) and a booking
  button. ``urgent`` answers raise a banner above everything with what to do now.
- "Book a consultation" opens the booking form, pre-filled with the conversation's
  summary. Each field's problem shows under it (announced, the focus on the first); a
  booked request closes the form and leaves its confirmation and reference in view,
  also after the chat ends; booking is not offered again in that conversation.
- "End chat" ends the conversation (after an answer still coming), closes the booking
  form and clears details typed there and not sent; the chat then says it has ended and
  offers "New conversation"; the next question starts one.
- Each browser tab has its own conversation; its id lives in the tab's
  ``sessionStorage``, so a reload of the same tab shows the same conversation.

The page is built from: ``page`` (its layout), ``chat_events``, ``conversation_events``,
``booking_events`` and ``events`` (its handlers), ``messages`` (what the chat shows),
``booking_form`` (the form's errors), ``tab`` (a tab's line of questions), ``scripts``
(the page's JavaScript) and ``theme`` (its theme and ``static/patient.css``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import gradio as gr

from assistant.config import Settings
from assistant.corpus import Chunk, build_chunks
from assistant.errors import CorpusError
from assistant.frontdesk import FrontDesk
from assistant.web.booking_events import BookingEvents
from assistant.web.booking_form import REACH, field_errors
from assistant.web.chat_events import ChatEvents
from assistant.web.conversation_events import ConversationEvents
from assistant.web.events import FeedbackEvents
from assistant.web.guide import GUIDE_PATH, Guide
from assistant.web.messages import (
    ENDING,
    LOOKING,
    MAX_WAITING,
    NEARBY,
    NOT_COVERED,
    TOO_MANY,
    WAITING,
    answer_markdown,
    answer_messages,
    is_pending,
    nearby_for,
)
from assistant.web.page import lay_out
from assistant.web.render import plain
from assistant.web.scripts import (
    BOOKING_FOCUS_JS,
    FOCUS_QUESTION_JS,
    NEW_CONVERSATION_JS,
    NUMBER_JS,
    READ_SESSION_JS,
    SAVE_SESSION_JS,
    SEND_JS,
    SHOW_BOOKING_JS,
    SHOW_ENDED_JS,
)
from assistant.web.tab import Tab
from assistant.web.theme import CSS, THEME

# the page's public face: what the server mounts, and what tests read of the chat
__all__ = [
    "CSS", "ENDING", "LOOKING", "MAX_WAITING", "NEARBY", "NOT_COVERED", "REACH", "THEME",
    "TOO_MANY", "WAITING", "Tab", "answer_markdown", "answer_messages", "build_ui",
    "field_errors", "is_pending", "nearby_for",
]

log = logging.getLogger("scarguide.ui")


def build_ui(desk: Callable[[], FrontDesk], settings: Settings,
             chunks: list[Chunk] | None = None) -> gr.Blocks:
    """The patients' page. ``chunks``: the guide as indexed (default: read from
    ``settings.corpus_dir``, as ``Services.chunks`` does)."""
    if chunks is None:
        try:
            chunks = build_chunks(settings.corpus_dir, settings.chunk_max_words)
        except CorpusError as exc:  # the chat says so when asked; the page still loads
            log.error("the guide cannot be read: %s", exc)
            chunks = []
    guide = Guide(chunks)
    guide_title = guide.title() or "All about acne scars"
    notice = (
        f"General information from the guide *{plain(guide_title)}*, with a source for every "
        "sentence. It is not a diagnosis or medical advice. "
        f"In an emergency, call {plain(settings.emergency_number)}."
    )
    covers = (
        f"**What the guide covers:** {plain(guide.covers_line())}. "
        f"[Read the whole guide]({GUIDE_PATH} \"Opens the guide in a new tab\")"
    ) if guide.chunks else ""
    starters = guide.starter_questions()
    # a handler called without Gradio (a test) has no tab state: this one stands in
    local = Tab()

    with gr.Blocks(title="Acne scar guide — ask a question", analytics_enabled=False) as demo:
        p = lay_out(notice, covers, starters)
        handlers = (p, desk, settings, guide, local)
        chat_events = ChatEvents(*handlers)
        conversation = ConversationEvents(*handlers)
        booking = BookingEvents(*handlers)
        feedback = FeedbackEvents(*handlers)

        # respond is each trigger's only listener with a function: the page runs a trigger's
        # listeners one after the other, each to its end, so a listener before it would
        # delay its reading of the box
        for trigger in (p.message.submit, p.send.click):
            trigger(
                chat_events.respond,
                [p.message, p.chat, p.session_box, p.turn_of, p.tab_state, p.asked_number],
                p.chat_outputs,
                js=SEND_JS,
                concurrency_limit=None,
                trigger_mode="multiple",
                show_progress="hidden",
            ).then(None, [p.session_box, p.ended_session], None, js=SAVE_SESSION_JS)
        for button in (*p.starter_buttons, *p.nearby):
            button.click(
                chat_events.ask_suggestion,
                [button, p.chat, p.session_box, p.turn_of, p.tab_state, p.asked_number],
                p.chat_outputs,
                js=NUMBER_JS,
                concurrency_limit=None,
                trigger_mode="multiple",
                show_progress="hidden",
            ).then(None, [p.session_box, p.ended_session], None, js=SAVE_SESSION_JS)

        p.chat.change(None, [p.chat], [p.ended_row, p.book, p.nearby_book],
                      js=NEW_CONVERSATION_JS, show_progress="hidden")

        for opener in (p.book, p.nearby_book):
            opener.click(
                booking.open_booking, [p.session_box, p.ended_session],
                [p.booking, p.concern, p.booking_result],
            ).then(None, None, None, js=SHOW_BOOKING_JS)

        p.end.click(
            conversation.end_chat, [p.session_box, p.chat, p.turn_of, p.tab_state],
            p.end_outputs, show_progress="hidden",
        ).then(None, [p.session_box, p.ended_session], None, js=SAVE_SESSION_JS).then(
            None, None, None, js=SHOW_ENDED_JS)

        p.new_chat.click(conversation.start_new, [p.tab_state], p.end_outputs,
                         show_progress="hidden").then(
            None, [p.session_box, p.ended_session], None, js=SAVE_SESSION_JS).then(
            None, None, None, js=FOCUS_QUESTION_JS)

        p.submit.click(
            booking.submit_for,
            [p.session_box, p.ended_session, p.concern, p.name, p.email, p.phone, p.times,
             p.consent, p.tab_state],
            [p.booking_result],
        ).then(
            booking.booking_shown, [p.booking_result, p.tab_state],
            [p.booking, p.booking_result, p.booking_done, p.book, p.nearby_book, p.form_focus,
             *p.form_inputs.values(), *p.form_errors.values()],
            show_progress="hidden",
        ).then(None, [p.form_focus], None, js=BOOKING_FOCUS_JS)

        p.chat.like(feedback.rate, [p.turn_of], [p.feedback_id, p.comment_row])
        p.comment_send.click(feedback.send_comment, [p.feedback_id, p.comment],
                             [p.comment, p.comment_row])

        demo.load(conversation.restore, [p.session_box, p.tab_state, p.ended_session],
                  p.restore_outputs, js=READ_SESSION_JS)

    demo.queue(default_concurrency_limit=None, max_size=64)
    return demo
