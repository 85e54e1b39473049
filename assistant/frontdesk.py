"""What patients can do, in one place: chat, end a chat, book, rate an answer.

The REST API and the Gradio UI are thin adapters over one ``FrontDesk``; the
checks here (booking fields, known sessions and turns) hold for both. A ``FrontDesk`` is
the front door (``assistant.door``: each message cleaned, triaged and routed once, then
answered as one ``Turn``) with the desk around it: a conversation that ended or reached
its length takes no more messages, answers that need the model wait in its line, and each
answer leaves one log line.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Generator, Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, StrictBool, field_validator, model_validator

from assistant.answer import Assistant, Event
from assistant.door import Door
from assistant.errors import (
    BusyError,
    InputError,
    RateLimitedError,
    SessionEndedError,
    SessionError,
)
from assistant.line import Line
from assistant.logs import personal
from assistant.records import AnswerRecord
from assistant.safety import ONE_LINE, MultiLine, OneLine, route
from assistant.store import Store
from assistant.triage import TriageResult

log = logging.getLogger("scarguide.frontdesk")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,24}$")


class BookingRequest(BaseModel):
    """A patient's request to be contacted for a consultation.

    Name, email, phone and session id are one line: a control character or a line break
    is refused. Preferred times and concern keep their line breaks; other control
    characters are refused. No field takes a surrogate or a noncharacter."""

    session_id: OneLine | None = Field(None, description="The conversation the booking follows.")
    name: OneLine = Field(min_length=1, max_length=200)
    email: Annotated[EmailStr, ONE_LINE] | None = None
    phone: OneLine | None = Field(None, max_length=40)
    preferred_times: MultiLine = Field(min_length=1, max_length=500)
    concern: MultiLine = Field("", max_length=4000)
    consent: StrictBool = Field(
        description="The patient agrees to be contacted; must be true (JSON true)."
    )

    @field_validator("email", mode="before")
    @classmethod
    def _empty_email(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("consent")
    @classmethod
    def _consented(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("the patient must agree to be contacted (consent: true)")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _PHONE.match(value):
            raise ValueError("not a phone number (digits, spaces, + ( ) - . / only)")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> BookingRequest:
        if not self.email and not self.phone:
            raise ValueError("give an email address or a phone number so the clinic can reply")
        if not self.name.strip() or not self.preferred_times.strip():
            raise ValueError("name and preferred times must not be blank")
        return self


class Feedback(BaseModel):
    """A patient's rating of one answer; the comment keeps its line breaks."""

    session_id: OneLine
    turn: int = Field(ge=1, le=100_000)
    rating: Literal["up", "down"]
    comment: MultiLine | None = Field(None, max_length=2000)


def _logged(record: AnswerRecord) -> AnswerRecord:
    """One log line per answer: ids, status and timings, never the patient's words."""
    log.info(
        "turn",
        extra={
            "session_id": record.session_id,
            "turn": record.turn,
            "status": record.status,
            "citations": len(record.citations),
            "dropped": sum(not v.supported for v in record.verdicts),
            "triage": (record.triage or {}).get("layer"),
            "triage_check": (record.triage or {}).get("check"),
            "notice": record.notice is not None,
            "total_ms": record.timings_ms.get("total"),
        },
    )
    return record


