"""The database: conversations, every answer record, feedback and bookings.

SQLAlchemy 2.x over any URL (``SCARGUIDE_DATABASE_URL``); by default SQLite in WAL
mode under the data dir. The schema belongs to Alembic (``assistant/migrations``):
:meth:`Store.migrate` brings any database to the newest revision, and the app
calls it at start, so nobody runs a migration by hand.

A write returns only after its transaction is committed (SQLite with
``synchronous=FULL``), so an acknowledged booking survives a killed process.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from assistant.errors import SessionError, StoreError
from assistant.locks import ConversationLocks, FileLocks, PostgresLocks, ProcessLocks
from assistant.records import AnswerRecord
from assistant.sessions import Session as Conversation
from assistant.sessions import TurnSummary, new_session_id

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BOOKING_STATUSES = ("new", "contacted", "booked", "closed")
# unambiguous letters and digits for references a patient may read out on the phone
_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class SessionRow(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended: Mapped[bool] = mapped_column(Boolean, default=False)


class TurnRow(Base):
    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("session_id", "turn"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    turn: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    question: Mapped[str] = mapped_column(Text)
    standalone_question: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer: Mapped[str] = mapped_column(Text)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class FeedbackRow(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    turn: Mapped[int] = mapped_column(Integer)
    rating: Mapped[str] = mapped_column(String(4))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BookingRow(Base):
    __tablename__ = "bookings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    preferred_times: Mapped[str] = mapped_column(Text)
    concern: Mapped[str] = mapped_column(Text)
    consent: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(12), default="new", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StaffUserRow(Base):
    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StaffSessionRow(Base):
    __tablename__ = "staff_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    csrf: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewRow(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    username: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RateHitRow(Base):
    """Requests one client made in one fixed window of one limit (shared by all workers)."""

    __tablename__ = "rate_hits"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)


class EvalCaseRow(Base):
    """An eval case a staff member made from a turn, redacted of personal details."""

    __tablename__ = "eval_cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    case: Mapped[dict[str, Any]] = mapped_column(JSON)
    username: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditRow(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(120), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised via sqlite
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def build_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):  # one shared in-memory database
            engine = create_engine(
                url, connect_args={"check_same_thread": False}, poolclass=StaticPool
            )
        else:
            path = url.split("///", 1)[-1]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        _sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def new_reference() -> str:
    return "SG-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(8))


class Store:
    """Every read and write the adapters and the assistant make; one per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = build_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._migrated = False
        self._migrate_lock = threading.Lock()
        # an in-memory SQLite database is one connection: one transaction at a time
        self._one_at_a_time = (
            threading.Lock() if isinstance(self.engine.pool, StaticPool) else nullcontext()
        )

    # -- schema ---------------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the database to the newest Alembic revision (idempotent)."""
        with self._migrate_lock:
            if self._migrated:
                return
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            try:
                with self.engine.connect() as connection:
                    postgres = connection.dialect.name == "postgresql"
                    if postgres:  # several workers may start at once: one migrates
                        connection.execute(text("SELECT pg_advisory_lock(72430001)"))
                        connection.commit()
                    config.attributes["connection"] = connection
                    try:
                        command.upgrade(config, "head")
                        connection.commit()
                    finally:
                        if postgres:
                            connection.execute(text("SELECT pg_advisory_unlock(72430001)"))
                            connection.commit()
            except SQLAlchemyError as exc:
                raise StoreError(f"Cannot migrate the database at {self._where()}: {exc}") from exc
            self._migrated = True

    @cached_property
    def locks(self) -> ConversationLocks:
        """One turn of a conversation at a time, across every worker that shares this
        database (assistant.locks)."""
        if self.engine.dialect.name == "postgresql":
            return PostgresLocks(self.engine)
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            return FileLocks(Path(database).parent / "locks")
        return ProcessLocks()

    def _where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        self.migrate()
        try:
            with self._one_at_a_time, self._sessions.begin() as db:
                yield db
        except (SQLAlchemyError, OverflowError) as exc:
            problem = exc.__class__.__name__
            raise StoreError(f"Database error at {self._where()}: {problem}") from exc

    def ping(self) -> bool:
        try:
            with self.transaction() as db:
                db.execute(text("SELECT 1"))
            return True
        except StoreError:
            return False

    # -- conversations (the assistant's SessionStore protocol) ------------------------

    def create(self) -> Conversation:
        conversation = Conversation(session_id=new_session_id())
        with self.transaction() as db:
            db.add(SessionRow(id=conversation.session_id))
        return conversation

    def get(self, session_id: str) -> Conversation:
        with self.transaction() as db:
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
        with self.transaction() as db:
            row = db.get(SessionRow, session.session_id)
            if row is None:
                db.add(SessionRow(id=session.session_id))
            else:
                row.updated_at = utcnow()

    def ended(self, session_id: str) -> bool:
        with self.transaction() as db:
            row = db.get(SessionRow, session_id)
            return bool(row and row.ended)

    def exists(self, session_id: str) -> bool:
        with self.transaction() as db:
            return db.get(SessionRow, session_id) is not None

    def record_turn(self, record: AnswerRecord) -> None:
        """Keep the whole answer record: what staff review and the eval harness replays.

        The database numbers the turn: at least the next after the conversation's last
        stored one (``record.turn`` is raised to it). The conversation's lock (:attr:`locks`) keeps
        turns in order; should two writers still meet, the unique (session, turn) pair
        refuses the second and it takes the next number."""
        for attempt in range(5):
            try:
                with self.transaction() as db:
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
        with self.transaction() as db:
            rows = db.scalars(
                select(TurnRow).where(TurnRow.session_id == session_id).order_by(TurnRow.turn)
            ).all()
        return [AnswerRecord.model_validate(r.record) for r in rows]

    def turn_by_id(self, turn_id: int) -> tuple[AnswerRecord, list[str]] | None:
        """A stored turn's record and the patient's earlier messages in its conversation."""
        with self.transaction() as db:
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
        with self.transaction() as db:
            return (
                db.scalar(
                    select(func.count())
                    .select_from(TurnRow)
                    .where(TurnRow.session_id == session_id, TurnRow.turn == turn)
                )
                > 0
            )

    def purge(self, older_than_days: int) -> dict[str, int]:
        """Delete conversations (their turns, feedback, reviews and the eval cases made
        from their turns) not touched for the given number of days. Bookings stay (they
        live only in their own table); their link to the deleted conversation is cleared."""
        cutoff = utcnow() - timedelta(days=older_than_days)
        with self.transaction() as db:
            old = select(SessionRow.id).where(SessionRow.updated_at < cutoff)
            ids = list(db.scalars(old))
            counts = {"sessions": len(ids), "turns": 0, "feedback": 0, "eval_cases": 0}
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                turn_ids = select(TurnRow.id).where(TurnRow.session_id.in_(batch))
                db.execute(delete(ReviewRow).where(ReviewRow.turn_id.in_(turn_ids)))
                counts["eval_cases"] += db.execute(
                    delete(EvalCaseRow).where(EvalCaseRow.turn_id.in_(turn_ids))
                ).rowcount
                counts["turns"] += db.execute(
                    delete(TurnRow).where(TurnRow.session_id.in_(batch))
                ).rowcount
                counts["feedback"] += db.execute(
                    delete(FeedbackRow).where(FeedbackRow.session_id.in_(batch))
                ).rowcount
                db.execute(
                    update(BookingRow)
                    .where(BookingRow.session_id.in_(batch))
                    .values(session_id=None)
                )
                db.execute(delete(SessionRow).where(SessionRow.id.in_(batch)))
        return counts

    # -- rate limits shared by workers ----------------------------------------------

    def hit(self, key: str, window: int, amount: int = 1) -> int:
        """Count ``amount`` requests of ``key`` in the window starting at ``window`` (epoch
        seconds) and return the window's total so far; older windows of the key go."""
        insert = {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(
            self.engine.dialect.name
        )
        if insert is None:
            raise StoreError(f"Shared rate limits need SQLite or PostgreSQL, not "
                             f"{self.engine.dialect.name}")
        statement = insert(RateHitRow).values(key=key, window=window, hits=amount)
        statement = statement.on_conflict_do_update(
            index_elements=["key", "window"], set_={"hits": RateHitRow.hits + amount}
        ).returning(RateHitRow.hits)
        with self.transaction() as db:
            total = db.execute(statement).scalar_one()
            db.execute(delete(RateHitRow).where(RateHitRow.key == key,
                                                RateHitRow.window < window))
        return total

    # -- feedback and bookings --------------------------------------------------------

    def add_feedback(
        self, session_id: str, turn: int, rating: str, comment: str | None
    ) -> int:
        with self.transaction() as db:
            row = FeedbackRow(session_id=session_id, turn=turn, rating=rating, comment=comment)
            db.add(row)
            db.flush()
            return row.id

    def comment_feedback(self, feedback_id: int, comment: str) -> None:
        with self.transaction() as db:
            row = db.get(FeedbackRow, feedback_id)
            if row is not None:
                row.comment = comment

    def feedback(self, session_id: str | None = None) -> list[dict[str, Any]]:
        with self.transaction() as db:
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

    def add_booking(self, **fields: Any) -> dict[str, Any]:
        """Commit a booking and return it; only then may the caller acknowledge it."""
        with self.transaction() as db:
            row = BookingRow(reference=new_reference(), status="new", **fields)
            db.add(row)
            db.flush()
            return booking_dict(row)

    def booking(self, reference: str) -> dict[str, Any] | None:
        with self.transaction() as db:
            row = db.scalar(select(BookingRow).where(BookingRow.reference == reference))
            return booking_dict(row) if row else None

    def booking_for_session(self, session_id: str) -> dict[str, Any] | None:
        """The latest booking made from a conversation, if any."""
        with self.transaction() as db:
            row = db.scalar(select(BookingRow).where(BookingRow.session_id == session_id)
                            .order_by(BookingRow.id.desc()).limit(1))
            return booking_dict(row) if row else None

    def bookings(self) -> list[dict[str, Any]]:
        with self.transaction() as db:
            return [booking_dict(r) for r in db.scalars(select(BookingRow).order_by(BookingRow.id))]


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def booking_dict(row: BookingRow) -> dict[str, Any]:
    return {
        "booking_id": row.id,
        "reference": row.reference,
        "session_id": row.session_id,
        "name": row.name,
        "email": row.email,
        "phone": row.phone,
        "preferred_times": row.preferred_times,
        "concern": row.concern,
        "consent": row.consent,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
