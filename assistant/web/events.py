"""What the patients' page's events share: ``PageEvents`` holds the page, the desk and the
guide, and the updates several events make (the nearby topics, the chat shown, the booking
form cleared); ``FeedbackEvents`` takes the thumbs and comments on answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from assistant.config import Settings
from assistant.errors import ScarguideError
from assistant.frontdesk import Feedback, FrontDesk
from assistant.records import AnswerRecord
from assistant.safety import TextError, clean_lines
from assistant.web.guide import Guide
from assistant.web.messages import NEARBY, nearby_for
from assistant.web.page import Page
from assistant.web.tab import Tab


def client_of(request: gr.Request | None) -> str | None:
    """The address a Gradio request came from (None without one: a test's call)."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


class PageEvents:
    """The handlers of one patients' page. ``local``: the tab state of a handler called
    without Gradio (a test), which has none."""

    def __init__(self, page: Page, desk: Callable[[], FrontDesk], settings: Settings,
                 guide: Guide, local: Tab) -> None:
        self.page = page
        self.desk = desk
        self.settings = settings
        self.guide = guide
        self.local = local
        self.hidden = gr.update(visible=False)
        self.keep = gr.update()

    def tab_of(self, tab: Tab | None) -> Tab:
        return tab if isinstance(tab, Tab) else self.local

    def offer(self, record: AnswerRecord | None) -> list:
        """The nearby row and its buttons for the answer shown last."""
        if record is None or record.status != "not_in_guide":
            return [self.hidden, *([gr.update()] * NEARBY)]
        questions = nearby_for(record, self.guide)
        return [gr.update(visible=True)] + [
            gr.update(value=questions[i], visible=True) if i < len(questions) else self.hidden
            for i in range(NEARBY)
        ]

    def shown_chat(self, history: list) -> Any:
        return gr.update(value=history, visible=bool(history))

    def form_cleared(self) -> dict:
        """The booking form closed, with nothing typed left in it."""
        page = self.page
        return {page.booking: self.hidden, page.booking_result: "", page.concern: "",
                page.name: "", page.email: "", page.phone: "", page.times: "",
                page.consent: False,
                **{box: gr.update(value="", visible=False)
                   for box in page.form_errors.values()}}


class FeedbackEvents(PageEvents):
    """A thumbs up or down on an answer, and the comment that may follow it."""

    def rate(self, data: gr.LikeData, turns: dict):
        index = data.index if isinstance(data.index, int) else data.index[0]
        rated = (turns or {}).get(index) or (turns or {}).get(str(index))
        if data.liked not in (True, False) or not rated:
            return None, gr.update(visible=False)
        sid, turn = rated
        feedback = Feedback(session_id=sid, turn=turn, rating="up" if data.liked else "down")
        try:
            return self.desk().feedback(feedback), gr.update(visible=True)
        except ScarguideError:
            return None, gr.update(visible=False)

    def send_comment(self, fid, text):
        if fid is None or not (text or "").strip():
            return gr.update(), gr.update()
        try:  # the same contract as the API's feedback comment
            comment_text = clean_lines(text)[:2000]
        except TextError:
            gr.Warning("The comment holds a character that can't be kept; please retype it.")
            return gr.update(), gr.update()
        self.desk().store.comment_feedback(fid, comment_text)
        gr.Info("Thank you for your feedback.")
        return "", gr.update(visible=False)
