"""The error tree.

Every error the assistant raises on purpose derives from ``ScarguideError``.
``patient_message`` is safe to show anyone; ``str(error)`` is for operators and
logs and may name files, settings and values (never patient text).

    ScarguideError
    ├── ConfigError        a setting is missing, unreadable or inconsistent
    │   └── PromptError    a prompt file is malformed or rendered with the wrong values
    ├── CorpusError        the guide folder is missing, empty or malformed
    ├── IndexNotReadyError the index has not been built (run `scarguide ingest`)
    ├── ModelError         an embedding or chat model could not be loaded or run
    ├── RateLimitedError   a client sent too many requests (retry_after seconds)
    ├── InputError         a patient's message cannot be used (empty, too long); its
    │                      message is written for the patient
    ├── BusyError          the line for the model is full (waiting, retry_after)
    ├── StoreError         the database cannot be reached or written
    ├── AuthError          staff: wrong username or password, or an expired session
    ├── NotLoggedIn        staff: a page asked for without a session (redirects to login)
    ├── CsrfError          staff: a form without its session's CSRF token
    └── SessionError       an unknown or unreadable conversation
        └── SessionEndedError  a conversation that was ended

Two exceptions stay inside their modules because they never leave them:
``safety.TextError`` (a ``ValueError``, so pydantic reports it as a field error) and
``triage.CheckFailed`` (the model check could not decide: triage routes instead).
"""

from __future__ import annotations


class ScarguideError(Exception):
    """Base class. ``patient_message`` is what a patient may see."""

    patient_message = "Sorry, the assistant is unavailable right now. Please try again later."


class ConfigError(ScarguideError):
    """A setting is missing, unreadable or inconsistent."""


class CorpusError(ScarguideError):
    """The guide folder is missing, empty or malformed."""


class IndexNotReadyError(ScarguideError):
    """The Chroma index does not exist yet or does not match the corpus."""


class ModelError(ScarguideError):
    """A model could not be loaded or run."""


class InputError(ScarguideError):
    """A message cannot be used as it is; ``str(error)`` is safe to show the patient."""

    @property
    def patient_message(self) -> str:  # type: ignore[override]
        return str(self)


class RateLimitedError(ScarguideError):
    """A client sent more requests than the rate limit allows."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = retry_after

    @property
    def patient_message(self) -> str:  # type: ignore[override]
        return (
            "You are sending messages faster than the assistant can take them. "
            f"Please wait {self.retry_after} seconds and try again."
        )


class SessionError(ScarguideError):
    """An unknown or unreadable conversation."""


class SessionEndedError(SessionError):
    """The conversation was ended; a new message starts a new one."""


class PromptError(ConfigError):
    """A prompt file is malformed or was rendered with the wrong values."""


class BusyError(ScarguideError):
    """The line is full."""

    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(f"busy: {waiting} waiting")
        self.waiting = waiting
        self.retry_after = retry_after

    @property
    def patient_message(self) -> str:  # type: ignore[override]
        return (
            f"The assistant is busy right now ({self.waiting} people are waiting). "
            f"Please try again in about {self.retry_after} seconds."
        )


class StoreError(ScarguideError):
    """The database cannot be reached or written."""


class AuthError(ScarguideError):
    """Wrong username or password, or an expired session."""


class NotLoggedIn(ScarguideError):
    """A staff page was asked for without a session."""


class CsrfError(ScarguideError):
    """A staff form came without its session's CSRF token."""
