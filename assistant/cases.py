"""Eval cases made from real conversations: staff (the console) or the CLI turn a stored
turn into an answer-eval case, personal details masked; the cases stay in the database
(``eval_cases``) until exported to a file in the format of ``eval/answers.jsonl``."""

from __future__ import annotations

from pathlib import Path

from assistant.errors import ConfigError
from assistant.evals.answers import STATUSES, AnswerCase, load_cases

EVAL_CASES_TABLE = "eval_cases"


def add_case(
    store,
    turn_id: int,
    path: Path | None = None,
    expected_status: str | None = None,
    sections: list[str] | None = None,
    facts: list[list[str]] | None = None,
    username: str = "cli",
) -> AnswerCase:
    """An answer-eval case made from a stored turn: the conversation up to that turn,
    the expected status (what staff say it should have been) and, optionally, expected
    sections and required facts. The patient's messages are scrubbed of personal details
    (:func:`assistant.logs.scrub`, with the names, emails and phones of the conversation's
    bookings). With no ``path`` (the staff console) the case goes to the database table
    ``eval_cases``, which only :func:`export_cases` writes to a file; with a ``path`` it
    is appended to that file, which is then checked by loading it again."""
    from sqlalchemy import select

    from assistant.logs import scrub
    from assistant.store import BookingRow, EvalCaseRow

    found = store.turn_by_id(turn_id)
    if found is None:
        raise ConfigError(f"No stored turn with id {turn_id}")
    record, earlier = found
    status = expected_status or record.status
    if status not in STATUSES:
        raise ConfigError(f"Unknown status {status!r}")
    if sections is None or (not sections and status == "answered" and expected_status is None):
        sections = list(dict.fromkeys(c.section for c in record.citations))
    case_id = f"turn-{turn_id}"
    with store.transaction() as db:
        bookings = db.execute(select(BookingRow.name, BookingRow.email, BookingRow.phone)
                              .where(BookingRow.session_id == record.session_id)).all()
    names = [b.name for b in bookings]
    values = [v for b in bookings for v in (b.email, b.phone)]

    def clean(text: str) -> str:
        return scrub(text, names, values)

    case = AnswerCase(
        id=case_id,
        conversation=[clean(m) for m in (*earlier, record.question)],
        expected_status=status,
        required_facts=[[clean(alt) for alt in fact] for fact in facts or []],
        expected_sections=sections if status == "answered" else [],
        kind="from-staff",
    )
    if path is None:
        with store.transaction() as db:
            if db.scalar(select(EvalCaseRow.id).where(EvalCaseRow.turn_id == turn_id)):
                raise ConfigError(f"The eval cases already have a case {case_id}")
            db.add(EvalCaseRow(turn_id=turn_id, case=case.model_dump(mode="json"),
                               username=(username or "?")[:64]))
        return case
    existing = {c.id for c in load_cases(path)} if path.exists() else set()
    if case_id in existing:
        raise ConfigError(f"{path} already has a case {case_id}")
    with path.open("a", encoding="utf-8") as f:
        f.write(case.model_dump_json() + "\n")
    load_cases(path)  # the file still loads, schema and ids checked
    return case


def stored_cases(store) -> list[AnswerCase]:
    """The eval cases staff added from the console, oldest first."""
    from sqlalchemy import select

    from assistant.store import EvalCaseRow

    with store.transaction() as db:
        rows = db.scalars(select(EvalCaseRow.case).order_by(EvalCaseRow.id)).all()
    return [AnswerCase.model_validate(row) for row in rows]


def export_cases(store, out: Path) -> int:
    """Write the stored eval cases to ``out`` as JSON lines, the format of
    ``eval/answers.jsonl`` (the file is replaced, then checked by loading it); how many."""
    cases = stored_cases(store)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(c.model_dump_json() + "\n" for c in cases), encoding="utf-8")
    load_cases(out)
    return len(cases)
