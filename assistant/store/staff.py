"""Staff accounts, their login sessions and the audit log. Passwords and tokens arrive
already hashed (``assistant.accounts`` hashes them); nothing here sees them in clear."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from assistant.store.models import (
    AuditRow,
    StaffSessionRow,
    StaffUserRow,
    aware,
    deleted,
    utcnow,
)

if TYPE_CHECKING:
    from assistant.store.engine import Store


class StaffRepository:
    """The ``staff_users``, ``staff_sessions`` and ``audit`` tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- accounts ---------------------------------------------------------------------

    def add_user(self, username: str, password_hash: str) -> bool:
        """Add an account; False (and nothing written) when the username is taken."""
        with self.store.transaction() as db:
            if db.scalar(select(StaffUserRow).where(StaffUserRow.username == username)):
                return False
            db.add(StaffUserRow(username=username, password_hash=password_hash))
        return True

    def remove_user(self, username: str) -> bool:
        """Delete an account and its login sessions; whether there was one."""
        with self.store.transaction() as db:
            removed = deleted(db, delete(StaffUserRow).where(StaffUserRow.username == username))
            db.execute(delete(StaffSessionRow).where(StaffSessionRow.username == username))
        return bool(removed)

    def usernames(self) -> list[str]:
        with self.store.transaction() as db:
            return list(db.scalars(select(StaffUserRow.username).order_by(StaffUserRow.username)))

    def has_users(self) -> bool:
        with self.store.transaction() as db:
            return bool(db.scalar(select(func.count()).select_from(StaffUserRow)))

    def password_hash(self, username: str) -> str | None:
        """The account's stored hash; None when there is no such account."""
        with self.store.transaction() as db:
            user = db.scalar(select(StaffUserRow).where(StaffUserRow.username == username))
            return user.password_hash if user else None

    # -- login sessions ---------------------------------------------------------------

    def open_session(self, token_hash: str, username: str, csrf: str,
                     expires_at: datetime) -> None:
        """Store a new login session; expired ones go at the same time."""
        with self.store.transaction() as db:
            db.execute(delete(StaffSessionRow).where(StaffSessionRow.expires_at < utcnow()))
            db.add(StaffSessionRow(token_hash=token_hash, username=username, csrf=csrf,
                                   expires_at=expires_at))

    def session(self, token_hash: str) -> tuple[str, str] | None:
        """The username and CSRF token of a live session; an expired one is deleted."""
        with self.store.transaction() as db:
            row = db.get(StaffSessionRow, token_hash)
            if row is None:
                return None
            if aware(row.expires_at) < utcnow():
                db.delete(row)
                return None
            return row.username, row.csrf

    def close_session(self, token_hash: str) -> None:
        with self.store.transaction() as db:
            db.execute(delete(StaffSessionRow).where(StaffSessionRow.token_hash == token_hash))

    # -- audit ------------------------------------------------------------------------

    def audit(self, username: str, action: str, target: str | None = None,
              detail: str | None = None) -> None:
        """One line of the audit log (fields cut to their columns' sizes)."""
        with self.store.transaction() as db:
            db.add(AuditRow(username=(username or "?")[:64], action=action[:40],
                            target=target[:120] if target else None, detail=detail))

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        """The latest lines of the audit log, newest first."""
        with self.store.transaction() as db:
            rows = db.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
            return [{"at": aware(r.at).isoformat(timespec="seconds"), "username": r.username,
                     "action": r.action, "target": r.target, "detail": r.detail} for r in rows]
