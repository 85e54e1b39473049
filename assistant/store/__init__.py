"""The database: conversations, every answer record, feedback, bookings, staff and audit.

:class:`Store` (``engine.py``) builds the engine, runs the Alembic migrations
(``assistant/migrations``), gives the one transaction helper, :meth:`Store.transaction`,
the health check (:meth:`Store.ping`) and the conversation locks (:attr:`Store.locks`).
It holds one repository per area, as attributes:

- ``store.conversations``, :class:`ConversationRepository` (``conversations.py``):
  create, get and save a conversation (the assistant's SessionStore protocol), whether
  it exists or ended, record a turn's whole answer record, a conversation's turns, one
  turn with the messages before it, and purging conversations not touched for days.
- ``store.feedback``, :class:`FeedbackRepository` (``feedback.py``): add a rating of a
  turn, comment on it, all ratings (or one conversation's).
- ``store.bookings``, :class:`BookingRepository` (``bookings.py``): add a booking (its
  reference made here), find one by reference or by conversation, all of them, the staff
  console's search (status and text, phone numbers without separators, paged) and a new
  status; :data:`BOOKING_STATUSES`, :func:`booking_dict`.
- ``store.reviews``, :class:`ReviewRepository` (``reviews.py``): turns as staff review
  them: the review queue with its filters and order in SQL (:func:`queue_signals`), one
  turn with its feedback and reviews, a whole conversation with everything attached
  (:class:`ConversationRows`), adding a review, the questions answered ``not_in_guide``;
  :data:`PROBLEM_STATUSES`.
- ``store.staff``, :class:`StaffRepository` (``staff.py``): staff accounts (by password
  hash), login sessions (by token hash, expired ones deleted) and the audit log.
- ``store.rates``, :class:`RateHitRepository` (``rates.py``): rate-limit counters shared
  by every worker.

The conversation, rate-limit, feedback and booking methods the adapters call most are
also on :class:`Store` itself (``store.turns(...)``, ``store.add_booking(...)``).
The tables are the ``*Row`` classes of ``models.py``, with :func:`utcnow` and
:func:`aware` (SQLite's datetimes come back without their zone); ``search.py`` has the
portable SQL text search the console's filters use.
"""

from assistant.store.bookings import (
    BOOKING_STATUSES,
    BookingRepository,
    booking_dict,
    new_reference,
)
from assistant.store.conversations import ConversationRepository
from assistant.store.engine import MIGRATIONS, Store, build_engine
from assistant.store.feedback import FeedbackRepository
from assistant.store.models import (
    AuditRow,
    Base,
    BookingRow,
    EvalCaseRow,
    FeedbackRow,
    RateHitRow,
    ReviewRow,
    SessionRow,
    StaffSessionRow,
    StaffUserRow,
    TurnRow,
    aware,
    utcnow,
)
from assistant.store.rates import RateHitRepository
from assistant.store.reviews import (
    PROBLEM_STATUSES,
    ConversationRows,
    QueueSignals,
    ReviewRepository,
    queue_signals,
)
from assistant.store.staff import StaffRepository

__all__ = [
    "BOOKING_STATUSES",
    "MIGRATIONS",
    "PROBLEM_STATUSES",
    "AuditRow",
    "Base",
    "BookingRepository",
    "BookingRow",
    "ConversationRepository",
    "ConversationRows",
    "EvalCaseRow",
    "FeedbackRepository",
    "FeedbackRow",
    "QueueSignals",
    "RateHitRepository",
    "RateHitRow",
    "ReviewRepository",
    "ReviewRow",
    "SessionRow",
    "StaffRepository",
    "StaffSessionRow",
    "StaffUserRow",
    "Store",
    "TurnRow",
    "aware",
    "booking_dict",
    "build_engine",
    "new_reference",
    "queue_signals",
    "utcnow",
]
