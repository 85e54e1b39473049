"""What support staff work with: accounts and login sessions, the review queue, reviews,
content gaps, booking follow-up and the audit log. The web pages (``web/staff.py``) and
the CLI (``scarguide staff``) are thin adapters over ``StaffDesk``."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Integer, Text, case, cast, delete, func, or_, select

from assistant.errors import AuthError, InputError
from assistant.records import AnswerRecord
from assistant.store import (
    BOOKING_STATUSES,
    AuditRow,
    BookingRow,
    FeedbackRow,
    ReviewRow,
    SessionRow,
    StaffSessionRow,
    StaffUserRow,
    Store,
    TurnRow,
    aware,
    booking_dict,
    utcnow,
)
from assistant.verify import cosine

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# failed: the answer broke off (the model or the database failed); the patient got an error
PROBLEM_STATUSES = ("not_in_guide", "urgent", "declined", "failed")
# what staff read for each turn status (the raw code stays in the page, for filtering)
STATUS_LABELS = {
    "answered": "Answered",
    "not_in_guide": "Not in the guide",
    "urgent": "Urgent — routed",
    "declined": "Declined (dose/diagnosis)",
    "handoff": "Handed off",
    "failed": "Failed (error)",
}
TURN_STATUSES = tuple(STATUS_LABELS)
BOOKING_LABELS = {"new": "New", "contacted": "Contacted", "booked": "Booked",
                  "closed": "Closed"}
# a conversation's id: what new_session_id makes (token_urlsafe), at most the column's 64
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# a phone number as staff may type it: digits and the usual separators
_PHONE_QUERY = re.compile(r"^[\d\s()+./-]+$")


def status_label(status: str | None) -> str:
    return STATUS_LABELS.get(status or "", status or "")


def booking_label(status: str | None) -> str:
    return BOOKING_LABELS.get(status or "", status or "")


def search_pattern(text: str | None) -> re.Pattern[str] | None:
    """The text filter as a literal, case-insensitive pattern (what the SQL ``ILIKE`` of
    :func:`_like` finds, over the same stripped text); None without one."""
    needle = (text or "").strip()
    return re.compile(re.escape(needle), re.IGNORECASE) if needle else None


def _like(text: str) -> str:
    """``%text%`` for ``ILIKE ... ESCAPE '\\'``: the search's own % _ and \\ are literal."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", text.strip()) + "%"


def _digits(column):
    """The column with a phone number's usual separators taken out (portable SQL)."""
    for separator in (" ", "-", "(", ")", ".", "+", "/"):
        column = func.replace(column, separator, "")
    return column


def _iso(moment: datetime) -> str:
    return aware(moment).isoformat(timespec="seconds")


@dataclass
class Login:
    username: str
    csrf: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def faithfulness(record: dict[str, Any]) -> float | None:
    verdicts = record.get("verdicts") or []
    if not verdicts:
        return None
    return sum(bool(v.get("supported")) for v in verdicts) / len(verdicts)


def _problems(down: int, review: str | None, dropped: int, fallback: bool, status: str) -> int:
    """How much a turn needs attention (what the queue orders by, see :func:`_signals`)."""
    return (3 * down + 3 * (review == "incorrect") + dropped + fallback
            + (2 if status == "urgent" else 1 if status in PROBLEM_STATUSES else 0))


@dataclass
class _Signals:
    down: Any
    review: Any
    dropped: Any
    supported: Any
    problems: Any


def _count(haystack, needle: str):
    """Occurrences of ``needle`` in ``haystack`` (portable SQL: length, replace and an
    integer division, which both SQLite and PostgreSQL do on two integers)."""
    removed = func.length(haystack) - func.length(func.replace(haystack, needle, ""))
    return removed.self_group().op("/", return_type=Integer)(len(needle))


def _signals() -> _Signals:
    """The queue's signals as SQL over a turn's row, the same on SQLite and PostgreSQL.

    The record is JSON; its text is searched, not its structure: a key with its value
    (``"supported":false``) cannot come from a string inside it, where quotes are escaped.
    The text is read without the space after a colon, whatever the serialiser wrote."""
    down = (select(func.count()).select_from(FeedbackRow)
            .where(FeedbackRow.session_id == TurnRow.session_id,
                   FeedbackRow.turn == TurnRow.turn, FeedbackRow.rating == "down")
            .correlate(TurnRow).scalar_subquery())
    review = (select(ReviewRow.verdict).where(ReviewRow.turn_id == TurnRow.id)
              .order_by(ReviewRow.id.desc()).limit(1).correlate(TurnRow).scalar_subquery())
    record = func.replace(cast(TurnRow.record, Text), '": ', '":')
    dropped = _count(record, '"supported":false')
    supported = _count(record, '"supported":true')
    fallback = case((record.like('%"source":"prior"%'), 1), else_=0)
    weight = case((TurnRow.status == "urgent", 2),
                  (TurnRow.status.in_(PROBLEM_STATUSES), 1), else_=0)
    problems = (3 * down + case((review == "incorrect", 3), else_=0) + dropped + fallback
                + weight)
    return _Signals(down, review, dropped, supported, problems)


