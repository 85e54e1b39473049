"""What patients can do, in one place: chat, end a chat, book, rate an answer.

The REST API and the Gradio UI are thin adapters over one ``FrontDesk``; the
checks here (booking fields, known sessions and turns) hold for both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, EmailStr, Field, field_validator, model_validator

from assistant.answer import Assistant, Event
from assistant.errors import InputError, SessionError
from assistant.records import AnswerRecord
from assistant.safety import clean_message
from assistant.store import Store

_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,24}$")


class BookingRequest(BaseModel):
    """A patient's request to be contacted for a consultation."""

    session_id: str | None = Field(None, description="The conversation the booking follows.")
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(None, max_length=40)
    preferred_times: str = Field(min_length=1, max_length=500)
    concern: str = Field("", max_length=4000)
    consent: Literal[True] = Field(
        description="The patient agrees to be contacted; must be true."
    )

    @field_validator("name", "preferred_times", "concern", "phone", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return " ".join(value.split()) if isinstance(value, str) else value

    @field_validator("email", mode="before")
    @classmethod
    def _empty_email(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

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
    session_id: str
    turn: int = Field(ge=1)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=2000)


class FrontDesk:
    def __init__(self, assistant: Assistant, store: Store) -> None:
        self.assistant = assistant
        self.store = store

    def check(self, message: str, session_id: str | None) -> None:
        """Raise InputError / SessionError before any work starts (so a stream never
        begins with a request that cannot be served)."""
        clean_message(message, self.assistant.settings.max_message_chars)
        if session_id is not None:
            self.assistant.sessions.get(session_id)

    def chat(self, message: str, session_id: str | None = None) -> AnswerRecord:
        self.check(message, session_id)
        return self.assistant.ask(message, session_id)

    def stream(self, message: str, session_id: str | None = None) -> Iterator[Event]:
        self.check(message, session_id)
        return self.assistant.stream(message, session_id)

    def end(self, session_id: str) -> AnswerRecord:
        return self.assistant.end(session_id)

    def history(self, session_id: str) -> list[AnswerRecord]:
        self.assistant.sessions.get(session_id)  # unknown → SessionError
        return self.store.turns(session_id)

    def book(self, request: BookingRequest) -> dict[str, Any]:
        if request.session_id is not None and not self.store.exists(request.session_id):
            raise SessionError(f"Unknown session {request.session_id}")
        return self.store.add_booking(**request.model_dump())

    def booking(self, reference: str) -> dict[str, Any] | None:
        return self.store.booking(reference.strip().upper())

    def feedback(self, feedback: Feedback) -> int:
        if not self.store.exists(feedback.session_id):
            raise SessionError(f"Unknown session {feedback.session_id}")
        if not self.store.has_turn(feedback.session_id, feedback.turn):
            raise InputError(f"This conversation has no answer number {feedback.turn}.")
        return self.store.add_feedback(**feedback.model_dump())
