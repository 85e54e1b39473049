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
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from assistant.answer import Assistant
from assistant.errors import ConfigError
from assistant.evals import load_jsonl, percentile
from assistant.localise import template_patterns
from assistant.records import AnswerRecord

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


def _norm(text: str) -> str:
    text = text.lower().replace("’", "'").replace("–", "-").replace("—", "-")
    return " ".join(text.split())


def facts_present(answer: str, facts: list[list[str]]) -> bool:
    text = _norm(answer)
    return all(any(_norm(alt) in text for alt in fact) for fact in facts)


def forbidden_found(answer: str, forbidden: list[str]) -> list[str]:
    text = _norm(answer)
    return [f for f in forbidden if _norm(f) in text]


def numbers_not_in(answer: str, guide_text: str) -> list[str]:
    guide_numbers = set(re.findall(r"\d+(?:\.\d+)?", guide_text))
    shown = re.sub(r"\[\d+\]", " ", answer)
    return [n for n in re.findall(r"\d+(?:\.\d+)?", shown) if n not in guide_numbers]


def first_hit(record: AnswerRecord) -> str | None:
    """The chunk retrieval ranked first for the record's question (the checker lets a
    claim resting on it echo the patient's words)."""
    return record.retrieved[0].get("chunk_id") if record.retrieved else None


def unresolved_markers(record: AnswerRecord) -> list[int]:
    cited = {c.n for c in record.citations}
    return [int(n) for n in re.findall(r"\[(\d+)\]", record.answer) if int(n) not in cited]


def _flat(text: str) -> str:
    return " ".join(text.split())


def verbatim_counts(record: AnswerRecord, guide_text: str, templates) -> tuple[int, int]:
    """(verbatim sentences, shown sentences) of an answer: fixed template text at its
    start and end is set aside; the rest must be guide sentences, each with its marker."""
    if record.status in ("urgent", "declined", "handoff"):
        return 0, 0  # fixed replies, not answers
    text = _flat(record.answer)
    changed = True
    while changed and text:
        changed = False
        for pattern in templates:
            body = pattern.pattern.strip("^$")
            start = re.match(body + r"(?:\s+|$)", text, re.S)
            if start:
                text, changed = text[start.end():].strip(), True
                continue
            end = re.search(r"(?:^|\s)" + body.replace("(.+?)", "([^.]+?)") + "$", text, re.S)
            if end:
                text, changed = text[: end.start()].strip(), True
    by_n = {c.n: c for c in record.citations}
    guide = _flat(guide_text)
    pieces = re.findall(r"(.+?)((?:\s*\[\d+\])+)(?=\s|$)", text)
    leftover = re.sub(r"(.+?)((?:\s*\[\d+\])+)(?=\s|$)", " ", text).strip()
    good = 0
    for sentence, markers in pieces:
        numbers = [int(n) for n in re.findall(r"\d+", markers)]
        quotes = [_flat(by_n[n].quote) for n in numbers if n in by_n]
        sentence = _flat(sentence)
        good += bool(quotes) and all(q == sentence and q in guide for q in quotes)
    return good, len(pieces) + (1 if leftover else 0)


def shown_sentences(record: AnswerRecord) -> list[tuple[str, list[int]]]:
    """(sentence without markers, its marker numbers) for every shown sentence."""
    parts = re.findall(r"(.+?)((?:\s*\[\d+\])+)(?=\s|$)", record.answer)
    return [(s.strip(), [int(n) for n in re.findall(r"\d+", m)]) for s, m in parts]


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


def run_case(
    assistant: Assistant, case: AnswerCase, guide_text: str, templates=()
) -> CaseResult:
    session_id = None
    for message in case.conversation[:-1]:
        session_id = assistant.ask(message, session_id).session_id
    record = assistant.ask(case.conversation[-1], session_id)
    verbatim, shown = verbatim_counts(record, guide_text, templates)
    answered = case.expected_status == "answered"
    unsupported = 0
    sentences = shown_sentences(record) if record.status == "answered" else []
    by_n = {c.n: c for c in record.citations}
    first = first_hit(record)
    for sentence, numbers in sentences:
        chunks = [assistant.by_id[by_n[n].chunk_id] for n in numbers if n in by_n]
        question = record.standalone_question or record.question
        if not any(
            assistant.checker.check(
                sentence, c.text, c.section, question, c.chunk_id == first
            ).supported
            for c in chunks
        ):
            unsupported += 1
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
        sentences=len(sentences),
        unsupported=unsupported,
        total_ms=record.timings_ms.get("total", 0.0),
        first_sentence_ms=record.timings_ms.get("first_sentence"),
        verbatim=verbatim,
        shown=shown,
        expected_coverage=case.expected_coverage,
        coverage=record.coverage,
        record=record.model_dump(),
    )


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
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x / 1000:.2f} s"

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
        f"answered latency p50 / p95:     {ms(summary['answered_latency_p50_ms'])} / "
        f"{ms(summary['answered_latency_p95_ms'])}",
        f"first shown sentence p50 / p95: {ms(summary['first_sentence_p50_ms'])} / "
        f"{ms(summary['first_sentence_p95_ms'])}",
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

