"""The end of a conversation: a short summary drawn from the session, and the booking link.

The summary names only what the conversation touched (guide sections cited,
topics the guide did not cover); it states no medical claim of its own.
"""

from __future__ import annotations

from assistant.config import Settings
from assistant.records import Handoff
from assistant.sessions import Session

_LEAF = " › "


def summarise(session: Session) -> str:
    topics: list[str] = []
    uncovered: list[str] = []
    for turn in session.turns:
        for section in turn.sections:
            leaf = section.split(_LEAF)[-1]
            if leaf not in topics:
                topics.append(leaf)
        if turn.status == "not_in_guide":
            asked = (turn.standalone_question or turn.question).strip()
            asked = f"“{asked.rstrip('?.! ')}?”" if asked else ""
            if asked and asked not in uncovered:
                uncovered.append(asked)
    parts = []
    if topics:
        parts.append("Topics from the guide: " + "; ".join(topics) + ".")
    if uncovered:
        parts.append("Questions the guide does not answer: " + " ".join(uncovered))
    if any(t.status == "urgent" for t in session.turns):
        parts.append("The patient described symptoms that were routed to urgent care.")
    return " ".join(parts) or "No questions were asked yet."


def build_handoff(settings: Settings, session: Session, message: str | None = None) -> Handoff:
    return Handoff(
        message=message
        or "A dermatologist can look at your skin and answer your questions in person. "
        "You can book a consultation with the clinic.",
        summary=summarise(session),
        booking_url=settings.booking_url,
    )
