"""Turns as staff review them: the review queue (every filter and its order in SQL),
one turn with its feedback and reviews, a whole conversation with everything attached
to it, staff reviews, and the questions the guide could not answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Text, case, cast, func, or_, select

from assistant.store.models import BookingRow, FeedbackRow, ReviewRow, SessionRow, TurnRow
from assistant.store.search import like_pattern, occurrences

if TYPE_CHECKING:
    from assistant.store.engine import Store

# failed: the answer broke off (the model or the database failed); the patient got an error
PROBLEM_STATUSES = ("not_in_guide", "urgent", "declined", "failed")


@dataclass
class QueueSignals:
    """What makes a turn need attention, as SQL over its row (see :func:`queue_signals`)."""

    down: Any
    review: Any
    dropped: Any
    supported: Any
    problems: Any


def queue_signals() -> QueueSignals:
    """The queue's signals as SQL over a turn's row, the same on SQLite and PostgreSQL
    (``assistant.staff`` computes ``problems`` again in Python for the page).

    The record is JSON; its text is searched, not its structure: a key with its value
    (``"supported":false``) cannot come from a string inside it, where quotes are escaped.
    The text is read without the space after a colon, whatever the serialiser wrote."""
    down = (select(func.count()).select_from(FeedbackRow)
            .where(FeedbackRow.session_id == TurnRow.session_id,
                   FeedbackRow.turn == TurnRow.turn, FeedbackRow.rating == "down")
            .correlate(TurnRow).scalar_subquery())
    review = (select(ReviewRow.verdict).where(ReviewRow.turn_id == TurnRow.id)
              .order_by(ReviewRow.id.desc()).limit(1).correlate(TurnRow).scalar_subquery())
    record = func.replace(cast(TurnRow.record, Text), '": ', '":')
    dropped = occurrences(record, '"supported":false')
    supported = occurrences(record, '"supported":true')
    fallback = case((record.like('%"source":"prior"%'), 1), else_=0)
    weight = case((TurnRow.status == "urgent", 2),
                  (TurnRow.status.in_(PROBLEM_STATUSES), 1), else_=0)
    problems = (3 * down + case((review == "incorrect", 3), else_=0) + dropped + fallback
                + weight)
    return QueueSignals(down, review, dropped, supported, problems)


@dataclass
class ConversationRows:
    """A conversation's row and every row attached to it, each list in stored order."""

    session: SessionRow
    turns: list[TurnRow]
    feedback: list[FeedbackRow]
    reviews: list[ReviewRow]
    bookings: list[BookingRow]


class ReviewRepository:
    """The ``reviews`` table and the staff console's reads over turns."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def queue(
        self,
        status: str | None = None,
        thumbs_down: bool = False,
        dropped: bool = False,
        low_faithfulness: bool = False,
        since: datetime | None = None,
        text: str | None = None,
        order: str = "problems",
        limit: int = 200,
        offset: int = 0,
    ) -> list[Row[TurnRow, int, str | None]]:
        """One page of turns, each with its thumbs-down count and latest review verdict;
        most problematic (then newest) first, or newest first with ``order="newest"``.
        ``text`` is looked for in the question, the answer and the rewrite. Every filter
        and the order run in the database, before ``limit`` and ``offset``."""
        signals = queue_signals()
        query = select(TurnRow, signals.down, signals.review)
        if status:
            query = query.where(TurnRow.status == status)
        if since:
            query = query.where(TurnRow.created_at >= since)
        if text and text.strip():
            like = like_pattern(text)
            query = query.where(or_(TurnRow.question.ilike(like, escape="\\"),
                                    TurnRow.answer.ilike(like, escape="\\"),
                                    TurnRow.standalone_question.ilike(like, escape="\\")))
        if thumbs_down:
            query = query.where(signals.down > 0)
        if dropped:
            query = query.where(signals.dropped > 0)
        if low_faithfulness:  # supported / verdicts < 0.5
            query = query.where(signals.supported < signals.dropped)
        if order == "newest":
            query = query.order_by(TurnRow.id.desc())
        else:
            query = query.order_by(signals.problems.desc(), TurnRow.id.desc())
        with self.store.transaction() as db:
            return list(db.execute(query.limit(max(1, limit)).offset(max(0, offset))).all())

    def turn(self, turn_id: int) -> tuple[TurnRow, list[FeedbackRow], list[ReviewRow]] | None:
        """A turn's row with the patient's feedback on it and its reviews (oldest first)."""
        with self.store.transaction() as db:
            row = db.get(TurnRow, turn_id)
            if row is None:
                return None
            feedback = list(db.scalars(select(FeedbackRow).where(
                FeedbackRow.session_id == row.session_id, FeedbackRow.turn == row.turn)))
            reviews = list(db.scalars(select(ReviewRow).where(ReviewRow.turn_id == turn_id)
                                      .order_by(ReviewRow.id)))
            return row, feedback, reviews

    def add(self, username: str, turn_id: int, verdict: str, note: str | None) -> bool:
        """Store a review of a turn; False (and nothing written) when there is no turn."""
        with self.store.transaction() as db:
            if db.get(TurnRow, turn_id) is None:
                return False
            db.add(ReviewRow(turn_id=turn_id, verdict=verdict, note=note, username=username))
        return True

    def conversation(self, session_id: str) -> ConversationRows | None:
        """A conversation's turns (in order), feedback, the reviews of its turns and the
        bookings made from it; None when there is no such conversation."""
        with self.store.transaction() as db:
            session = db.get(SessionRow, session_id)
            if session is None:
                return None
            turns = db.scalars(select(TurnRow).where(TurnRow.session_id == session_id)
                               .order_by(TurnRow.turn, TurnRow.id)).all()
            feedback = db.scalars(select(FeedbackRow)
                                  .where(FeedbackRow.session_id == session_id)
                                  .order_by(FeedbackRow.id)).all()
            reviews = db.scalars(select(ReviewRow)
                                 .join(TurnRow, ReviewRow.turn_id == TurnRow.id)
                                 .where(TurnRow.session_id == session_id)
                                 .order_by(ReviewRow.id)).all()
            bookings = db.scalars(select(BookingRow).where(BookingRow.session_id == session_id)
                                  .order_by(BookingRow.id)).all()
            return ConversationRows(session, list(turns), list(feedback), list(reviews),
                                    list(bookings))

    def not_in_guide(self) -> list[tuple[int, str]]:
        """Every question answered ``not_in_guide`` (its rewrite when it has one), with its
        turn's id, oldest first."""
        with self.store.transaction() as db:
            rows = db.execute(select(TurnRow.id, TurnRow.question, TurnRow.standalone_question)
                              .where(TurnRow.status == "not_in_guide")
                              .order_by(TurnRow.id)).all()
        return [(r.id, r.standalone_question or r.question) for r in rows]
