"""The languages suite: patients' questions in other languages (``eval/languages.jsonl``).

Each case is run as the answers suite runs it (``assistant.evals.answers.run_case``), so
key facts are checked on the English guide sentences the answer cites and refusals as
there. On top, per language: key-fact pass, refusal accuracy and latency; and of every
cited sentence's automatic translation: how many passed their check, and that none that
failed was shown (``shown_unchecked`` must be 0).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import Field

from assistant.answer import Assistant
from assistant.evals import answers, load_jsonl, percentile
from assistant.evals.answers import AnswerCase, CaseResult
from assistant.evals.metrics import pct, secs, stratified
from assistant.evals.outcome import Case, Outcome
from assistant.localise import template_patterns

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "eval" / "languages.jsonl"


class LanguageCase(AnswerCase):
    lang: str = Field(min_length=2, max_length=3)


def load_cases(path: Path = DEFAULT_CASES) -> list[LanguageCase]:
    answers.load_cases(path)  # the answers suite's checks of each case
    return load_jsonl(path, LanguageCase)


def _share(hits: list[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


def summarise(cases: list[LanguageCase], results: list[CaseResult],
              model: str) -> dict[str, Any]:
    lang_of = {c.id: c.lang for c in cases}
    summary = answers.summarise(results, model)
    translations = [t for r in results for t in r.record.get("translations", [])]
    passed = [t for t in translations if t["passed"]]
    summary["translations"] = len(translations)
    summary["translation_check_pass"] = _share([t["passed"] for t in translations])
    # a translation that failed its check but reached the patient as if it were fine
    summary["shown_unchecked"] = sum(
        1 for t in translations if not t["passed"] and t["text"] and t["shown"] == t["text"])
    summary["translation_similarity_p50"] = percentile(
        [t["similarity"] for t in passed if t["similarity"] is not None], 50)
    answered_with_text = [r for r in results if r.record.get("translations")]
    summary["answers_in_language"] = _share(
        [r.record.get("language") == lang_of[r.id] for r in results])
    per: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        p = per[lang_of[r.id]]
        if r.expected_status == "answered":
            p["facts"].append(bool(r.facts_ok))
        if r.expected_status == "not_in_guide":
            p["refusals"].append(r.status == "not_in_guide")
        p["right"].append(r.status_ok and r.facts_ok is not False)
        if r.status in ("answered", "not_in_guide"):
            p["latency"].append(r.total_ms)
        for t in r.record.get("translations", []):
            p["translations"].append(t["passed"])
    summary["per_language"] = {
        lang: {
            "cases": len(p["right"]),
            "right": sum(p["right"]),
            "key_fact_pass": _share(p["facts"]),
            "refusal_accuracy": _share(p["refusals"]),
            "translation_check_pass": _share(p["translations"]),
            "latency_p50_ms": percentile(p["latency"], 50),
        }
        for lang, p in sorted(per.items())
    }
    summary["translated_answers"] = len(answered_with_text)
    return summary


def evaluate(assistant: Assistant,
             cases: list[LanguageCase]) -> tuple[dict[str, Any], list[CaseResult]]:
    guide_text = " ".join(c.text for c in assistant.chunks)
    templates = template_patterns(assistant.settings.prompts_dir)
    results = [answers.run_case(assistant, case, guide_text, templates) for case in cases]
    return summarise(cases, results, assistant.model_name), results


def render(summary: dict[str, Any], results: list[CaseResult]) -> str:
    lines = [
        answers.render(summary, results),
        f"translations checked:           {summary['translations']} "
        f"(passed {pct(summary['translation_check_pass'])}; a failed one shown: "
        f"{summary['shown_unchecked']})",
        f"answers in the patient's language: {pct(summary['answers_in_language'])}",
        "per language: cases right, key-fact pass, refusal accuracy, translations passed, "
        "latency p50",
    ]
    for lang, p in summary["per_language"].items():
        lines.append(
            f"  {lang}: {p['right']}/{p['cases']}, {pct(p['key_fact_pass'])}, "
            f"{pct(p['refusal_accuracy'])}, {pct(p['translation_check_pass'])}, "
            f"{secs(p['latency_p50_ms'], 1)}")
    return "\n".join(lines)


def to_json(summary: dict[str, Any], results: list[CaseResult]) -> str:
    return json.dumps({"summary": summary, "cases": [asdict(r) for r in results]},
                      indent=2, ensure_ascii=False, default=str)


def suite(h) -> Outcome:
    """``scarguide eval``'s languages suite (in process only): :func:`evaluate` on a
    stratified subset, one case a line, the headline numbers as metrics."""
    out = Outcome()
    if h.services is None:
        out.details["languages"] = "skipped: needs the in-process assistant"
        return out
    cases = stratified(load_cases(), lambda c: c.lang, h.n("languages"))
    summary, results = evaluate(h.services.assistant, cases)
    for case, r in zip(cases, results, strict=True):
        ok = r.status_ok and r.facts_ok is not False
        out.cases.append(Case("languages", r.id, " ⟶ ".join(case.conversation), ok,
                              r.status, r.answer,
                              [] if ok else [f"expected {r.expected_status}, got "
                                             f"{r.status}" + ("" if r.facts_ok is not False
                                                              else ", a key fact missing")],
                              record=r.record))
    out.metrics.update({
        "languages_key_fact_pass": summary["key_fact_pass"],
        "languages_refusal_accuracy": summary["refusal_accuracy"],
        "translation_check_pass": summary["translation_check_pass"],
        "translations_shown_unchecked": summary["shown_unchecked"],
        "languages_latency_p50_ms": summary["answered_latency_p50_ms"],
    })
    out.details["languages_per_language"] = summary["per_language"]
    return out
