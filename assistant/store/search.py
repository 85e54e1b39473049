"""Text search in SQL, the same on SQLite and PostgreSQL: what the staff console's
filters over turns and bookings are built from."""

from __future__ import annotations

import re

from sqlalchemy import Integer, func


def like_pattern(text: str) -> str:
    """``%text%`` for ``ILIKE ... ESCAPE '\\'``: the search's own % _ and \\ are literal
    (what :func:`assistant.staff.search_pattern` finds in Python, over the same stripped
    text)."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", text.strip()) + "%"


def digits_only(column):
    """The column with a phone number's usual separators taken out (portable SQL)."""
    for separator in (" ", "-", "(", ")", ".", "+", "/"):
        column = func.replace(column, separator, "")
    return column


def occurrences(haystack, needle: str):
    """Occurrences of ``needle`` in ``haystack`` (portable SQL: length, replace and an
    integer division, which both SQLite and PostgreSQL do on two integers)."""
    removed = func.length(haystack) - func.length(func.replace(haystack, needle, ""))
    return removed.self_group().op("/", return_type=Integer)(len(needle))
