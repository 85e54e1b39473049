"""One browser tab's chat as its events share it: the questions in line, in the order the
page sent them, and the conversation they continue."""

from __future__ import annotations

import threading
import time
from bisect import insort
from typing import Any

from assistant.web.messages import waiting_messages

UNNUMBERED = 10**12  # the line's place of a question the page did not number
ORDER_WAIT_S = 2.0  # how long a question in line waits for an earlier one still on its way


class Tab:
    """One browser tab's chat as its events share it (held in a ``gr.State``, one per
    tab): the questions waiting their turn, whether one of its events is answering them,
    what the chat shows, and the conversation it continues. Every field is read and
    written under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # a question arrived
        # sent, not yet being answered: (the page's number for it, the text), in the order
        # the page sent them (their requests may reach the server in another order)
        self.waiting: list[tuple[int, str]] = []
        self.arrived: set[int] = set()  # the page's numbers of every question that came
        self._unnumbered = 0
        self.answering = False  # one event of this tab answers the questions, in turn
        self.ending = False  # "End chat" waits for the answer on its way
        self.ended = False  # the next question starts a new conversation
        self.chat: list[dict[str, Any]] | None = None  # the chat once settled (None: unknown)
        self.shown: list[dict[str, Any]] = []  # what the answering event shows now
        self.sid: str | None = None  # the conversation the next question continues
        self.turns: dict | None = None
        self.booked: str | None = None  # the reference booked in this conversation
        self.form: dict[str, Any] = {}  # the last booking attempt's outcome

    def __deepcopy__(self, memo) -> Tab:  # gr.State copies its initial value per tab
        return Tab()

    def view(self) -> list[dict[str, Any]]:
        """The chat as shown now: what is settled or being answered, then the questions in
        line. Call under ``lock``, as for every method."""
        return [*self.shown, *waiting_messages(q for _, q in self.waiting)]

    def add(self, number: int | None, text: str) -> None:
        """A question joins the line in the page's order (one without a number, from a
        caller other than the page, goes after every numbered one)."""
        if number is None:
            self._unnumbered += 1
            number = UNNUMBERED + self._unnumbered
        insort(self.waiting, (number, text))

    def gap(self) -> bool:
        """Has the page sent a question before the first in line that has not come yet?"""
        if not self.waiting or self.waiting[0][0] >= UNNUMBERED:
            return False
        return any(n not in self.arrived for n in range(1, self.waiting[0][0]))

    def next_question(self, wait_s: float) -> str | None:
        """The first question in line (after up to ``wait_s`` s for an earlier one the
        page sent and the server has not seen yet), or None when the line is empty."""
        deadline = time.monotonic() + wait_s
        while self.gap() and (left := deadline - time.monotonic()) > 0:
            self.changed.wait(left)
        return self.waiting.pop(0)[1] if self.waiting else None
