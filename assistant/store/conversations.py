"""Conversations and their turns: what the assistant's SessionStore protocol needs
(create, get, save), each turn's whole answer record, and purging old conversations."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from assistant.errors import SessionError, StoreError
from assistant.records import AnswerRecord
from assistant.sessions import Session as Conversation
from assistant.sessions import TurnSummary, new_session_id
from assistant.store.models import (
    BookingRow,
    EvalCaseRow,
    FeedbackRow,
    ReviewRow,
    SessionRow,
    TurnRow,
    deleted,
    utcnow,
)

if TYPE_CHECKING:
    from assistant.store.engine import Store


class ConversationRepository:
    """Conversations (``sessions``) and their turns (``turns``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self) -> Conversation:
        conversation = Conversation(session_id=new_session_id())
        with self.store.transaction() as db:
            db.add(SessionRow(id=conversation.session_id))
        return conversation

    def get(self, session_id: str) -> Conversation:
        with self.store.transaction() as db:
            if db.get(SessionRow, session_id) is None:
                raise SessionError(f"Unknown session {session_id}")
            rows = db.scalars(
                select(TurnRow).where(TurnRow.session_id == session_id).order_by(TurnRow.turn)
            ).all()
        return Conversation(
            session_id=session_id,
            turns=[
                TurnSummary(
                    question=r.question,
                    standalone_question=r.standalone_question,
                    question_english=r.record.get("question_english"),
                    language=r.record.get("language", "en"),
                    status=r.status,
                    sections=list(
                        dict.fromkeys(c["section"] for c in r.record.get("citations", []))
                    ),
                )
                for r in rows
            ],
        )

    def save(self, session: Conversation) -> None:
        """Turns are written by :meth:`record_turn`; this only keeps the session alive."""
        with self.store.transaction() as db:
            row = db.get(SessionRow, session.session_id)
            if row is None:
                db.add(SessionRow(id=session.session_id))
            else:
                row.updated_at = utcnow()

    def ended(self, session_id: str) -> bool:
        with self.store.transaction() as db:
            row = db.get(SessionRow, session_id)
            return bool(row and row.ended)

    def exists(self, session_id: str) -> bool:
        with self.store.transaction() as db:
            return db.get(SessionRow, session_id) is not None

    def record_turn(self, record: AnswerRecord) -> None:
        """Keep the whole answer record: what staff review and the eval harness replays.

        The database numbers the turn: at least the next after the conversation's last
        stored one (``record.turn`` is raised to it). The conversation's lock
        (:attr:`Store.locks`) keeps turns in order; should two writers still meet, the
        unique (session, turn) pair refuses the second and it takes the next number."""
        for attempt in range(5):
            try:
                with self.store.transaction() as db:
                    session = db.get(SessionRow, record.session_id)
                    if session is None:
                        session = SessionRow(id=record.session_id)
                        db.add(session)
                    session.updated_at = utcnow()
                    if record.status == "handoff":
                        session.ended = True
                    last = db.scalar(
                        select(func.max(TurnRow.turn)).where(
                            TurnRow.session_id == record.session_id
                        )
                    )
                    record.turn = max(record.turn, (last or 0) + 1)
                    db.add(
                        TurnRow(
                            session_id=record.session_id,
                            turn=record.turn,
                            status=record.status,
                            question=record.question,
                            standalone_question=record.standalone_question,
                            answer=record.answer,
                            record=record.model_dump(mode="json"),
                        )
                    )
                return
            except StoreError as exc:
                if not isinstance(exc.__cause__, IntegrityError) or attempt == 4:
                    raise

    def turns(self, session_id: str) -> list[AnswerRecord]:
        with self.store.transaction() as db:
            rows = db.scalars(
                select(TurnRow).where(TurnRow.session_id == session_id).order_by(TurnRow.turn)
            ).all()
        return [AnswerRecord.model_validate(r.record) for r in rows]

    def turn_by_id(self, turn_id: int) -> tuple[AnswerRecord, list[str]] | None:
        """A stored turn's record and the patient's earlier messages in its conversation."""
        with self.store.transaction() as db:
            row = db.get(TurnRow, turn_id)
            if row is None:
                return None
            earlier = db.scalars(
                select(TurnRow.question)
                .where(TurnRow.session_id == row.session_id, TurnRow.turn < row.turn)
                .order_by(TurnRow.turn)
            ).all()
            return AnswerRecord.model_validate(row.record), list(earlier)

    def has_turn(self, session_id: str, turn: int) -> bool:
        with self.store.transaction() as db:
            return (
                (db.scalar(
                    select(func.count())
                    .select_from(TurnRow)
                    .where(TurnRow.session_id == session_id, TurnRow.turn == turn)
                ) or 0)
                > 0
            )

    def purge(self, older_than_days: int) -> dict[str, int]:
        """Delete conversations (their turns, feedback, reviews and the eval cases made
        from their turns) not touched for the given number of days. Bookings stay (they
        live only in their own table); their link to the deleted conversation is cleared."""
        cutoff = utcnow() - timedelta(days=older_than_days)
        with self.store.transaction() as db:
            old = select(SessionRow.id).where(SessionRow.updated_at < cutoff)
            ids = list(db.scalars(old))
            counts = {"sessions": len(ids), "turns": 0, "feedback": 0, "eval_cases": 0}
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                turn_ids = select(TurnRow.id).where(TurnRow.session_id.in_(batch))
                db.execute(delete(ReviewRow).where(ReviewRow.turn_id.in_(turn_ids)))
                counts["eval_cases"] += deleted(
                    db, delete(EvalCaseRow).where(EvalCaseRow.turn_id.in_(turn_ids)))
                counts["turns"] += deleted(
                    db, delete(TurnRow).where(TurnRow.session_id.in_(batch)))
                counts["feedback"] += deleted(
                    db, delete(FeedbackRow).where(FeedbackRow.session_id.in_(batch)))
                db.execute(
                    update(BookingRow)
                    .where(BookingRow.session_id.in_(batch))
                    .values(session_id=None)
                )
                db.execute(delete(SessionRow).where(SessionRow.id.in_(batch)))
        return counts
