"""Triage: recall on urgent and crisis messages, false alarms on near misses, per
category and per language.

The cases are ``eval/safety.jsonl`` (the development set) and
``eval/safety_holdout.jsonl`` (written apart from the triage and never used to tune
it); each is a patient's latest message with their earlier messages, the expected
route (``urgent``, ``crisis`` or ``question``), a category and a language. The
ordinary questions of the answer eval are near misses too. Every message goes through
``Triage.assess``, the same call the front desk makes. A crisis message routed to the
urgent reply alone counts as routed (recall) but not as a crisis hit (``crisis_recall``);
one given both replies (triage split between the two) counts as a hit.

A false alarm is any near miss that gets the fixed reply; ``firm`` ones had it instead
of their answer (the rest got it as a notice before the answer: triage leaned to a
risk without being sure).

``model_off`` runs the same cases with the model check failing on every call: what the
patterns and the screen alone route (the fail-safe path).

:func:`suite` is ``scarguide eval``'s safety suite: the same cases end to end through a
target (the assistant or a server), urgent recall and false alarms of the routes shown.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from assistant.config import PACKAGE_ROOT
from assistant.errors import ScarguideError
from assistant.evals import load_jsonl, percentile
from assistant.evals.metrics import ratio
from assistant.evals.outcome import Case, Outcome
from assistant.evals.targets import Target, play
from assistant.safety import clean_message
from assistant.triage import CheckFailed, Triage

if TYPE_CHECKING:
    from assistant.evals.harness import Harness

DEFAULT_CASES = PACKAGE_ROOT / "eval" / "safety.jsonl"
HOLDOUT_CASES = PACKAGE_ROOT / "eval" / "safety_holdout.jsonl"
ORDINARY = PACKAGE_ROOT / "eval" / "answers.jsonl"


class SafetyCase(BaseModel):
    id: str
    text: str
    history: list[str] = Field(default_factory=list)
    expected: Literal["urgent", "crisis", "question"]
    kind: str
    lang: str = "en"


class _AnswerCase(BaseModel):
    id: str
    conversation: list[str]
    expected_status: str

    model_config = {"extra": "ignore"}


class Tally(BaseModel):
    risky: int = 0
    routed: int = 0
    crisis: int = 0
    crisis_hits: int = 0
    near_misses: int = 0
    false_alarms: int = 0
    firm_false_alarms: int = 0
    language_right: int = 0
    cases: int = 0

    @property
    def recall(self) -> float | None:
        return round(self.routed / self.risky, 4) if self.risky else None

    @property
    def false_alarm_rate(self) -> float | None:
        return round(self.false_alarms / self.near_misses, 4) if self.near_misses else None

    def summary(self) -> dict[str, float | int | None]:
        return {
            "risky": self.risky, "recall": self.recall,
            "crisis_recall": round(self.crisis_hits / self.crisis, 4) if self.crisis else None,
            "near_misses": self.near_misses, "false_alarm_rate": self.false_alarm_rate,
            "firm_false_alarm_rate": round(self.firm_false_alarms / self.near_misses, 4)
            if self.near_misses else None,
            "reply_language": round(self.language_right / self.cases, 4) if self.cases else None,
        }


class SafetyResult(BaseModel):
    sets: dict[str, dict] = Field(description="dev, holdout, all: recall and false alarms.")
    by_kind: dict[str, dict]
    by_language: dict[str, dict]
    by_layer: dict[str, int]
    checks: dict[str, int]
    missed: list[str]
    false_alarms: list[str]
    wrong_reply: list[str] = Field(description="Crisis messages given the urgent reply alone.")
    latency_ms: dict[str, float | None]
    model_off: bool = False

    @property
    def recall(self) -> float | None:
        return self.sets["all"]["recall"]

    @property
    def false_alarm_rate(self) -> float | None:
        return self.sets["all"]["false_alarm_rate"]


class _Failing:
    """A model check that fails on every call (the fail-safe path)."""

    def scores(self, *args, **kwargs):
        raise CheckFailed("error", "model check off")


def load_cases(paths: list[Path]) -> list[tuple[str, SafetyCase]]:
    out = []
    for path in paths:
        name = "holdout" if "holdout" in path.name else "dev"
        out += [(name, case) for case in load_jsonl(path, SafetyCase)]
    return out


def ordinary_questions(path: Path = ORDINARY) -> list[SafetyCase]:
    """The answer eval's questions (each turn read with the turns before it)."""
    out = []
    for case in load_jsonl(path, _AnswerCase):
        if case.expected_status == "urgent":
            continue
        for i, message in enumerate(case.conversation):
            out.append(SafetyCase(id=f"{case.id}.{i + 1}", text=message,
                                  history=case.conversation[:i], expected="question",
                                  kind="answer_eval", lang="en"))
    return out


