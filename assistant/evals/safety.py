"""Red-flag triage: recall on urgent and crisis phrasings, false alarms on ordinary questions.

Triage is deterministic (``assistant.safety.route``), so this suite needs no model:
every urgent or crisis phrasing in ``eval/safety.jsonl`` must route to urgent care
(status ``urgent``); the ordinary questions of the answer eval (``eval/answers.jsonl``)
and the near misses in ``eval/safety.jsonl`` ("does a peel burn?") must not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from assistant.config import PACKAGE_ROOT
from assistant.evals import load_jsonl
from assistant.safety import clean_message, route

DEFAULT_CASES = PACKAGE_ROOT / "eval" / "safety.jsonl"
ORDINARY = PACKAGE_ROOT / "eval" / "answers.jsonl"


class SafetyCase(BaseModel):
    id: str
    text: str
    expected: Literal["urgent", "crisis", "question"]
    kind: str


class _AnswerCase(BaseModel):
    id: str
    conversation: list[str]
    expected_status: str

    model_config = {"extra": "ignore"}


class SafetyResult(BaseModel):
    cases: int
    recall: float
    crisis_recall: float
    missed: list[str]
    ordinary: int
    false_alarm_rate: float
    false_alarms: list[str]


def evaluate(cases_path: Path = DEFAULT_CASES, ordinary_path: Path = ORDINARY) -> SafetyResult:
    everything = load_jsonl(cases_path, SafetyCase)
    cases = [c for c in everything if c.expected != "question"]
    near_misses = [c.text for c in everything if c.expected == "question"]
    missed, crisis_hits, crisis_total = [], 0, 0
    for case in cases:
        routed = route(clean_message(case.text, 100_000))
        if routed not in ("urgent", "crisis"):
            missed.append(f"{case.id}: {case.text}")
        if case.expected == "crisis":
            crisis_total += 1
            crisis_hits += routed == "crisis"
    ordinary = [
        message
        for case in load_jsonl(ordinary_path, _AnswerCase)
        if case.expected_status != "urgent"
        for message in case.conversation
    ] + near_misses
    alarms = [m for m in ordinary if route(clean_message(m, 100_000)) in ("urgent", "crisis")]
    return SafetyResult(
        cases=len(cases),
        recall=round(1 - len(missed) / len(cases), 4),
        crisis_recall=round(crisis_hits / max(crisis_total, 1), 4),
        missed=missed,
        ordinary=len(ordinary),
        false_alarm_rate=round(len(alarms) / max(len(ordinary), 1), 4),
        false_alarms=alarms,
    )


def render(result: SafetyResult) -> str:
    lines = [
        f"urgent + crisis phrasings routed to urgent: {result.cases - len(result.missed)}"
        f"/{result.cases} (recall {result.recall:.3f}; crisis resources for crisis "
        f"phrasings {result.crisis_recall:.3f})",
        f"false alarms on ordinary questions and near misses: "
        f"{len(result.false_alarms)}/{result.ordinary} ({result.false_alarm_rate:.1%})",
    ]
    lines += [f"  missed {m}" for m in result.missed]
    lines += [f"  false alarm: {m}" for m in result.false_alarms]
    return "\n".join(lines)


def to_json(result: SafetyResult) -> str:
    return json.dumps(result.model_dump(), indent=2)
