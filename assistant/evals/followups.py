"""Follow-up rewriting on written cases (``eval/followups.jsonl``).

Each case gives earlier user messages, a follow-up, the words the standalone
rewrite must contain (``must_mention``: each a list of alternatives) and words
that would show it resolved the reference to the wrong topic (``must_not_mention``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from assistant.answer import Assistant
from assistant.evals import load_jsonl
from assistant.evals.answers import facts_present, forbidden_found
from assistant.sessions import Session, TurnSummary, new_session_id

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
    results = []
    for case in cases:
        session = Session(
            session_id=new_session_id(),
            turns=[
                TurnSummary(question=h, standalone_question=h, status="answered")
                for h in case.history
            ],
        )
        started = time.perf_counter()
        rewrite = assistant.condense(case.question, session)
        ms = (time.perf_counter() - started) * 1000
        passed = facts_present(rewrite, case.must_mention) and not forbidden_found(
            rewrite, case.must_not_mention
        )
        results.append(FollowUpResult(case.id, case.question, rewrite, passed, round(ms, 1)))
    return results


def render(results: list[FollowUpResult]) -> str:
    passed = sum(r.passed for r in results)
    share = 100 * passed / max(1, len(results))
    ms = sorted(r.ms for r in results)
    lines = [
        f"follow-up rewrites passing: {passed}/{len(results)} ({share:.1f}%)",
        f"rewrite time p50: {ms[len(ms) // 2] / 1000:.2f} s" if ms else "",
    ]
    lines += [
        f"  {'ok ' if r.passed else 'BAD'} {r.id} {r.question!r} -> {r.rewrite!r}" for r in results
    ]
    return "\n".join(lines)


def to_dicts(results: list[FollowUpResult]) -> list[dict]:
    return [asdict(r) for r in results]