def evaluate(
    triage: Triage,
    paths: list[Path] | None = None,
    ordinary_path: Path | None = ORDINARY,
    model_off: bool = False,
    progress=None,
) -> SafetyResult:
    cases = load_cases(paths or [p for p in (DEFAULT_CASES, HOLDOUT_CASES) if p.exists()])
    if ordinary_path is not None:
        cases += [("dev", c) for c in ordinary_questions(ordinary_path)]
    check = triage.check
    if not model_off:
        triage.warm()  # the first case must not pay for the model's prefix
    if model_off:
        triage.check = _Failing()  # type: ignore[assignment]
    tallies: dict[str, Tally] = defaultdict(Tally)
    layers: dict[str, int] = defaultdict(int)
    checks: dict[str, int] = defaultdict(int)
    missed, alarms, wrong, times = [], [], [], []
    try:
        for split, case in cases:
            text = clean_message(case.text, 100_000)
            result = triage.assess(text, [clean_message(h, 100_000) for h in case.history])
            times.append(result.ms)
            layers[result.layer] += 1
            checks[result.check] += 1
            groups = [split, "all", f"kind:{case.kind}", f"lang:{case.lang}"]
            for group in groups:
                t = tallies[group]
                t.cases += 1
                t.language_right += result.language == case.lang
                if case.expected == "question":
                    t.near_misses += 1
                    t.false_alarms += result.routed
                    t.firm_false_alarms += result.routed and result.firm
                else:
                    t.risky += 1
                    t.routed += result.routed
                    if case.expected == "crisis":
                        t.crisis += 1
                        t.crisis_hits += "crisis" in result.replies
            label = f"{case.id} [{case.lang}/{case.kind}]"
            if case.expected == "question" and result.routed:
                firm = "replaced the answer" if result.firm else "notice before the answer"
                alarms.append(f"{label} -> {result.route} ({result.layer}, {firm}): {case.text}")
            elif case.expected != "question" and not result.routed:
                missed.append(f"{label} {result.scores}: {case.text}")
            elif case.expected == "crisis" and "crisis" not in result.replies:
                wrong.append(f"{label}: {case.text}")
            if progress is not None:
                progress()
    finally:
        triage.check = check
    return SafetyResult(
        sets={k: tallies[k].summary() for k in ("dev", "holdout", "all") if k in tallies},
        by_kind={k[5:]: v.summary() for k, v in sorted(tallies.items()) if k.startswith("kind:")},
        by_language={k[5:]: v.summary() for k, v in sorted(tallies.items())
                     if k.startswith("lang:")},
        by_layer=dict(layers),
        checks=dict(checks),
        missed=missed,
        false_alarms=alarms,
        wrong_reply=wrong,
        latency_ms={"p50": percentile(times, 50), "p95": percentile(times, 95),
                    "max": max(times) if times else None},
        model_off=model_off,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render(result: SafetyResult) -> str:
    lines = ["triage" + (" with the model check failing (fail-safe path)" if result.model_off
                         else "")]
    head = (f"{'':22} {'risky':>6} {'recall':>7} {'crisis':>7} {'near':>5} {'false':>7} "
            f"{'firm':>6} {'lang':>6}")
    for title, rows in (("set", result.sets), ("language", result.by_language),
                        ("category", result.by_kind)):
        lines += ["", f"by {title}", head]
        for name, row in rows.items():
            lines.append(
                f"{name:22} {row['risky']:>6} {_pct(row['recall']):>7} "
                f"{_pct(row['crisis_recall']):>7} {row['near_misses']:>5} "
                f"{_pct(row['false_alarm_rate']):>7} {_pct(row['firm_false_alarm_rate']):>6} "
                f"{_pct(row['reply_language']):>6}"
            )
    lines += ["", f"layers: {result.by_layer}; model checks: {result.checks}",
              f"triage latency ms: p50 {result.latency_ms['p50']} p95 {result.latency_ms['p95']}"
              f" max {result.latency_ms['max']}"]
    lines += [f"  missed {m}" for m in result.missed]
    lines += [f"  false alarm {m}" for m in result.false_alarms]
    lines += [f"  urgent reply only for crisis {m}" for m in result.wrong_reply]
    return "\n".join(lines)


def to_json(result: SafetyResult) -> str:
    return json.dumps(result.model_dump(), indent=2, ensure_ascii=False)


def write(result: SafetyResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(result) + "\n", encoding="utf-8")


def suite(h: Harness) -> Outcome:
    """``scarguide eval``'s safety suite, end to end through the harness's target: each
    case's earlier messages first, in one conversation, then the message itself (the dev
    and the held-out sets). Its near misses are handed back for the false-alarm rate,
    which the harness reckons with the answers suite's ordinary questions when both run."""
    out = Outcome()
    everything = [c for _, c in load_cases(
        [p for p in (DEFAULT_CASES, HOLDOUT_CASES) if p.exists()]
    )]
    red = [c for c in everything if c.expected != "question"][: h.n("safety")]
    near = [c for c in everything if c.expected == "question"][: h.n("safety_near_misses")]
    bar = h.progress("safety", len(red) + len(near))
    hits = 0
    for case in red:
        status = _status(h.target, case.text, case.history)
        ok = status == "urgent"
        hits += ok
        out.cases.append(Case("safety", case.id, case.text, ok, status,
                              reasons=[] if ok else [f"routed {status}"]))
        h.tick(bar)
    alarms = 0
    for case in near:
        status = _status(h.target, case.text, case.history)
        alarms += status == "urgent"
        out.cases.append(Case("safety", case.id, case.text, status != "urgent", status,
                              reasons=["false alarm"] if status == "urgent" else []))
        h.tick(bar)
    out.metrics["urgent_recall"] = ratio(hits, len(red))
    out.metrics["false_alarm_rate"] = ratio(alarms, len(near))
    out.near_misses = (len(near), alarms)
    return out


def _status(target: Target, message: str, history: list[str] | None = None) -> str:
    try:
        record = play(target, [*(history or []), message])
        return "urgent" if record.notice else record.status  # the fixed reply came first
    except ScarguideError:
        return "error"
