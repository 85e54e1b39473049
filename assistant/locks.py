"""One turn of a conversation at a time, across threads and worker processes.

A patient who sends twice, or two browser tabs on one conversation, must not have two
answers written at once: the second reads the first's turn as history and numbers
itself after it. Which lock does that depends on where conversations live:

- PostgreSQL: a session-level advisory lock on the conversation's id, so every worker
  of every host sees it. A waiter polls ``pg_try_advisory_lock`` instead of blocking,
  so waiters never hold a pooled connection that the holder needs.
- SQLite in a file: ``flock`` on one of 256 lock files beside the database, so every
  worker on the host sees it (SQLite itself is one host).
- Anything else (an in-memory database, the memory and file session stores): a lock in
  the process; one conversation is then served by one process.

A wait longer than ``timeout`` raises :class:`~assistant.line.BusyError` (503 busy with
Retry-After), never an unbounded wait.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from assistant.errors import BusyError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

_POLL_S = 0.05


class ConversationLocks(Protocol):
    def hold(self, session_id: str, timeout: float) -> AbstractContextManager[None]: ...


def _key(session_id: str) -> int:
    """A signed 64-bit key for the conversation (PostgreSQL's advisory lock space)."""
    return int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big", signed=True)


class ProcessLocks:
    """A lock per conversation inside this process; dropped when nobody holds or wants it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)

    @contextmanager
    def hold(self, session_id: str, timeout: float) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(session_id, (threading.Lock(), 0))
            self._locks[session_id] = (lock, users + 1)
        try:
            if not lock.acquire(timeout=timeout):
                raise BusyError(1, 5)
            try:
                yield
            finally:
                lock.release()
        finally:
            with self._guard:
                lock, users = self._locks[session_id]
                if users <= 1:
                    del self._locks[session_id]
                else:
                    self._locks[session_id] = (lock, users - 1)


class FileLocks:
    """``flock`` on ``directory/<n>.lock`` (256 files): seen by every process on the host.
    Two conversations may share a file, and then wait for each other; never for long."""

    def __init__(self, directory: Path, buckets: int = 256) -> None:
        self.directory = directory
        self.buckets = buckets
        directory.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def hold(self, session_id: str, timeout: float) -> Iterator[None]:
        path = self.directory / f"{_key(session_id) % self.buckets:03d}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise BusyError(1, 5) from None
                    time.sleep(_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class PostgresLocks:
    """An advisory lock per conversation, held on a connection of its own for the turn.
    If the worker dies, PostgreSQL drops the connection and with it the lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def hold(self, session_id: str, timeout: float) -> Iterator[None]:
        from sqlalchemy import text

        key = _key(session_id)
        deadline = time.monotonic() + timeout
        while True:
            connection = self.engine.connect()
            try:
                got = connection.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": key}
                ).scalar()
                connection.commit()
            except BaseException:
                connection.close()
                raise
            if got:
                break
            connection.close()  # back to the pool while waiting
            if time.monotonic() > deadline:
                raise BusyError(1, 5)
            time.sleep(_POLL_S)
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
            except BaseException:
                connection.invalidate()  # never back to the pool still holding the lock
                raise
            finally:
                connection.close()
