"""A conversation's life on the patients' page beyond its questions: a reload shows it
again (or the one the tab ended, with its booking), "End chat" ends it after the answer
on its way, "New conversation" clears the screen."""

from __future__ import annotations

import logging
import time
from typing import Any

import gradio as gr

from assistant.errors import ScarguideError, SessionError
from assistant.web.booking_form import confirmation_html
from assistant.web.events import PageEvents
from assistant.web.messages import BOOKED_ENDED, ENDED, NEARBY, answer_messages, pending_html
from assistant.web.render import plain
from assistant.web.tab import Tab

log = logging.getLogger("scarguide.ui")


class ConversationEvents(PageEvents):
    """Restoring, ending and starting a tab's conversation."""

    def restore(self, sid: str, tab: Tab | None = None, ended_sid: str = ""):
        """A reload of this tab: its conversation again, or the one it ended (the ended
        note, and a booking's confirmation, as they were before the reload)."""
        page = self.page
        tab = self.tab_of(tab)
        sid, ended_sid = (sid or "").strip(), (ended_sid or "").strip()
        empty = dict(zip(page.restore_outputs, [
            [], "", {}, gr.update(visible=True), *self.offer(None), "", self.hidden, gr.update(),
            self.hidden, gr.update(visible=True), gr.update()], strict=True))
        shown_sid = sid or ended_sid
        if not shown_sid:
            return empty
        try:
            records = self.desk().history(shown_sid)
            ended = self.desk().store.ended(shown_sid)
            booked = self.desk().store.booking_for_session(shown_sid)
        except (SessionError, ScarguideError):
            return empty
        if not sid and not ended:  # an ended id that is not ended: nothing to restore
            return empty
        reference = booked["reference"] if booked else None
        history: list[dict[str, Any]] = []
        turns: dict[int, list[Any]] = {}
        for record in records:
            if record.question != "[end of conversation]":
                history.append({"role": "user", "content": plain(record.question)})
            turns[len(history)] = [record.session_id, record.turn]
            history.extend(answer_messages(record, self.guide, reference))
        with tab.lock:
            if not tab.answering:
                tab.chat, tab.shown, tab.turns = history, history, turns
                tab.sid = "" if ended else sid
                tab.ended, tab.booked = ended, reference
        offer_booking = gr.update(visible=reference is None)
        return {
            **dict(zip(page.restore_outputs[:5 + NEARBY], [
                self.shown_chat(history), "" if ended else sid, turns,
                gr.update(visible=not history),
                *self.offer(records[-1] if records and not ended else None)], strict=True)),
            page.ended_session: shown_sid if ended else "",
            page.ended_row: gr.update(visible=ended),
            page.ended_note: f'<div role="status">{BOOKED_ENDED if reference else ENDED}</div>',
            page.booking_done: gr.update(value=confirmation_html(reference), visible=True)
            if reference else self.hidden,
            page.book: offer_booking, page.nearby_book: offer_booking,
        }

    def end_chat(self, sid: str, history: list, turns: dict, tab: Tab | None = None):
        """End the conversation (after the answer on its way, if any): its closing
        message, the ended note with "New conversation"; the booking form closes and
        what was typed there and not sent is cleared (a sent request's confirmation
        stays). Booking is offered again only if this conversation has none."""
        page = self.page
        tab = self.tab_of(tab)
        with tab.lock:
            tab.ending = True
        try:
            deadline = time.monotonic() + self.settings.queue_timeout_s + 120
            told = False
            while True:
                with tab.lock:
                    if not (tab.answering or tab.waiting) or time.monotonic() > deadline:
                        tab.answering = True  # hold the chat while it ends
                        chat_now = list(tab.chat if tab.chat is not None else history or [])
                        turns_now = dict(tab.turns if tab.turns is not None
                                         else turns or {})
                        sid_now = (tab.sid if tab.sid is not None else sid or "").strip()
                        ended, booked = tab.ended, tab.booked
                        break
                if not told:
                    told = True
                    yield {page.ended_row: gr.update(visible=True),
                           page.ended_note: pending_html("Ending the chat after the "
                                                         "answer on its way…")}
                time.sleep(0.2)
            record = None
            if sid_now and not ended:
                try:
                    record = self.desk().end(sid_now)
                except ScarguideError as exc:
                    log.error("end failed: %s", type(exc).__name__)
            if record is not None:
                turns_now[len(chat_now)] = [record.session_id, record.turn]
                chat_now = chat_now + answer_messages(record, self.guide, booked)
            with tab.lock:
                tab.chat = tab.shown = chat_now
                tab.turns = turns_now
                tab.sid = ""
                tab.ended = True
            if not chat_now:  # nothing to end: the first screen as it was
                yield {**self.reset(tab), **self.form_cleared()}
                return
            offer_booking = gr.update(visible=not booked)
            yield {
                **self.form_cleared(),
                page.chat: self.shown_chat(chat_now), page.turn_of: turns_now,
                page.session_box: "", page.ended_session: sid_now or self.keep,
                page.nearby_row: self.hidden, page.input_error: self.hidden,
                page.ended_row: gr.update(visible=True),
                page.ended_note: f'<div role="status">{BOOKED_ENDED if booked else ENDED}</div>',
                page.book: offer_booking, page.nearby_book: offer_booking,
            }
        finally:
            with tab.lock:
                tab.ending = False
                tab.answering = False

    def reset(self, tab: Tab) -> dict:
        page = self.page
        with tab.lock:
            tab.chat, tab.shown, tab.turns, tab.sid = [], [], {}, ""
            tab.ended, tab.booked = False, None
        hidden = self.hidden
        return {page.chat: gr.update(value=[], visible=False), page.turn_of: {},
                page.session_box: "", page.ended_session: "", page.intro: gr.update(visible=True),
                page.ended_row: hidden, page.urgent: hidden, page.nearby_row: hidden,
                page.input_error: hidden, page.book: gr.update(visible=True),
                page.nearby_book: gr.update(visible=True)}

    def start_new(self, tab: Tab | None = None):
        """"New conversation": a clear screen, the first screen's suggestions again."""
        page = self.page
        tab = self.tab_of(tab)
        with tab.lock:
            if tab.answering or tab.waiting:  # a question already started one
                return {page.ended_row: self.hidden}
        return {**self.reset(tab), **self.form_cleared()}
