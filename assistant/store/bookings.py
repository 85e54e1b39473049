"""Bookings: a patient's request to be contacted, its reference and its follow-up status
(new → contacted → booked → closed), and the staff console's search over them."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from assistant.store.models import BookingRow, utcnow
from assistant.store.search import digits_only, like_pattern

if TYPE_CHECKING:
    from assistant.store.engine import Store

BOOKING_STATUSES = ("new", "contacted", "booked", "closed")
# unambiguous letters and digits for references a patient may read out on the phone
_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# a phone number as staff may type it: digits and the usual separators
_PHONE_QUERY = re.compile(r"^[\d\s()+./-]+$")


def new_reference() -> str:
    return "SG-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(8))


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


class BookingRepository:
    """The ``bookings`` table; every booking comes back as :func:`booking_dict`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, **fields: Any) -> dict[str, Any]:
        """Commit a booking and return it; only then may the caller acknowledge it."""
        with self.store.transaction() as db:
            row = BookingRow(reference=new_reference(), status="new", **fields)
            db.add(row)
            db.flush()
            return booking_dict(row)

    def get(self, reference: str) -> dict[str, Any] | None:
        with self.store.transaction() as db:
            row = db.scalar(select(BookingRow).where(BookingRow.reference == reference))
            return booking_dict(row) if row else None

    def for_session(self, session_id: str) -> dict[str, Any] | None:
        """The latest booking made from a conversation, if any."""
        with self.store.transaction() as db:
            row = db.scalar(select(BookingRow).where(BookingRow.session_id == session_id)
                            .order_by(BookingRow.id.desc()).limit(1))
            return booking_dict(row) if row else None

    def all(self) -> list[dict[str, Any]]:
        """Every booking, oldest first."""
        with self.store.transaction() as db:
            return [booking_dict(r) for r in db.scalars(select(BookingRow).order_by(BookingRow.id))]

    def search(self, status: str | None = None, text: str | None = None,
               limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Bookings, newest first: of one status, and/or with ``text`` in the name, email,
        phone, reference or concern (case-insensitive; a phone number also without its
        spaces, dashes, brackets or dots). Filtered in the database, then paged when
        ``limit`` is given."""
        query = select(BookingRow).order_by(BookingRow.id.desc())
        if status:
            query = query.where(BookingRow.status == status)
        if text and text.strip():
            like = like_pattern(text)
            found = [column.ilike(like, escape="\\") for column in (
                BookingRow.name, BookingRow.email, BookingRow.phone, BookingRow.reference,
                BookingRow.concern)]
            digits = re.sub(r"\D", "", text)
            if len(digits) >= 3 and _PHONE_QUERY.match(text.strip()):
                found.append(digits_only(BookingRow.phone).like(f"%{digits}%"))
            query = query.where(or_(*found))
        if limit is not None:
            query = query.limit(max(1, limit)).offset(max(0, offset))
        with self.store.transaction() as db:
            return [booking_dict(r) for r in db.scalars(query)]

    def set_status(self, reference: str, status: str) -> str | None:
        """Give a booking a new status; the one it had, or None when there is no such
        booking (the caller checks ``status`` is one of :data:`BOOKING_STATUSES`)."""
        with self.store.transaction() as db:
            row = db.scalar(select(BookingRow).where(BookingRow.reference == reference))
            if row is None:
                return None
            before, row.status, row.updated_at = row.status, status, utcnow()
            return before
