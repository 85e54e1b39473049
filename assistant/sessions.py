"""Conversations: the turns a follow-up and the closing summary draw on.

``FileSessions`` keeps one JSON file per conversation under ``data_dir/sessions``
(so ``scarguide ask --session ID`` continues across invocations);
``MemorySessions`` keeps them in the process.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field, ValidationError

from assistant.errors import SessionError

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class TurnSummary(BaseModel):
    question: str
    standalone_question: str | None = None
    question_english: str | None = None  # a question in another language, in English
    language: str = "en"  # the language its answer's own texts were in
    status: str
    sections: list[str] = Field(default_factory=list)


class Session(BaseModel):
    session_id: str
    turns: list[TurnSummary] = Field(default_factory=list)


def new_session_id() -> str:
    return secrets.token_urlsafe(12)


class SessionStore(Protocol):
    def get(self, session_id: str) -> Session: ...
    def create(self) -> Session: ...
    def save(self, session: Session) -> None: ...


def _check(session_id: str) -> str:
    if not _SESSION_ID.match(session_id or ""):
        raise SessionError(f"Not a session id: {session_id!r}")
    return session_id


class _Store:
    def save(self, session: Session) -> None:
        raise NotImplementedError

    def create(self) -> Session:
        """A new, empty conversation, saved at once."""
        session = Session(session_id=new_session_id())
        self.save(session)
        return session


class MemorySessions(_Store):
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str) -> Session:
        with self._lock:
            try:
                return self._sessions[_check(session_id)].model_copy(deep=True)
            except KeyError:
                raise SessionError(f"Unknown session {session_id}") from None

    def save(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.session_id] = session.model_copy(deep=True)


class FileSessions(_Store):
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, session_id: str) -> Path:
        return self.directory / f"{_check(session_id)}.json"

    def get(self, session_id: str) -> Session:
        path = self._path(session_id)
        if not path.exists():
            raise SessionError(f"Unknown session {session_id}")
        try:
            return Session.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValidationError, OSError) as exc:
            raise SessionError(f"Session {session_id} cannot be read: {exc}") from None

    def save(self, session: Session) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(session.session_id)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(session.model_dump(), ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
