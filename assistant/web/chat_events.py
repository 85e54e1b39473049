"""A question on the patients' page, from the box or one click on a suggestion: shown at
once, in line behind an answer still coming (in the order the page sent them), then
answered as the answer comes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import gradio as gr

from assistant.errors import InputError, ScarguideError, SessionError
from assistant.safety import clean_message
from assistant.web.events import PageEvents, client_of
from assistant.web.messages import (
    ENDING,
    IN_LINE,
    LOOKING,
    MAX_WAITING,
    NEARBY,
    TOO_MANY,
    answer_messages,
    pending_html,
    urgent_markdown,
)
from assistant.web.render import plain
from assistant.web.tab import ORDER_WAIT_S, Tab

log = logging.getLogger("scarguide.ui")


class ChatEvents(PageEvents):
    """The questions of one tab and their answers."""

    def answer_one(self, text: str, history: list, sid: str, turns: dict, request,
                   tab: Tab) -> Iterator[list]:
        """One question, shown at once, then its answer as it comes. Yields the chat,
        session id, turns, urgent banner, input error, first screen, nearby row and
        its buttons."""
        hidden = self.hidden
        history = [*history, {"role": "user", "content": plain(text)}]
        answer_at = len(history)
        asking = [hidden, *self.offer(None)]  # the first screen and the last offer go

        def bubble(*parts: str) -> list[dict[str, Any]]:
            return [*history, {"role": "assistant", "content": "".join(parts)}]

        yield [bubble(pending_html(LOOKING)), sid, turns, hidden, hidden, *asking]
        try:
            self.desk().allow(client_of(request))
            try:
                events = self.desk().stream(text, sid or None)
            except SessionError:  # an ended or expired conversation: a new one starts
                sid = ""
                events = self.desk().stream(text, None)
        except ScarguideError as exc:  # not answered: the question stays in the chat
            if not isinstance(exc, InputError):
                log.error("chat unavailable: %s", type(exc).__name__)
            history.append({"role": "assistant",
                            "content": f"**Not answered.** {plain(exc.patient_message)}"})
            yield [history, sid, turns, hidden, hidden, *asking]
            return
        urgent_first = ""  # triage unsure: help first, then the answer
        shown: list[str] = []
        banner = hidden
        try:
            for event in events:
                if event.kind == "notice":
                    urgent_first = f"**Urgent.** {plain(event.text)}\n\n"
                    banner = gr.update(value=f"## Get help now\n\n{plain(event.text)}",
                                       visible=True)
                    yield [bubble(urgent_first, pending_html(LOOKING)), sid, turns,
                           banner, hidden, *asking]
                elif event.kind == "queued":
                    waiting = pending_html(IN_LINE.format(n=plain(event.text)))
                    yield [bubble(urgent_first, waiting), sid, turns, banner, hidden,
                           *asking]
                elif event.kind == "translation":  # shown with the record, next
                    continue
                elif event.record is None:  # a verified sentence
                    shown.append(plain(event.text))
                    yield [bubble(urgent_first, " ".join(shown), " ",
                                  pending_html("…", live=False)),
                           sid, turns, banner, hidden, *asking]
                else:
                    record = event.record
                    with tab.lock:
                        booked = tab.booked
                    history = history + answer_messages(record, self.guide, booked)
                    turns = {**turns, answer_at: [record.session_id, record.turn]}
                    yield [
                        history, record.session_id, turns,
                        gr.update(value=urgent_markdown(record), visible=True)
                        if record.status == "urgent" or record.notice else hidden,
                        hidden, hidden, *self.offer(record),
                    ]
        except ScarguideError as exc:
            log.error("answer failed: %s", type(exc).__name__)
            history.append({"role": "assistant",
                            "content": f"**Not answered.** {plain(exc.patient_message)}"})
            yield [history, sid, turns, hidden, hidden, *asking]
        finally:  # a patient who pressed stop or left gives the place in line back
            events.close()

    def ask(self, text: str, history: list, sid: str, turns: dict, request, tab: Tab | None,
            from_box: bool, number: float | None = None) -> Iterator[tuple]:
        """A question joins this tab's line. The event that finds nobody answering
        answers every question in line, in order; any other shows its question in
        line and is done. Outputs: chat, question box, session id, turns, urgent
        banner, input error, first screen, nearby row, its buttons."""
        hidden, keep = self.hidden, self.keep
        tab = self.tab_of(tab)
        rest = [keep] * (NEARBY + 2)  # first screen, nearby row and buttons
        # the page took the question out of the box as it sent it (SEND_JS): the
        # answer never writes to it, so what the patient types meanwhile stays
        box = keep

        def refused(why: str) -> tuple:  # the text goes back in the box, the reason under it
            back = text if from_box and (text or "").strip() else keep
            return (keep, back, keep, keep, keep, gr.update(value=why, visible=True),
                    *rest)

        number = int(number) if number else None  # the page numbers what it sends
        try:  # what cannot be asked stays in the box, with the reason
            clean_message(text or "", self.settings.max_message_chars)
            refusal = None
        except InputError as exc:
            refusal = exc.patient_message
        with tab.lock:
            if number is not None:
                tab.arrived.add(number)
                tab.changed.notify_all()
            if refusal:
                pass
            elif tab.ending:
                refusal = ENDING
            elif len(tab.waiting) >= MAX_WAITING:
                refusal = TOO_MANY
            else:
                tab.add(number, text)
                answering = not tab.answering
                if answering:
                    tab.answering = True
                    if tab.chat is None:  # first in this tab: the chat as the page shows it
                        tab.chat = list(history or [])
                        tab.turns = dict(turns or {})
                        tab.sid = (sid or "").strip()
                    tab.shown = list(tab.chat)
                view = tab.view()
        if refusal:
            yield refused(refusal)
            return
        if not answering:  # in line: shown at once, answered by the event answering
            yield (self.shown_chat(view), box, keep, keep, keep, hidden, hidden, *rest[1:])
            return
        try:
            while True:
                with tab.lock:
                    question = tab.next_question(ORDER_WAIT_S)
                    if question is None:
                        tab.answering = False
                        return
                    if tab.ended:  # a new conversation, on a clear screen
                        tab.chat, tab.turns, tab.sid = [], {}, ""
                        tab.ended, tab.booked = False, None
                    chat_now, sid_now = list(tab.chat or []), tab.sid or ""
                    turns_now = dict(tab.turns or {})
                outputs, first = None, True
                for outputs in self.answer_one(question, chat_now, sid_now, turns_now,
                                               request, tab):
                    with tab.lock:
                        tab.shown = outputs[0]
                        view = tab.view()
                    yield (self.shown_chat(view) if first else view, box, *outputs[1:])
                    first = False
                if outputs is not None:
                    with tab.lock:
                        tab.chat, tab.sid, tab.turns = outputs[0], outputs[1], outputs[2]
        finally:
            with tab.lock:
                tab.answering = False

    def respond(self, text: str, history: list, sid: str, turns: dict, request: gr.Request,
                tab: Tab | None = None, number: float | None = None) -> Iterator[tuple]:
        """A question typed in the box (the page takes it out of the box as it sends it).
        ``number``: the page's count of the questions it has sent (NUMBER_JS)."""
        yield from self.ask(text, history, sid, turns, request, tab, True, number)

    def ask_suggestion(self, question: str, history: list, sid: str, turns: dict,
                       request: gr.Request, tab: Tab | None = None,
                       number: float | None = None) -> Iterator[tuple]:
        """A suggested question, asked by one click; what is typed in the box stays."""
        yield from self.ask(question, history, sid, turns, request, tab, False, number)
