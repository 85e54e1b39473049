"""Staff accounts, passwords (argon2), login sessions with their CSRF tokens, and the
audit log: what ``StaffDesk`` (``assistant/staff.py``) builds on. The rows are
``store.staff``'s (``assistant.store.staff``); only hashes of passwords and session
tokens are stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from assistant.errors import AuthError, InputError
from assistant.store import Store, utcnow

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass
class Login:
    username: str
    csrf: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffAccounts:
    """Who may use the staff console, their sessions, and the log of what they did."""

    def __init__(self, store: Store, session_hours: float = 8.0) -> None:
        self.store = store
        self.hasher = PasswordHasher()
        self.session_hours = session_hours

    # -- accounts ---------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        username = username.strip().lower()
        if not _USERNAME.match(username):
            raise InputError("A username is 2-64 letters, digits, dots, dashes or underscores.")
        if len(password) < 12:
            raise InputError("A password needs at least 12 characters.")
        if not self.store.staff.add_user(username, self.hasher.hash(password)):
            raise InputError(f"There is already a staff account {username!r}.")
        self.audit("cli", "staff.add", username)

    def remove_user(self, username: str) -> bool:
        removed = self.store.staff.remove_user(username)
        if removed:
            self.audit("cli", "staff.remove", username)
        return removed

    def users(self) -> list[str]:
        return self.store.staff.usernames()

    def has_users(self) -> bool:
        return self.store.staff.has_users()

    # -- login sessions ---------------------------------------------------------------

    def login(self, username: str, password: str) -> tuple[str, Login]:
        """A new session token (for the cookie) and its CSRF token; AuthError otherwise."""
        username = (username or "").strip().lower()
        stored = self.store.staff.password_hash(username)
        try:
            if stored is None:
                # same work for unknown users as for known ones
                self.hasher.hash(password or "x")
                raise VerifyMismatchError
            self.hasher.verify(stored, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            self.audit(username or "?", "login.failed")
            raise AuthError("Wrong username or password.") from None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        self.store.staff.open_session(_token_hash(token), username, csrf,
                                      utcnow() + timedelta(hours=self.session_hours))
        self.audit(username, "login")
        return token, Login(username, csrf)

    def session(self, token: str | None) -> Login | None:
        if not token:
            return None
        found = self.store.staff.session(_token_hash(token))
        return Login(*found) if found else None

    def logout(self, token: str | None) -> None:
        login = self.session(token)
        if token:
            self.store.staff.close_session(_token_hash(token))
        if login:
            self.audit(login.username, "logout")

    # -- audit ------------------------------------------------------------------------

    def audit(self, username: str, action: str, target: str | None = None,
              detail: str | None = None) -> None:
        self.store.staff.audit(username, action, target, detail)

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.store.staff.audit_log(limit)