class StaffDesk:
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
        with self.store.transaction() as db:
            if db.scalar(select(StaffUserRow).where(StaffUserRow.username == username)):
                raise InputError(f"There is already a staff account {username!r}.")
            db.add(StaffUserRow(username=username, password_hash=self.hasher.hash(password)))
        self.audit("cli", "staff.add", username)

    def remove_user(self, username: str) -> bool:
        with self.store.transaction() as db:
            removed = db.execute(
                delete(StaffUserRow).where(StaffUserRow.username == username)
            ).rowcount
            db.execute(delete(StaffSessionRow).where(StaffSessionRow.username == username))
        if removed:
            self.audit("cli", "staff.remove", username)
        return bool(removed)

    def users(self) -> list[str]:
        with self.store.transaction() as db:
            return list(db.scalars(select(StaffUserRow.username).order_by(StaffUserRow.username)))

    def has_users(self) -> bool:
        with self.store.transaction() as db:
            return bool(db.scalar(select(func.count()).select_from(StaffUserRow)))

    # -- login sessions ---------------------------------------------------------------

    def login(self, username: str, password: str) -> tuple[str, Login]:
        """A new session token (for the cookie) and its CSRF token; AuthError otherwise."""
        username = (username or "").strip().lower()
        with self.store.transaction() as db:
            user = db.scalar(select(StaffUserRow).where(StaffUserRow.username == username))
            stored = user.password_hash if user else None
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
        with self.store.transaction() as db:
            db.execute(delete(StaffSessionRow).where(StaffSessionRow.expires_at < utcnow()))
            db.add(StaffSessionRow(token_hash=_token_hash(token), username=username, csrf=csrf,
                                   expires_at=utcnow() + timedelta(hours=self.session_hours)))
        self.audit(username, "login")
        return token, Login(username, csrf)

    def session(self, token: str | None) -> Login | None:
        if not token:
            return None
        with self.store.transaction() as db:
            row = db.get(StaffSessionRow, _token_hash(token))
            if row is None:
                return None
            if aware(row.expires_at) < utcnow():
                db.delete(row)
                return None
            return Login(row.username, row.csrf)

    def logout(self, token: str | None) -> None:
        login = self.session(token)
        if token:
            with self.store.transaction() as db:
                db.execute(delete(StaffSessionRow).where(
                    StaffSessionRow.token_hash == _token_hash(token)))
        if login:
            self.audit(login.username, "logout")

    # -- audit ------------------------------------------------------------------------

    def audit(self, username: str, action: str, target: str | None = None,
              detail: str | None = None) -> None:
        with self.store.transaction() as db:
            db.add(AuditRow(username=(username or "?")[:64], action=action[:40],
                            target=target[:120] if target else None, detail=detail))

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        with self.store.transaction() as db:
            rows = db.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
            return [{"at": aware(r.at).isoformat(timespec="seconds"), "username": r.username,
                     "action": r.action, "target": r.target, "detail": r.detail} for r in rows]

    # -- the review queue -------------------------------------------------------------

    def queue(
        self,
        status: str | None = None,
        thumbs_down: bool = False,
        dropped: bool = False,
        low_faithfulness: bool = False,
        since: str | None = None,
        text: str | None = None,
        order: str = "problems",
        limit: int = 200,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """One page of turns with what makes them need attention; most problematic (then
        newest) first, or newest first with ``order="newest"``. Every filter and the
        order run in the database, before ``limit`` and ``offset``."""
        signals = _signals()
        query = select(TurnRow, signals.down, signals.review)
        if status:
            query = query.where(TurnRow.status == status)
        if since:
            try:
                moment = datetime.fromisoformat(since).replace(tzinfo=UTC)
            except ValueError:
                raise InputError("The date must look like 2026-11-26.") from None
            query = query.where(TurnRow.created_at >= moment)
        if text and text.strip():
            like = _like(text)
            query = query.where(or_(TurnRow.question.ilike(like, escape="\\"),
                                    TurnRow.answer.ilike(like, escape="\\"),
                                    TurnRow.standalone_question.ilike(like, escape="\\")))
        if thumbs_down:
            query = query.where(signals.down > 0)
        if dropped:
            query = query.where(signals.dropped > 0)
        if low_faithfulness:  # supported / verdicts < 0.5
            query = query.where(signals.supported < signals.dropped)
        if order == "newest":
            query = query.order_by(TurnRow.id.desc())
        else:
            query = query.order_by(signals.problems.desc(), TurnRow.id.desc())
        with self.store.transaction() as db:
            rows = db.execute(query.limit(max(1, limit)).offset(max(0, offset))).all()
        pattern = search_pattern(text)
        items = []
        for row, down, review in rows:
            record = row.record or {}
            dropped_n = sum(not v.get("supported") for v in record.get("verdicts") or [])
            fallback = (record.get("choice") or {}).get("source") == "prior"
            items.append({
                "id": row.id, "session_id": row.session_id, "turn": row.turn,
                "status": row.status, "label": status_label(row.status),
                "question": row.question, "standalone_question": row.standalone_question,
                "answer": row.answer,
                "created_at": aware(row.created_at).isoformat(timespec="seconds"),
                "thumbs_down": down, "dropped": dropped_n, "faithfulness": faithfulness(record),
                "fallback": fallback, "coverage": record.get("coverage"),
                "review": review, "problems": _problems(down, review, dropped_n, fallback,
                                                        row.status),
                # why the row is here under a text filter: the fields the text is in
                "matched": [name for name, value in (("question", row.question),
                                                     ("answer", row.answer),
                                                     ("rewrite", row.standalone_question))
                            if pattern and value and pattern.search(value)],
            })
        return items

    def turn(self, turn_id: int) -> dict[str, Any] | None:
        with self.store.transaction() as db:
            row = db.get(TurnRow, turn_id)
            if row is None:
                return None
            feedback = [{"rating": f.rating, "comment": f.comment,
                         "at": aware(f.created_at).isoformat(timespec="seconds")}
                        for f in db.scalars(select(FeedbackRow).where(
                            FeedbackRow.session_id == row.session_id,
                            FeedbackRow.turn == row.turn))]
            reviews = [{"verdict": r.verdict, "note": r.note, "username": r.username,
                        "at": aware(r.created_at).isoformat(timespec="seconds")}
                       for r in db.scalars(select(ReviewRow).where(ReviewRow.turn_id == turn_id)
                                           .order_by(ReviewRow.id))]
            record = AnswerRecord.model_validate(row.record)
            created = aware(row.created_at).isoformat(timespec="seconds")
            return {"id": row.id, "created_at": created, "record": record,
                    "feedback": feedback, "reviews": reviews,
                    "faithfulness": faithfulness(row.record)}

    def review(self, username: str, turn_id: int, verdict: str, note: str | None) -> None:
        if verdict not in ("correct", "incorrect"):
            raise InputError("A review is correct or incorrect.")
        with self.store.transaction() as db:
            if db.get(TurnRow, turn_id) is None:
                raise InputError(f"No turn {turn_id}.")
            db.add(ReviewRow(turn_id=turn_id, verdict=verdict, note=(note or "").strip()[:2000]
                             or None, username=username))
        self.audit(username, f"review.{verdict}", f"turn {turn_id}", (note or "")[:200] or None)

    # -- bookings ---------------------------------------------------------------------

    def bookings(self, status: str | None = None, text: str | None = None,
                 limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Bookings, newest first: of one status, and/or with ``text`` in the name, email,
        phone, reference or concern (case-insensitive; a phone number also without its
        spaces, dashes, brackets or dots). Filtered in the database, then paged when
        ``limit`` is given."""
        query = select(BookingRow).order_by(BookingRow.id.desc())
        if status:
            query = query.where(BookingRow.status == status)
        if text and text.strip():
            like = _like(text)
            found = [column.ilike(like, escape="\\") for column in (
                BookingRow.name, BookingRow.email, BookingRow.phone, BookingRow.reference,
                BookingRow.concern)]
            digits = re.sub(r"\D", "", text)
            if len(digits) >= 3 and _PHONE_QUERY.match(text.strip()):
                found.append(_digits(BookingRow.phone).like(f"%{digits}%"))
            query = query.where(or_(*found))
        if limit is not None:
            query = query.limit(max(1, limit)).offset(max(0, offset))
        with self.store.transaction() as db:
            return [booking_dict(r) for r in db.scalars(query)]

    # -- a whole conversation ---------------------------------------------------------

    def conversation(self, session_id: str) -> dict[str, Any] | None:
        """Every turn of a conversation in order, each with its status, question (and the
        standalone rewrite), the shown answer, its citations' sections, the patient's
        feedback on it and the staff reviews; and the bookings made from it. None when
        there is no such conversation (or it was purged)."""
        with self.store.transaction() as db:
            session = db.get(SessionRow, session_id)
            if session is None:
                return None
            rows = db.scalars(select(TurnRow).where(TurnRow.session_id == session_id)
                              .order_by(TurnRow.turn, TurnRow.id)).all()
            feedback = db.scalars(select(FeedbackRow)
                                  .where(FeedbackRow.session_id == session_id)
                                  .order_by(FeedbackRow.id)).all()
            reviews = db.scalars(select(ReviewRow)
                                 .join(TurnRow, ReviewRow.turn_id == TurnRow.id)
                                 .where(TurnRow.session_id == session_id)
                                 .order_by(ReviewRow.id)).all()
            bookings = db.scalars(select(BookingRow).where(BookingRow.session_id == session_id)
                                  .order_by(BookingRow.id)).all()
            on_turn: dict[int, list[dict[str, Any]]] = {}
            for f in feedback:
                on_turn.setdefault(f.turn, []).append(
                    {"rating": f.rating, "comment": f.comment, "at": _iso(f.created_at)})
            reviewed: dict[int, list[dict[str, Any]]] = {}
            for r in reviews:
                reviewed.setdefault(r.turn_id, []).append(
                    {"verdict": r.verdict, "note": r.note, "username": r.username,
                     "at": _iso(r.created_at)})
            turns = []
            for row in rows:
                record = row.record or {}
                citations = [{"n": c.get("n"), "section": c.get("section")}
                             for c in record.get("citations") or []]
                rewrite = row.standalone_question
                turns.append({
                    "id": row.id, "turn": row.turn, "status": row.status,
                    "label": status_label(row.status), "created_at": _iso(row.created_at),
                    "question": row.question,
                    "standalone_question": rewrite if rewrite != row.question else None,
                    "notice": record.get("notice"), "answer": row.answer,
                    "error": record.get("error"), "citations": citations,
                    "sections": list(dict.fromkeys(c["section"] for c in citations
                                                   if c["section"])),
                    "feedback": on_turn.pop(row.turn, []),
                    "reviews": reviewed.get(row.id, []),
                    "review": (reviewed.get(row.id) or [None])[-1],
                })
            return {
                "session_id": session.id, "created_at": _iso(session.created_at),
                "updated_at": _iso(session.updated_at), "ended": bool(session.ended),
                "turns": turns, "bookings": [booking_dict(b) for b in bookings],
                # feedback on a turn number that was never stored (kept, not lost)
                "other_feedback": [f | {"turn": n} for n, fs in sorted(on_turn.items())
                                   for f in fs],
            }

    def set_booking_status(self, username: str, reference: str, status: str) -> None:
        if status not in BOOKING_STATUSES:
            raise InputError(f"A booking's status is one of {', '.join(BOOKING_STATUSES)}.")
        with self.store.transaction() as db:
            row = db.scalar(select(BookingRow).where(BookingRow.reference == reference))
            if row is None:
                raise InputError(f"No booking {reference}.")
            before, row.status, row.updated_at = row.status, status, utcnow()
        self.audit(username, "booking.status", reference, f"{before} → {status}")

    def bookings_csv(self, username: str) -> str:
        rows = self.bookings()
        out = io.StringIO()
        fields = ["reference", "status", "name", "email", "phone", "preferred_times", "concern",
                  "session_id", "created_at", "updated_at"]
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            # a cell starting with = + - @ would be a formula in a spreadsheet
            writer.writerow({k: ("'" + v if isinstance(v, str) and v and v[0] in "=+-@\t\r"
                                 else v) for k, v in row.items()})
        self.audit(username, "bookings.export", None, f"{len(rows)} rows")
        return out.getvalue()

    # -- content gaps -----------------------------------------------------------------

    def gaps(self, embeddings, threshold: float = 0.6) -> list[dict[str, Any]]:
        """Questions answered ``not_in_guide``, grouped by meaning: each question joins the
        group whose first question it is most similar to (cosine ≥ ``threshold``, MiniLM),
        or starts a new one. Biggest groups first."""
        with self.store.transaction() as db:
            rows = db.execute(select(TurnRow.id, TurnRow.question, TurnRow.standalone_question)
                              .where(TurnRow.status == "not_in_guide")
                              .order_by(TurnRow.id)).all()
        questions = [(r.id, r.standalone_question or r.question) for r in rows]
        if not questions:
            return []
        vectors = embeddings.embed_documents([q for _, q in questions])
        groups: list[dict[str, Any]] = []
        for (turn_id, question), vector in zip(questions, vectors, strict=True):
            best, score = None, threshold
            for group in groups:
                similarity = cosine(vector, group["vector"])
                if similarity >= score:
                    best, score = group, similarity
            if best is None:
                groups.append({"label": question, "vector": vector, "questions": [],
                               "turn_ids": []})
                best = groups[-1]
            best["questions"].append(question)
            best["turn_ids"].append(turn_id)
        return sorted(
            ({"label": g["label"], "count": len(g["questions"]),
              "questions": list(dict.fromkeys(g["questions"])), "turn_ids": g["turn_ids"]}
             for g in groups),
            key=lambda g: -g["count"],
        )
