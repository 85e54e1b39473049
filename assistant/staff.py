"""What support staff work with: the review queue, reviews, content gaps, booking
follow-up and whole conversations, on top of accounts, login sessions and the audit log
(``assistant/accounts.py``). The web pages (``web/staff.py``) and the CLI
(``scarguide staff``) are thin adapters over ``StaffDesk``; the queries are the store's
(``store.reviews``, ``store.bookings``, ``store.staff``)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

from assistant.accounts import Login, StaffAccounts
from assistant.embeddings import cosine
from assistant.errors import AuthError, InputError
from assistant.records import AnswerRecord
from assistant.store import BOOKING_STATUSES, PROBLEM_STATUSES, aware, booking_dict

__all__ = [
    "BOOKING_LABELS",
    "PROBLEM_STATUSES",
    "SESSION_ID_PATTERN",
    "STATUS_LABELS",
    "TURN_STATUSES",
    "AuthError",
    "Login",
    "StaffDesk",
    "booking_label",
    "faithfulness",
    "search_pattern",
    "status_label",
]

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


def status_label(status: str | None) -> str:
    return STATUS_LABELS.get(status or "", status or "")


def booking_label(status: str | None) -> str:
    return BOOKING_LABELS.get(status or "", status or "")


def search_pattern(text: str | None) -> re.Pattern[str] | None:
    """The text filter as a literal, case-insensitive pattern (what the SQL ``ILIKE`` of
    :func:`assistant.store.search.like_pattern` finds, over the same stripped text); None
    without one."""
    needle = (text or "").strip()
    return re.compile(re.escape(needle), re.IGNORECASE) if needle else None


def _iso(moment: datetime) -> str:
    return aware(moment).isoformat(timespec="seconds")


def faithfulness(record: dict[str, Any]) -> float | None:
    verdicts = record.get("verdicts") or []
    if not verdicts:
        return None
    return sum(bool(v.get("supported")) for v in verdicts) / len(verdicts)


def _problems(down: int, review: str | None, dropped: int, fallback: bool, status: str) -> int:
    """How much a turn needs attention (what the queue orders by, in SQL:
    :func:`assistant.store.queue_signals`)."""
    return (3 * down + 3 * (review == "incorrect") + dropped + fallback
            + (2 if status == "urgent" else 1 if status in PROBLEM_STATUSES else 0))


class StaffDesk(StaffAccounts):
    """The staff console's work; accounts, logins and the audit log are
    :class:`~assistant.accounts.StaffAccounts`'."""

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
        moment = None
        if since:
            try:
                moment = datetime.fromisoformat(since).replace(tzinfo=UTC)
            except ValueError:
                raise InputError("The date must look like 2026-11-26.") from None
        rows = self.store.reviews.queue(status, thumbs_down, dropped, low_faithfulness, moment,
                                        text, order, limit, offset)
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
                "created_at": _iso(row.created_at),
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
        found = self.store.reviews.turn(turn_id)
        if found is None:
            return None
        row, feedback, reviews = found
        return {"id": row.id, "created_at": _iso(row.created_at),
                "record": AnswerRecord.model_validate(row.record),
                "feedback": [{"rating": f.rating, "comment": f.comment, "at": _iso(f.created_at)}
                             for f in feedback],
                "reviews": [{"verdict": r.verdict, "note": r.note, "username": r.username,
                             "at": _iso(r.created_at)} for r in reviews],
                "faithfulness": faithfulness(row.record)}

    def review(self, username: str, turn_id: int, verdict: str, note: str | None) -> None:
        if verdict not in ("correct", "incorrect"):
            raise InputError("A review is correct or incorrect.")
        if not self.store.reviews.add(username, turn_id, verdict,
                                      (note or "").strip()[:2000] or None):
            raise InputError(f"No turn {turn_id}.")
        self.audit(username, f"review.{verdict}", f"turn {turn_id}", (note or "")[:200] or None)

    # -- bookings ---------------------------------------------------------------------

    def bookings(self, status: str | None = None, text: str | None = None,
                 limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Bookings, newest first: of one status, and/or with ``text`` in the name, email,
        phone, reference or concern (case-insensitive; a phone number also without its
        spaces, dashes, brackets or dots). Filtered in the database, then paged when
        ``limit`` is given."""
        return self.store.bookings.search(status, text, limit, offset)

    # -- a whole conversation ---------------------------------------------------------

    def conversation(self, session_id: str) -> dict[str, Any] | None:
        """Every turn of a conversation in order, each with its status, question (and the
        standalone rewrite), the shown answer, its citations' sections, the patient's
        feedback on it and the staff reviews; and the bookings made from it. None when
        there is no such conversation (or it was purged)."""
        found = self.store.reviews.conversation(session_id)
        if found is None:
            return None
        on_turn: dict[int, list[dict[str, Any]]] = {}
        for f in found.feedback:
            on_turn.setdefault(f.turn, []).append(
                {"rating": f.rating, "comment": f.comment, "at": _iso(f.created_at)})
        reviewed: dict[int, list[dict[str, Any]]] = {}
        for r in found.reviews:
            reviewed.setdefault(r.turn_id, []).append(
                {"verdict": r.verdict, "note": r.note, "username": r.username,
                 "at": _iso(r.created_at)})
        turns = []
        for row in found.turns:
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
                "review": reviewed[row.id][-1] if reviewed.get(row.id) else None,
            })
        session = found.session
        return {
            "session_id": session.id, "created_at": _iso(session.created_at),
            "updated_at": _iso(session.updated_at), "ended": bool(session.ended),
            "turns": turns, "bookings": [booking_dict(b) for b in found.bookings],
            # feedback on a turn number that was never stored (kept, not lost)
            "other_feedback": [f | {"turn": n} for n, fs in sorted(on_turn.items())
                               for f in fs],
        }

    def set_booking_status(self, username: str, reference: str, status: str) -> None:
        if status not in BOOKING_STATUSES:
            raise InputError(f"A booking's status is one of {', '.join(BOOKING_STATUSES)}.")
        before = self.store.bookings.set_status(reference, status)
        if before is None:
            raise InputError(f"No booking {reference}.")
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
        questions = self.store.reviews.not_in_guide()
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
