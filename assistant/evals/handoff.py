"""The handoff suite of ``scarguide eval`` (``eval/handoff.jsonl``): each conversation is
played on the target and, when its ending is ``end``, ended by the patient; it passes
when its last turn carries the handoff to a consultation.

handoff_rate = conversations whose last turn carries a handoff / conversations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from assistant.errors import ScarguideError
from assistant.evals import load_jsonl
from assistant.evals.metrics import ratio
from assistant.evals.outcome import Case, Outcome
from assistant.records import AnswerRecord

if TYPE_CHECKING:
    from assistant.evals.harness import Harness


class HandoffCase(BaseModel):
    id: str
    conversation: list[str] = Field(min_length=1)
    ending: str = Field(pattern="^(message|end)$")


def suite(h: Harness) -> Outcome:
    out = Outcome()
    cases = load_jsonl(h.eval_dir / "handoff.jsonl", HandoffCase)[: h.limit]
    bar = h.progress("handoff", len(cases))
    handed = 0
    for case in cases:
        status: str
        try:
            session: str | None = None
            record: AnswerRecord | None = None
            for message in case.conversation:
                record = h.target.ask(message, session)
                session = record.session_id
            if case.ending == "end" and record is not None and record.status != "handoff":
                record = h.target.end(record.session_id)
            ok = record is not None and record.handoff is not None
            answer = record.answer if record else ""
            status = record.status if record else ""
        except ScarguideError as exc:
            ok, answer, status = False, str(exc), "error"
        handed += ok
        out.cases.append(Case("handoff", case.id, " ⟶ ".join(case.conversation), ok,
                              status, answer, [] if ok else ["no handoff at the end"]))
        h.tick(bar)
    out.metrics["handoff_rate"] = ratio(handed, len(cases))
    return out
