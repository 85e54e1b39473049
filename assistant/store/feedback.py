"""Patients' feedback on answers: a thumbs up or down on one turn, and its comment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from assistant.store.models import FeedbackRow

if TYPE_CHECKING:
    from assistant.store.engine import Store


class FeedbackRepository:
    """The ``feedback`` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, session_id: str, turn: int, rating: str, comment: str | None) -> int:
        """Store a rating of one turn; its id (to add a comment later)."""
        with self.store.transaction() as db:
            row = FeedbackRow(session_id=session_id, turn=turn, rating=rating, comment=comment)
            db.add(row)
            db.flush()
            return row.id

    def comment(self, feedback_id: int, comment: str) -> None:
        with self.store.transaction() as db:
            row = db.get(FeedbackRow, feedback_id)
            if row is not None:
                row.comment = comment

    def all(self, session_id: str | None = None) -> list[dict[str, Any]]:
        """Every rating in the order given, or only one conversation's."""
        with self.store.transaction() as db:
            query = select(FeedbackRow).order_by(FeedbackRow.id)
            if session_id:
                query = query.where(FeedbackRow.session_id == session_id)
            return [
                {
                    "session_id": r.session_id,
                    "turn": r.turn,
                    "rating": r.rating,
                    "comment": r.comment,
                    "created_at": r.created_at.isoformat(),
                }
                for r in db.scalars(query)
            ]
