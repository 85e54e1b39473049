"""The database connection: building the engine, the one transaction helper, running
the migrations, the health check and the conversation locks; and :class:`Store`, which
holds one repository per area (``assistant.store`` lists them).

SQLAlchemy 2.x over any URL (``SCARGUIDE_DATABASE_URL``); by default SQLite in WAL
mode under the data dir. The schema belongs to Alembic (``assistant/migrations``):
:meth:`Store.migrate` brings any database to the newest revision, and the app
calls it at start, so nobody runs a migration by hand.

A write returns only after its transaction is committed (SQLite with
``synchronous=FULL``), so an acknowledged booking survives a killed process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from assistant.errors import StoreError
from assistant.locks import ConversationLocks, FileLocks, PostgresLocks, ProcessLocks
from assistant.records import AnswerRecord
from assistant.sessions import Session as Conversation
from assistant.store.bookings import BookingRepository
from assistant.store.conversations import ConversationRepository
from assistant.store.feedback import FeedbackRepository
from assistant.store.rates import RateHitRepository
from assistant.store.reviews import ReviewRepository
from assistant.store.staff import StaffRepository

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


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


class Store:
    """Every read and write the adapters and the assistant make; one per process.

    The repositories are its attributes (``store.bookings.search(...)``); the methods
    the assistant's SessionStore protocol, the front desk and the pages call most are
    also here, each handing over to its repository."""

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
        self.conversations = ConversationRepository(self)
        self.feedback = FeedbackRepository(self)
        self.bookings = BookingRepository(self)
        self.reviews = ReviewRepository(self)
        self.staff = StaffRepository(self)
        self.rates = RateHitRepository(self)

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
        """One transaction (the schema migrated first): committed when the block ends,
        rolled back on an error; a database error comes out as StoreError."""
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

    # -- conversations (the assistant's SessionStore protocol): self.conversations ----

    def create(self) -> Conversation:
        return self.conversations.create()

    def get(self, session_id: str) -> Conversation:
        return self.conversations.get(session_id)

    def save(self, session: Conversation) -> None:
        self.conversations.save(session)

    def ended(self, session_id: str) -> bool:
        return self.conversations.ended(session_id)

    def exists(self, session_id: str) -> bool:
        return self.conversations.exists(session_id)

    def record_turn(self, record: AnswerRecord) -> None:
        self.conversations.record_turn(record)

    def turns(self, session_id: str) -> list[AnswerRecord]:
        return self.conversations.turns(session_id)

    def turn_by_id(self, turn_id: int) -> tuple[AnswerRecord, list[str]] | None:
        return self.conversations.turn_by_id(turn_id)

    def has_turn(self, session_id: str, turn: int) -> bool:
        return self.conversations.has_turn(session_id, turn)

    def purge(self, older_than_days: int) -> dict[str, int]:
        return self.conversations.purge(older_than_days)

    # -- rate limits, feedback and bookings: self.rates, self.feedback, self.bookings ---

    def hit(self, key: str, window: int, amount: int = 1) -> int:
        return self.rates.hit(key, window, amount)

    def add_feedback(self, session_id: str, turn: int, rating: str, comment: str | None) -> int:
        return self.feedback.add(session_id, turn, rating, comment)

    def comment_feedback(self, feedback_id: int, comment: str) -> None:
        self.feedback.comment(feedback_id, comment)

    def add_booking(self, **fields: Any) -> dict[str, Any]:
        return self.bookings.add(**fields)

    def booking(self, reference: str) -> dict[str, Any] | None:
        return self.bookings.get(reference)

    def booking_for_session(self, session_id: str) -> dict[str, Any] | None:
        return self.bookings.for_session(session_id)
