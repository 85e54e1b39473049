"""The front door: what is done once for every patient message before the answer chain.

    clean the message → take the conversation's turn → load (or start) the conversation
    → triage, read with its last turns → route (urgent, crisis, declined, closing,
    question) → the language of the answer's own texts

The result is one :class:`Turn`, and ``Assistant.answer(turn)`` is the chain from there;
it never cleans, routes or loads a conversation itself. :class:`Door` is the door alone
(the CLI, the eval's in-process target, ``Assistant.ask``); ``assistant.frontdesk``'s
``FrontDesk`` is the same door with the desk around it (the checks a served conversation
needs, the answer line, a log line per turn).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.records import AnswerRecord
from assistant.safety import Route, clean_message
from assistant.sessions import Session
from assistant.translate import mostly_english
from assistant.triage import TriageResult

if TYPE_CHECKING:
    from assistant.answer import Assistant, Event


class Clock:
    """The turn's timings in milliseconds: each stage since the last, or since the start."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}
        self._last = self.start

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = round((now - self._last) * 1000, 1)
        self._last = now

    def since_start(self, name: str) -> None:
        self.marks[name] = round((time.perf_counter() - self.start) * 1000, 1)


@dataclass(frozen=True)
class Turn:
    """One patient message past the front door, under its conversation's lock."""

    text: str  # the cleaned message: what the chain reads and the record keeps
    session: Session  # read under the lock (the chain appends this turn and saves it)
    triage: TriageResult
    route: Route  # where the message goes: a fixed reply, or "question" (an answer)
    # the language of the answer's own texts: the message's, when it is offered and its
    # words are not mostly English words; else "en" (then its question is read as written)
    language: str
    clock: Clock  # started when the turn was taken; the chain adds its stages


class Door:
    """Every adapter's way in: one message → one :class:`Turn` → ``Assistant.answer``."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.settings = assistant.settings

    def clean(self, message: str) -> str:
        """The message normalised; InputError with a patient-readable reason."""
        return clean_message(message, self.settings.max_message_chars)

    def assess(self, text: str, session: Session | None) -> TriageResult:
        """Triage of a cleaned message, read with the last turns of its conversation."""
        history = [t.question for t in session.turns] if session is not None else []
        return self.assistant.triage.assess(text, history)

    def ask(self, message: str, session_id: str | None = None) -> AnswerRecord:
        return self.last(self._events(session_id, message=message))

    @staticmethod
    def last(events: Iterator[Event]) -> AnswerRecord:
        """The record an answer's events end with (all of them run)."""
        record = None
        for event in events:
            record = event.record or record
        assert record is not None
        return record

    def stream(self, message: str, session_id: str | None = None) -> Iterator[Event]:
        """Verified sentences as they pass, then the record (SessionError: an unknown
        conversation; InputError: a message that cannot be read)."""
        yield from self._events(session_id, message=message)

    def end(self, session_id: str) -> AnswerRecord:
        """The explicit end of a conversation: a handoff with the summary, in the language
        of its last answer's texts."""
        recorder = self.assistant.recorder
        with self.assistant.hold(session_id):
            session = self.assistant.sessions.get(session_id)
            language = session.turns[-1].language if session.turns else "en"
            record = recorder.closing(session, "[end of conversation]", language)
            record.language = language
            recorder.remember(session, record)
        return record

    def _events(
        self, session_id: str | None, message: str | None = None, text: str | None = None,
        triaged: TriageResult | None = None,
    ) -> Iterator[Event]:
        """The answer's events; ``text`` and ``triaged`` when the desk has cleaned and
        triaged the message already. Turns of one conversation run one at a time, so none
        is lost when a patient sends twice: the conversation is read under its lock."""
        with self.assistant.hold(session_id):
            clock = Clock()
            if text is None:
                assert message is not None
                text = self.clean(message)
            sessions = self.assistant.sessions
            session = sessions.get(session_id) if session_id else sessions.create()
            triage = triaged or self.assess(text, session)
            clock.lap("triage")
            yield from self.assistant.answer(self._turn(text, session, triage, clock))

    def _turn(self, text: str, session: Session, triage: TriageResult, clock: Clock) -> Turn:
        assistant = self.assistant
        where: Route
        if triage.route != "none" and triage.firm:
            where = triage.route
        else:
            where = assistant.rules.route(text, lambda t: assistant.search(t).top_similarity)
        return Turn(text, session, triage, where, self._language(text, triage.language), clock)

    def _language(self, text: str, detected: str) -> str:
        """The language of the answer's own texts: the message's, when it is offered and
        the message is not mostly English words; else English."""
        if detected == "en" or detected not in self.settings.languages or mostly_english(text):
            return "en"
        return detected
