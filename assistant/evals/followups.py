"""Follow-ups on written cases (``eval/followups.jsonl``).

Each case gives earlier user messages, a follow-up, the words what the patient reads
must contain (``must_mention``: each a list of alternatives; the answer and its cited
sections) and words that would show the reference resolved to the wrong topic
(``must_not_mention``). ``standalone`` is the case's own reading, for people.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from assistant.answer import Assistant
from assistant.evals import load_jsonl
from assistant.evals.metrics import facts_present, forbidden_found, ratio
from assistant.evals.outcome import Case, Outcome

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "eval" / "followups.jsonl"


class FollowUpCase(BaseModel):
    id: str
    history: list[str] = Field(min_length=1)
    question: str
    must_mention: list[list[str]] = Field(default_factory=list)
    must_not_mention: list[str] = Field(default_factory=list)
    standalone: str = ""


@dataclass
class FollowUpResult:
    id: str
    question: str
    rewrite: str
    passed: bool
    ms: float


def load_cases(path: Path = DEFAULT_CASES) -> list[FollowUpCase]:
    return load_jsonl(path, FollowUpCase)


def evaluate(assistant: Assistant, cases: list[FollowUpCase]) -> list[FollowUpResult]:
    """Play each case's history in a new conversation, then its follow-up; it passes when
    what the patient reads (the answer and its cited sections) names the topic."""
    results = []
    for case in cases:
        session_id = None
        for message in case.history:
            session_id = assistant.ask(message, session_id).session_id
        started = time.perf_counter()
        record = assistant.ask(case.question, session_id)
        ms = (time.perf_counter() - started) * 1000
        read = " ".join([record.answer, *(c.section for c in record.citations)])
        passed = facts_present(read, case.must_mention) and not forbidden_found(
            read, case.must_not_mention
        )
        shown = f"[{record.status}] {record.answer}"
        results.append(FollowUpResult(case.id, case.question, shown, passed, round(ms, 1)))
    return results


def render(results: list[FollowUpResult]) -> str:
    passed = sum(r.passed for r in results)
    share = 100 * passed / max(1, len(results))
    ms = sorted(r.ms for r in results)
    lines = [
        f"follow-ups answered on their topic: {passed}/{len(results)} ({share:.1f}%)",
        f"follow-up answer time p50: {ms[len(ms) // 2] / 1000:.2f} s" if ms else "",
    ]
    lines += [
        f"  {'ok ' if r.passed else 'BAD'} {r.id} {r.question!r} -> {r.rewrite!r}" for r in results
    ]
    return "\n".join(lines)


def to_dicts(results: list[FollowUpResult]) -> list[dict]:
    return [asdict(r) for r in results]


def suite(h) -> Outcome:
    """``scarguide eval``'s follow-ups suite (in process only)."""
    out = Outcome()
    if h.services is None:
        out.details["followups"] = "skipped: needs the in-process assistant"
        return out
    cases = load_cases()[: h.n("followups")]
    results = evaluate(h.services.assistant, cases)
    for r in results:
        out.cases.append(Case("followups", r.id, r.question, r.passed, answer=r.rewrite,
                              reasons=[] if r.passed else ["the answer lost the topic"]))
    out.metrics["followup_accuracy"] = ratio(sum(r.passed for r in results), len(results))
    return out
