"""The error tree.

Every error the assistant raises on purpose derives from ``ScarguideError``.
``patient_message`` is safe to show anyone; ``str(error)`` is for operators and
logs and may name files, settings and values (never patient text).

    ScarguideError
    ├── ConfigError        a setting is missing, unreadable or inconsistent
    ├── CorpusError        the guide folder is missing, empty or malformed
    ├── IndexNotReadyError the index has not been built (run `scarguide ingest`)
    ├── ModelError         an embedding or chat model could not be loaded or run
    ├── InputError         a patient's message cannot be used (empty, too long); its
    │                      message is written for the patient
    └── SessionError       an unknown or unreadable conversation
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


class SessionError(ScarguideError):
    """An unknown or unreadable conversation."""