class RateLimiter:
    """Requests per client, in the ``limits`` notation.

    ``storage``: ``memory`` (this process, a moving window), ``database`` (a fixed window
    counted in the database, so every worker sharing it shares the limit), or any
    ``limits`` storage URI (``redis://…``, ``memcached://…``; a moving window there)."""

    def __init__(self, spec: str, storage: str = "memory", store: Store | None = None) -> None:
        from limits import parse_many
        from limits.storage import MemoryStorage, storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.items = parse_many(spec) if spec.strip() else []
        self.store = store if storage == "database" else None
        if storage == "database" and store is None:
            raise ValueError("a database rate limit needs the store")
        backend = MemoryStorage() if storage in ("memory", "database") else (
            storage_from_string(storage))
        self.limiter = MovingWindowRateLimiter(backend)

    def check(self, client: str | None) -> None:
        key = client or "unknown"
        for item in self.items:
            if self.store is not None:
                self._shared(item, key)
            elif not self.limiter.hit(item, "scarguide", key):
                reset = self.limiter.get_window_stats(item, "scarguide", key).reset_time
                raise RateLimitedError(max(1, math.ceil(reset - time.time())))

    def _shared(self, item, key: str) -> None:
        assert self.store is not None  # only for a database rate limit
        length = item.get_expiry()
        now = time.time()
        window = int(now // length * length)
        if self.store.hit(f"{item}|{key}", window) > item.amount:
            raise RateLimitedError(max(1, math.ceil(window + length - now)))


class Answer:
    """The events of one answer, holding its place in the model's line until it is done
    or closed, even when it is closed before it started (a patient who left)."""

    def __init__(self, desk: FrontDesk, text: str, session_id: str | None, ticket,
                 triaged: TriageResult) -> None:
        self.desk, self.ticket = desk, ticket
        self._events = self._run(text, session_id, triaged)
        self._closed = False

    def _run(self, text: str, session_id: str | None,
             triaged: TriageResult) -> Generator[Event, None, None]:
        line, ticket = self.desk.line, self.ticket
        if ticket is not None:
            deadline = time.monotonic() + self.desk.assistant.settings.queue_timeout_s
            place = line.position(ticket)
            while place:
                if time.monotonic() > deadline:
                    raise BusyError(place, 30)
                yield Event("queued", text=str(place))
                place = line.wait(ticket, 2.0)
            line.start(ticket)
            self.ticket = None  # started: released by the finally below
        try:
            for event in self.desk.turn_events(text, session_id, triaged):
                if event.record is not None:
                    _logged(event.record)
                yield event
        finally:
            if ticket is not None:
                line.leave()

    def __iter__(self) -> Answer:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._events.close()  # runs the finally of a started answer
        if self.ticket is not None:  # never started: give the place back
            self.desk.line.leave(self.ticket)
            self.ticket = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class FrontDesk(Door):
    def __init__(self, assistant: Assistant, store: Store) -> None:
        super().__init__(assistant)
        self.store = store
        settings = assistant.settings
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_limit_storage, store)
        self.line = Line(settings.answer_slots, settings.queue_size)

    @staticmethod
    def _needs_model(text: str, triaged: TriageResult) -> bool:
        """Urgent, crisis, declined and closing messages get fixed replies: they never wait
        in the answer line. ``text`` is the cleaned message."""
        return not triaged.routed and route(text) == "question"

    def allow(self, client: str | None) -> None:
        """Raise RateLimitedError when ``client`` (an IP address) is over the limit."""
        self.limiter.check(client)

    def check(self, message: str, session_id: str | None) -> tuple[str, TriageResult]:
        """The cleaned message and its triage; InputError / SessionError before any work
        starts (so a stream never begins with a request that cannot be served)."""
        text = self.clean(message)
        session = None
        if session_id is not None:
            session = self.assistant.sessions.get(session_id)
            if self.store.ended(session_id):
                raise SessionEndedError(f"Session {session_id} has ended")
            if len(session.turns) >= self.assistant.settings.max_turns:
                raise SessionEndedError(f"Session {session_id} reached its length limit")
        # Triage first, before the answer line: an emergency never waits behind answers.
        return text, self.assess(text, session)

    def turn_events(self, text: str, session_id: str | None,
                    triaged: TriageResult) -> Iterator[Event]:
        """The answer's events for a message ``check`` has cleaned and triaged (the
        conversation is read again under its lock: a turn sent meanwhile is in it)."""
        return self._events(session_id, text=text, triaged=triaged)

    def chat(self, message: str, session_id: str | None = None) -> AnswerRecord:
        text, triaged = self.check(message, session_id)
        if not self._needs_model(text, triaged):
            return _logged(self.last(self.turn_events(text, session_id, triaged)))
        # BusyError when the line is full, or when the wait outlasts queue_timeout_s
        with self.line.turn(self.assistant.settings.queue_timeout_s):
            return _logged(self.last(self.turn_events(text, session_id, triaged)))

    def ask(self, message: str, session_id: str | None = None) -> AnswerRecord:
        """The same as ``chat``: one message through the desk."""
        return self.chat(message, session_id)

    def stream(self, message: str, session_id: str | None = None) -> Answer:
        """Events of the answer; while waiting for the model, ``queued`` events carry the
        place in line. A full line raises BusyError here, before any event. Call
        ``close()`` on the result when done with it (a place never started is given back)."""
        text, triaged = self.check(message, session_id)
        ticket = self.line.join() if self._needs_model(text, triaged) else None
        return Answer(self, text, session_id, ticket, triaged)

    def end(self, session_id: str) -> AnswerRecord:
        """End a conversation once; ending it again returns the same handoff."""
        self.assistant.sessions.get(session_id)  # unknown → SessionError
        if self.store.ended(session_id):
            last = self.store.turns(session_id)[-1:]
            if last and last[0].handoff is not None:
                return last[0]
        return super().end(session_id)

    def history(self, session_id: str) -> list[AnswerRecord]:
        self.assistant.sessions.get(session_id)  # unknown → SessionError
        return self.store.turns(session_id)

    def book(self, request: BookingRequest) -> dict[str, Any]:
        if request.session_id is not None and not self.store.exists(request.session_id):
            raise SessionError(f"Unknown session {request.session_id}")
        personal.add(request.name, request.email, request.phone)
        booking = self.store.add_booking(**request.model_dump())
        log.info("booking", extra={"reference": booking["reference"],
                                   "session_id": request.session_id})
        return booking

    def booking(self, reference: str) -> dict[str, Any] | None:
        return self.store.booking(reference.strip().upper())

    def feedback(self, feedback: Feedback) -> int:
        if not self.store.exists(feedback.session_id):
            raise SessionError(f"Unknown session {feedback.session_id}")
        if not self.store.has_turn(feedback.session_id, feedback.turn):
            raise InputError(f"This conversation has no answer number {feedback.turn}.")
        return self.store.add_feedback(**feedback.model_dump())
