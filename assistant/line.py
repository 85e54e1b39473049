"""The bounded line in front of the chat model.

The in-process model writes one answer at a time. Questions that need it take a place in
this line: at most ``slots`` are served at once, at most ``capacity`` wait, in order. A
newcomer beyond that is turned away at once with ``BusyError`` (a clear "busy, try again
in N seconds", never a silent drop or a 500); a waiting one can ask for its place.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from assistant.errors import BusyError


class Ticket:
    __slots__ = ()


class Line:
    def __init__(self, slots: int = 1, capacity: int = 20, seconds_per_answer: float = 4.0):
        self.slots = slots
        self.capacity = capacity
        self.seconds_per_answer = seconds_per_answer
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self.serving = 0
        self.served = 0
        self.turned_away = 0

    def join(self) -> Ticket:
        with self._cond:
            free = max(0, self.slots - self.serving)
            if len(self._waiting) >= self.capacity + free:
                self.turned_away += 1
                waiting = len(self._waiting)
                retry = int(self.seconds_per_answer * (waiting + self.serving) / self.slots) + 1
                raise BusyError(waiting, retry)
            ticket = Ticket()
            self._waiting.append(ticket)
            return ticket

    def position(self, ticket: Ticket) -> int:
        """0 when the ticket may be served now, else its 1-based place among the waiting."""
        with self._cond:
            index = self._waiting.index(ticket)
            free = max(0, self.slots - self.serving)
            return 0 if index < free else index - free + 1

    def wait(self, ticket: Ticket, timeout: float) -> int:
        """Wait up to ``timeout`` s for the place to change; return the new place."""
        with self._cond:
            if self.position(ticket):
                self._cond.wait(timeout)
            return self.position(ticket)

    def start(self, ticket: Ticket) -> None:
        with self._cond:
            self._waiting.remove(ticket)
            self.serving += 1

    def leave(self, ticket: Ticket | None = None) -> None:
        """Done being served (no ticket), or gave up waiting (its ticket)."""
        with self._cond:
            if ticket is not None:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
            else:
                self.serving -= 1
                self.served += 1
            self._cond.notify_all()

    @contextmanager
    def turn(self, timeout: float) -> Iterator[None]:
        """Wait (blocking) up to ``timeout`` s for a turn, then hold it for the block's
        duration; BusyError when the wait runs out."""
        ticket = self.join()
        deadline = time.monotonic() + timeout
        try:
            while place := self.wait(ticket, min(1.0, max(0.01, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    with self._cond:
                        self.turned_away += 1
                        retry = int(self.seconds_per_answer * (place + self.serving)
                                    / self.slots) + 1
                    raise BusyError(place, retry)
            self.start(ticket)
        except BaseException:
            self.leave(ticket)
            raise
        try:
            yield
        finally:
            self.leave()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"serving": self.serving, "waiting": len(self._waiting),
                    "capacity": self.capacity, "served": self.served,
                    "turned_away": self.turned_away}
