"""Answer evaluation: the whole chain on written cases, with the metrics docs/answers.md reports.

Cases live in ``eval/answers.jsonl``: ``conversation`` (user messages; earlier ones
are played first in the same session, the last is scored), ``expected_status``,
``required_facts`` (each a list of alternative substrings, one must appear),
``forbidden`` (substrings that must not appear), ``expected_sections`` and ``kind``.

Metrics (over the scored turn of each case):
- key-fact pass: answered-expected cases whose answer contains every required fact;
- section citation: answered-expected cases citing at least one expected section;
- status accuracy by expected status (refusal accuracy = the ``not_in_guide`` row);
- unsupported-sentence rate: shown sentences the checker does not find supported by
  their cited quote's passage, over all shown sentences;
- answers with a number not in the guide; answers with an unresolved ``[n]`` marker;
- forbidden-content rate; latency p50/p95 (total and first shown sentence);
- verbatim rate: shown sentences that are the guide's own words (each ``[n]`` sentence is
  its citation's quote and that quote is in the guide) / shown sentences; text that is
  neither a cited guide sentence nor a fixed template (``prompts/answer_text.yaml``)
  counts against it;
- coverage accuracy: cases with an ``expected_coverage`` whose record says the same;
- closing handoff: ``handoff``-expected cases that end with the handoff.

The metric functions are :mod:`assistant.evals.metrics`. :func:`suite` is the same cases
in ``scarguide eval`` (on its target, in process or a server): each case's reasons, and
faithfulness and citation recall and precision of the shown sentences (the module
docstring of :mod:`assistant.evals.harness` defines them).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from assistant.answer import Assistant
from assistant.errors import ConfigError, ScarguideError
from assistant.evals import load_jsonl, percentile
from assistant.evals.metrics import (
    doses_not_in,
    facts_present,
    first_hit,
    forbidden_found,
    numbers_not_in,
    pct,
    ratio,
    secs,
    shown_sentences,
    stratified,
    unresolved_markers,
    verbatim_counts,
)
from assistant.evals.outcome import Case, Outcome
from assistant.evals.targets import InProcess, play
from assistant.localise import template_patterns
from assistant.records import AnswerRecord

if TYPE_CHECKING:
    from assistant.evals.harness import Harness

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "eval" / "answers.jsonl"
STATUSES = {"answered", "not_in_guide", "urgent", "declined", "handoff"}


class AnswerCase(BaseModel):
    id: str = Field(min_length=1)
    conversation: list[str] = Field(min_length=1)
    expected_status: str
    required_facts: list[list[str]] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)
    expected_sections: list[str] = Field(default_factory=list)
    kind: str = "single"
    expected_coverage: str | None = None


def load_cases(path: Path = DEFAULT_CASES) -> list[AnswerCase]:
    cases = load_jsonl(path, AnswerCase)
    for case in cases:
        if case.expected_status not in STATUSES:
            raise ConfigError(f"{path}: case {case.id}: unknown status {case.expected_status!r}")
    return cases


@dataclass
class CaseResult:
    id: str
    kind: str
    expected_status: str
    status: str
    answer: str
    status_ok: bool
    facts_ok: bool | None
    section_ok: bool | None
    forbidden: list[str]
    bad_numbers: list[str]
    unresolved: list[int]
    sentences: int
    unsupported: int
    total_ms: float
    first_sentence_ms: float | None
    verbatim: int = 0
    shown: int = 0
    expected_coverage: str | None = None
    coverage: str | None = None
    record: dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class Claim:
    """A shown sentence with its verdicts: ``entry`` as the eval report shows it,
    ``faithful`` when one cited passage alone supports it, ``passage`` the cited text."""

    entry: dict[str, Any]
    faithful: bool
    passage: str


def claims(record: AnswerRecord, checker, by_id: dict, full: bool = True) -> list[Claim]:
    """Each shown sentence of an answered record, checked against the passages it cites:
    each alone and, with ``full``, together and each one's need (citation recall and
    precision, ALCE)."""
    by_n = {c.n: c for c in record.citations}
    question = record.standalone_question or record.question
    first = first_hit(record)
    out = []
    for sentence, numbers in shown_sentences(record):
        cited = [by_n[n] for n in numbers if n in by_n and by_n[n].chunk_id in by_id]
        passages = [by_id[c.chunk_id] for c in cited]
        joint = "\n\n".join(p.text for p in passages)
        tops = [p.chunk_id == first for p in passages]
        together = full and bool(passages) and checker.check(
            sentence, joint, " ".join(p.section for p in passages), question, any(tops)
        ).supported
        alone = [
            checker.check(sentence, p.text, p.section, question, top).supported
            for p, top in zip(passages, tops, strict=True)
        ]
        precise = []
        for i, _passage in enumerate(passages if full else []):
            rest = [p for j, p in enumerate(passages) if j != i]
            needed = together and not (
                rest
                and checker.check(sentence, "\n\n".join(p.text for p in rest),
                                  " ".join(p.section for p in rest), question,
                                  any(p.chunk_id == first for p in rest)).supported
            )
            precise.append(alone[i] or needed)
        faithful = any(alone)
        entry = {
            "sentence": sentence,
            "cited": [c.model_dump() for c in cited],
            "checker": faithful or together,
            "citation_supported": together,
            "citations_precise": precise,
            "judge": None,
            "judge_reason": None,
        }
        out.append(Claim(entry, faithful, joint))
    return out


def score(case: AnswerCase, record: AnswerRecord, guide_text: str, templates,
          checked: list[Claim]) -> CaseResult:
    """One case's result from the record of its scored turn and its sentences' checks."""
    verbatim, shown = verbatim_counts(record, guide_text, templates)
    answered = case.expected_status == "answered"
    return CaseResult(
        id=case.id,
        kind=case.kind,
        expected_status=case.expected_status,
        status=record.status,
        answer=record.answer,
        status_ok=record.status == case.expected_status,
        facts_ok=(record.status == "answered" and facts_present(record.answer, case.required_facts))
        if answered
        else None,
        section_ok=any(c.section in case.expected_sections for c in record.citations)
        if answered
        else None,
        forbidden=forbidden_found(record.answer, case.forbidden),
        bad_numbers=numbers_not_in(record.answer, guide_text),
        unresolved=unresolved_markers(record),
        sentences=len(checked),
        unsupported=sum(not c.faithful for c in checked),
        total_ms=record.timings_ms.get("total", 0.0),
        first_sentence_ms=record.timings_ms.get("first_sentence"),
        verbatim=verbatim,
        shown=shown,
        expected_coverage=case.expected_coverage,
        coverage=record.coverage,
        record=record.model_dump(),
    )


def run_case(
    assistant: Assistant, case: AnswerCase, guide_text: str, templates=()
) -> CaseResult:
    """Play the case's conversation on the assistant in this process and score its last
    turn (``scarguide eval answers`` and ``eval languages``)."""
    record = play(InProcess(assistant), case.conversation)
    checked = (claims(record, assistant.checker, assistant.by_id, full=False)
               if record.status == "answered" else [])
    return score(case, record, guide_text, templates, checked)


def summarise(results: list[CaseResult], model: str) -> dict[str, Any]:
    answered = [r for r in results if r.expected_status == "answered"]
    by_status: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        by_status[r.expected_status].append(r.status_ok)
    shown = sum(r.sentences for r in results)
    totals = [r.total_ms for r in results if r.status == "answered"]
    firsts = [r.first_sentence_ms for r in results if r.first_sentence_ms is not None]
    with_coverage = [r for r in results if r.expected_coverage]
    closings = [r for r in results if r.expected_status == "handoff"]
    return {
        "model": model,
        "cases": len(results),
        "verbatim_rate": sum(r.verbatim for r in results) / max(1, sum(r.shown for r in results)),
        "shown_sentences": sum(r.shown for r in results),
        "coverage_accuracy": (
            sum(r.coverage == r.expected_coverage for r in with_coverage) / len(with_coverage)
        ) if with_coverage else None,
        "closing_handoff": (
            sum(r.status == "handoff" and r.record.get("handoff") is not None for r in closings)
            / len(closings)
        ) if closings else None,
        "key_fact_pass": sum(bool(r.facts_ok) for r in answered) / max(1, len(answered)),
        "section_citation": sum(bool(r.section_ok) for r in answered) / max(1, len(answered)),
        "status_accuracy": {k: sum(v) / len(v) for k, v in sorted(by_status.items())},
        "refusal_accuracy": (sum(by_status["not_in_guide"]) / len(by_status["not_in_guide"]))
        if by_status["not_in_guide"]
        else None,
        "unsupported_sentence_rate": sum(r.unsupported for r in results) / max(1, shown),
        "answers_with_number_not_in_guide": sum(1 for r in results if r.bad_numbers),
        "answers_with_unresolved_marker": sum(1 for r in results if r.unresolved),
        "forbidden_content_rate": sum(1 for r in results if r.forbidden) / max(1, len(results)),
        "answered_latency_p50_ms": percentile(totals, 50),
        "answered_latency_p95_ms": percentile(totals, 95),
        "first_sentence_p50_ms": percentile(firsts, 50),
        "first_sentence_p95_ms": percentile(firsts, 95),
    }


def render(summary: dict[str, Any], results: list[CaseResult]) -> str:
    lines = [
        f"model: {summary['model']}   cases: {summary['cases']}",
        f"key-fact pass:                  {pct(summary['key_fact_pass'])}",
        f"expected-section citation:      {pct(summary['section_citation'])}",
        f"refusal accuracy (out of scope): {pct(summary['refusal_accuracy'])}",
        "status accuracy: "
        + ", ".join(f"{k} {pct(v)}" for k, v in summary["status_accuracy"].items()),
        f"unsupported-sentence rate:      {pct(summary['unsupported_sentence_rate'])}",
        f"verbatim rate (guide's own words): {pct(summary['verbatim_rate'])} "
        f"of {summary['shown_sentences']} shown sentences",
        f"coverage accuracy:              {pct(summary['coverage_accuracy'])}",
        f"closing handoff:                {pct(summary['closing_handoff'])}",
        f"answers with a number not in the guide: {summary['answers_with_number_not_in_guide']}",
        f"answers with an unresolved [n]: {summary['answers_with_unresolved_marker']}",
        f"forbidden-content rate:         {pct(summary['forbidden_content_rate'])}",
        f"answered latency p50 / p95:     {secs(summary['answered_latency_p50_ms'])} / "
        f"{secs(summary['answered_latency_p95_ms'])}",
        f"first shown sentence p50 / p95: {secs(summary['first_sentence_p50_ms'])} / "
        f"{secs(summary['first_sentence_p95_ms'])}",
    ]
    failing = [
        r
        for r in results
        if not r.status_ok
        or r.facts_ok is False
        or r.section_ok is False
        or r.forbidden
        or r.bad_numbers
        or r.unresolved
        or r.verbatim < r.shown
        or (r.expected_coverage and r.coverage != r.expected_coverage)
    ]
    for r in failing:
        lines.append(
            f"  {r.id} [{r.kind}] expected {r.expected_status}, got {r.status}"
            f"{'' if r.facts_ok is not False else ', missing facts'}"
            f"{'' if r.section_ok is not False else ', wrong section'}"
            f"{'' if r.verbatim == r.shown else ', not verbatim'}"
            f"{'' if r.coverage == (r.expected_coverage or r.coverage) else ', ' + str(r.coverage)}"
            f"{', forbidden ' + str(r.forbidden) if r.forbidden else ''}: {r.answer[:140]}"
        )
    return "\n".join(lines)


def evaluate(
    assistant: Assistant, cases: list[AnswerCase]
) -> tuple[dict[str, Any], list[CaseResult]]:
    guide_text = " ".join(c.text for c in assistant.chunks)
    templates = template_patterns(assistant.settings.prompts_dir)
    results = [run_case(assistant, case, guide_text, templates) for case in cases]
    return summarise(results, assistant.model_name), results


def to_json(summary: dict[str, Any], results: list[CaseResult]) -> str:
    return json.dumps(
        {"summary": summary, "cases": [asdict(r) for r in results]},
        indent=2,
        ensure_ascii=False,
        default=str,
    )


@dataclass(frozen=True)
class _Scored:
    """One played case of :func:`suite` with its scores."""

    case: AnswerCase
    record: AnswerRecord
    result: CaseResult
    bad: bool


def suite(h: Harness) -> Outcome:
    """``scarguide eval``'s answers suite on the harness's target: each case's reasons,
    faithfulness and citation metrics of the shown sentences (with the second judge,
    :func:`assistant.evals.judge.faithfulness`), verbatim and model-answer rates."""
    from assistant.evals.judge import faithfulness

    out = Outcome(latencies={"latency": [], "first_sentence": []})
    cases = load_cases(h.eval_dir / "answers.jsonl")
    cases = stratified(cases, lambda c: c.expected_status, h.n("answers"))
    bar = h.progress("answers", len(cases))
    done: list[_Scored] = []
    sentences: list[dict[str, Any]] = []
    errors = 0
    for case in cases:
        try:
            record = play(h.target, case.conversation)
        except ScarguideError as exc:
            out.cases.append(Case("answers", case.id, case.conversation[-1], False,
                                  status="error", reasons=[str(exc)]))
            errors += 1
            h.tick(bar)
            continue
        checked = claims(record, h.checker, h.by_id) if record.status == "answered" else []
        sentences += [c.entry | {"passage": c.passage, "record_question": record.question}
                      for c in checked]
        result = score(case, record, h.guide_text, h.templates, checked)
        doses = doses_not_in(record.answer, h.guide_text)
        bad = result.forbidden + result.bad_numbers + doses
        reasons = []
        expects_answer = case.expected_status == "answered"
        if not result.status_ok:
            reasons.append(f"expected {case.expected_status}, got {record.status}")
        if expects_answer and record.status == "answered" and not result.facts_ok:
            reasons.append("a required fact is missing")
        if expects_answer and not result.section_ok:
            reasons.append("no expected section cited")
        if bad:
            reasons.append(f"forbidden content: {bad}")
        if record.status == "answered":
            out.latencies["latency"].append(result.total_ms)
            if result.first_sentence_ms is not None:
                out.latencies["first_sentence"].append(result.first_sentence_ms)
        done.append(_Scored(case, record, result, bool(bad)))
        out.cases.append(
            Case("answers", case.id, " ⟶ ".join(case.conversation), not reasons,
                 record.status, record.answer, reasons,
                 [c.model_dump() for c in record.citations], [c.entry for c in checked],
                 record.model_dump(mode="json"))
        )
        h.tick(bar)
    answerable = [r for r in done if r.case.expected_status == "answered"]
    refusals = [r for r in done if r.case.expected_status == "not_in_guide"]
    m = out.metrics
    m["key_fact_pass"] = ratio(sum(bool(r.result.facts_ok) for r in answerable),
                               len(answerable))
    m["section_citation"] = ratio(sum(bool(r.result.section_ok) for r in answerable),
                                  len(answerable))
    m["refusal_accuracy"] = ratio(
        sum(r.record.status == "not_in_guide" for r in refusals), len(refusals))
    m["forbidden_content_rate"] = ratio(sum(r.bad for r in done), len(done))
    m["verbatim_rate"] = ratio(sum(r.result.verbatim for r in done),
                               sum(r.result.shown for r in done))
    shown = [r.record for r in done if r.record.status == "answered"]
    m["model_answer_rate"] = ratio(
        sum((r.choice or {}).get("source") == "model" for r in shown), len(shown))
    ordinary = [r for r in done if r.case.expected_status != "urgent"]
    out.details["answers_false_alarms"] = [
        r.case.id for r in ordinary if r.record.status == "urgent"]
    out.details["answers_errors"] = errors
    out.near_misses = (len(ordinary), len(out.details["answers_false_alarms"]))
    metrics, details, disagreements = faithfulness(h, sentences)
    m.update(metrics)
    out.details.update(details)
    out.disagreements = disagreements
    return out
