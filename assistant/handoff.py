"""The end of a conversation: a short summary drawn from the session, and the booking link.

The summary names only what the conversation touched, in the guide's words (the sections
its answers cited) and counts (questions the guide does not cover, questions for a
dermatologist): never the patient's own words, which may hold markup, links or personal
details. It states no medical claim of its own.
"""

from __future__ import annotations

from assistant.config import Settings
from assistant.records import Handoff
from assistant.sessions import Session

_LEAF = " › "


def _questions(n: int, what: str) -> str:
    return f"{n} question{'' if n == 1 else 's'} {what}"


def summarise(session: Session) -> str:
    """E.g. "Asked about: Boxcar scars, Laser resurfacing; 1 question the guide does not
    cover." Built from the cited sections and the turns' statuses only."""
    topics: list[str] = []
    for turn in session.turns:
        for section in turn.sections:
            leaf = section.split(_LEAF)[-1].strip()
            if leaf and leaf not in topics:
                topics.append(leaf)
    statuses = [turn.status for turn in session.turns]
    parts = []
    if topics:
        parts.append("Asked about: " + ", ".join(topics))
    if statuses.count("not_in_guide"):
        parts.append(_questions(statuses.count("not_in_guide"), "the guide does not cover"))
    if statuses.count("declined"):
        parts.append(_questions(statuses.count("declined"),
                                "for a dermatologist (doses, prescriptions or a diagnosis)"))
    summary = "; ".join(parts) + "." if parts else ""
    if "urgent" in statuses:
        summary += " The patient described symptoms that were routed to urgent care."
    return summary.strip() or "No questions were asked yet."


def build_handoff(settings: Settings, session: Session, message: str | None = None) -> Handoff:
    return Handoff(
        message=message
        or "A dermatologist can look at your skin and answer your questions in person. "
        "You can book a consultation with the clinic.",
        summary=summarise(session),
        booking_url=settings.booking_url,
    )
