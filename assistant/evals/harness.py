"""``scarguide eval``: every suite in one run, one results file, one report, one gate.

Suites: retrieval, answers (with faithfulness, citations and the second judge), safety,
attacks, follow-ups and handoff. They run against the in-process assistant or, with
``--url``, a running server through its REST API (retrieval and follow-ups need the
in-process assistant: they look at stages the API does not return).

Metrics (each a number in [0, 1] unless it is a latency):
- faithfulness = supported shown sentences / shown sentences, each sentence judged
  against the passages it cites (checker; ``judge_faithfulness`` by the second judge);
- citation_recall = shown sentences whose cited passages together support them / shown
  sentences; citation_precision = citations that support their sentence alone or are
  needed for it (without them the rest no longer supports it) / citations (ALCE);
- hit_at_1, hit_at_3, mrr, ndcg_at_5 of the retriever (see ``evals.retrieval``);
- key_fact_pass = answerable cases whose answer holds every required fact / answerable
  cases; section_citation = answerable cases citing an expected section / answerable;
  forbidden_content_rate = answers with a forbidden string, a number not in the guide or a
  dose-like quantity / answers;
- refusal_accuracy = out-of-guide cases answered ``not_in_guide`` / out-of-guide cases;
- urgent_recall = urgent and crisis phrasings answered ``urgent`` / phrasings;
  false_alarm_rate = ordinary messages answered ``urgent`` / ordinary messages;
- attack_success_rate = attack prompts that succeed / attack prompts (``evals.attacks``);
- followup_accuracy = follow-ups answered from their topic (the answer or its cited
  sections name it) / follow-ups;
- handoff_rate = conversations whose last turn carries a handoff / conversations;
- verbatim_rate = shown sentences that are the guide's own words (each cited sentence is its
  citation's quote, found in the guide) / shown sentences, fixed templates set aside;
- model_answer_rate = answered questions whose passages the model chose / answered
  questions; the rest fell back to the retriever's ranking (a model that replies nonsense
  is caught here, even when the answer shown is fine);
- latency_p50_ms, latency_p95_ms, first_sentence_p50_ms of answered questions.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from assistant.config import PACKAGE_ROOT, Settings
from assistant.corpus import Chunk
from assistant.errors import ConfigError, ScarguideError
from assistant.evals import answers as answers_suite
from assistant.evals import attacks as attacks_suite
from assistant.evals import load_jsonl, percentile
from assistant.evals import safety as safety_suite
from assistant.evals.judge import LLMJudge, agreement
from assistant.localise import template_patterns
from assistant.records import AnswerRecord
from assistant.verify import ClaimChecker

EVAL_DIR = PACKAGE_ROOT / "eval"
BASELINE = EVAL_DIR / "baseline.json"
SUITES = ("retrieval", "answers", "safety", "attacks", "followups", "handoff", "languages")
# quick mode: a fixed, stratified subset that runs in a few minutes on the default model
QUICK = {"answers": 14, "attacks": 12, "followups": 6, "safety": 20, "safety_near_misses": 6,
         "calibration": 12, "languages": 6}
LOWER_IS_BETTER = {"forbidden_content_rate", "false_alarm_rate", "attack_success_rate",
                   "translations_shown_unchecked"}
_DOSE = re.compile(r"\d+(?:[.,]\d+)?\s*(?:mg|mcg|ml|%|percent|units?|iu|mm)\b", re.I)


# -- targets: the assistant in this process, or a server ------------------------------


class Target(Protocol):
    name: str

    def ask(self, message: str, session_id: str | None = None) -> AnswerRecord: ...
    def end(self, session_id: str) -> AnswerRecord: ...


class InProcess:
    def __init__(self, assistant) -> None:
        self.assistant = assistant
        self.name = f"in-process ({assistant.model_name})"

    def ask(self, message: str, session_id: str | None = None) -> AnswerRecord:
        return self.assistant.ask(message, session_id)

    def end(self, session_id: str) -> AnswerRecord:
        return self.assistant.end(session_id)


def _code(response) -> str | None:
    try:
        return response.json().get("error", {}).get("code")
    except ValueError:
        return None


class Remote:
    """A running server, through ``POST /api/chat`` and ``/api/sessions/{id}/end``."""

    def __init__(self, url: str, timeout: float = 300.0) -> None:
        import httpx

        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.name = f"server {url}"

    def _post(self, path: str, body: dict | None = None) -> dict:
        for _ in range(20):
            response = self.client.post(path, json=body)
            busy = response.status_code == 503 and _code(response) == "busy"
            if response.status_code == 429 or busy:  # rate limit or a full line: wait as told
                time.sleep(float(response.headers.get("Retry-After", "2")))
                continue
            if response.status_code >= 400:
                error = response.json().get("error", {})
                raise ScarguideError(f"{path}: {response.status_code} {error.get('code')}")
            return response.json()
        raise ScarguideError(f"{path}: still rate limited")

    def ask(self, message: str, session_id: str | None = None) -> AnswerRecord:
        body = self._post("/api/chat", {"message": message, "session_id": session_id})
        return AnswerRecord(**body, question=message)

    def end(self, session_id: str) -> AnswerRecord:
        body = self._post(f"/api/sessions/{session_id}/end")
        return AnswerRecord(**body, answer=body["handoff"]["message"], turn=0,
                            question="[end of conversation]")


# -- per-case results ------------------------------------------------------------------


@dataclass
class Case:
    suite: str
    id: str
    input: str
    passed: bool
    status: str = ""
    answer: str = ""
    reasons: list[str] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    sentences: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Run(BaseModel):
    started: str
    target: str
    model: str
    mode: str
    suites: list[str]
    metrics: dict[str, float | None] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    cases: list[dict[str, Any]] = Field(default_factory=list)
    disagreements: list[dict[str, Any]] = Field(default_factory=list)
    gate: dict[str, Any] | None = None
    seconds: float = 0.0


def _stratified(items: list, key: Callable[[Any], str], n: int | None) -> list:
    """The first ``n`` items taking one of each kind in turn (a fair quick subset)."""
    if n is None or n >= len(items):
        return items
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    chosen: list = []
    while len(chosen) < n:
        for group in groups.values():
            if group and len(chosen) < n:
                chosen.append(group.pop(0))
    return chosen


# -- the harness ------------------------------------------------------------------------


class Harness:
    def __init__(
        self,
        settings: Settings,
        target: Target,
        chunks: list[Chunk],
        checker: ClaimChecker,
        judge: LLMJudge | None,
        services=None,
        quick: bool = False,
        limit: int | None = None,
        progress: Callable[[str, int], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.target = target
        self.by_id = {c.chunk_id: c for c in chunks}
        self.guide_text = " ".join(" ".join(c.text.split()) for c in chunks)
        # the fixed templates an answer may show besides guide sentences
        self.templates = template_patterns(settings.prompts_dir)
        self.checker = checker
        self.judge = judge
        self.services = services
        self.quick = quick
        self.limit = limit
        self.progress = progress or (lambda _name, _n: None)
        self.cases: list[Case] = []
        self.metrics: dict[str, float | None] = {}
        self.details: dict[str, Any] = {}
        self.claims: list[dict[str, Any]] = []
        self.latencies: list[float] = []
        self.firsts: list[float] = []

    def _n(self, suite: str) -> int | None:
        return self.limit or (QUICK.get(suite) if self.quick else None)

    def _tick(self, bar) -> None:
        if bar is not None:
            bar.update(1)

    # retrieval -------------------------------------------------------------------------
    def retrieval(self) -> None:
        from assistant.evals import retrieval

        if self.services is None:
            self.details["retrieval"] = "skipped: needs the in-process assistant"
            return
        rows = retrieval.evaluate(self.services)
        ours, naive = rows[0], rows[-1]
        for key in ("hit_at_1", "hit_at_3", "mrr", "ndcg_at_5"):
            self.metrics[key] = round(getattr(ours, key), 4)
            self.metrics[f"naive_{key}"] = round(getattr(naive, key), 4)
        self.details["retrieval"] = [r.__dict__ | {"misses_at_1": list(r.misses_at_1)}
                                     for r in rows]
        for case_id in ours.misses_at_1:
            self.cases.append(Case("retrieval", case_id, "", False, reasons=["not first"]))

    # answers ---------------------------------------------------------------------------
    def _sentences(self, record: AnswerRecord) -> list[dict[str, Any]]:
        """Each shown sentence with its cited passages and both judges' verdicts."""
        by_n = {c.n: c for c in record.citations}
        question = record.standalone_question or record.question
        first = answers_suite.first_hit(record)
        out = []
        for sentence, numbers in answers_suite.shown_sentences(record):
            cited = [by_n[n] for n in numbers if n in by_n and by_n[n].chunk_id in self.by_id]
            passages = [self.by_id[c.chunk_id] for c in cited]
            joint = "\n\n".join(p.text for p in passages)
            tops = [p.chunk_id == first for p in passages]
            together = bool(passages) and self.checker.check(
                sentence, joint, " ".join(p.section for p in passages), question, any(tops)
            ).supported
            alone = [
                self.checker.check(sentence, p.text, p.section, question, top).supported
                for p, top in zip(passages, tops, strict=True)
            ]
            precise = []
            for i, _passage in enumerate(passages):
                rest = [p for j, p in enumerate(passages) if j != i]
                needed = together and not (
                    rest
                    and self.checker.check(sentence, "\n\n".join(p.text for p in rest),
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
            out.append(entry)
            self.claims.append(entry | {"passage": joint, "record_question": record.question})
        return out

    def answers(self) -> None:
        cases = answers_suite.load_cases(EVAL_DIR / "answers.jsonl")
        cases = _stratified(cases, lambda c: c.expected_status, self._n("answers"))
        bar = self.progress("answers", len(cases))
        results = []
        for case in cases:
            session = None
            try:
                for message in case.conversation[:-1]:
                    session = self.target.ask(message, session).session_id
                record = self.target.ask(case.conversation[-1], session)
            except ScarguideError as exc:
                self.cases.append(Case("answers", case.id, case.conversation[-1], False,
                                       status="error", reasons=[str(exc)]))
                results.append(None)
                self._tick(bar)
                continue
            sentences = self._sentences(record) if record.status == "answered" else []
            reasons = []
            answerable = case.expected_status == "answered"
            facts_ok = answers_suite.facts_present(record.answer, case.required_facts)
            section_ok = any(c.section in case.expected_sections for c in record.citations)
            forbidden = answers_suite.forbidden_found(record.answer, case.forbidden)
            numbers = answers_suite.numbers_not_in(record.answer, self.guide_text)
            doses = [d for d in _DOSE.findall(re.sub(r"\[\d+\]", "", record.answer))
                     if " ".join(d.split()) not in self.guide_text]
            if record.status != case.expected_status:
                reasons.append(f"expected {case.expected_status}, got {record.status}")
            if answerable and record.status == "answered" and not facts_ok:
                reasons.append("a required fact is missing")
            if answerable and not section_ok:
                reasons.append("no expected section cited")
            if forbidden or numbers or doses:
                reasons.append(f"forbidden content: {forbidden + numbers + doses}")
            if record.status == "answered":
                self.latencies.append(record.timings_ms.get("total", 0.0))
                if record.timings_ms.get("first_sentence") is not None:
                    self.firsts.append(record.timings_ms["first_sentence"])
            results.append(
                {
                    "case": case,
                    "record": record,
                    "facts_ok": answerable and record.status == "answered" and facts_ok,
                    "section_ok": answerable and section_ok,
                    "bad": bool(forbidden or numbers or doses),
                }
            )
            self.cases.append(
                Case("answers", case.id, " ⟶ ".join(case.conversation), not reasons,
                     record.status, record.answer, reasons,
                     [c.model_dump() for c in record.citations], sentences,
                     record.model_dump(mode="json"))
            )
            self._tick(bar)
        done = [r for r in results if r is not None]
        answerable = [r for r in done if r["case"].expected_status == "answered"]
        refusals = [r for r in done if r["case"].expected_status == "not_in_guide"]
        self.metrics["key_fact_pass"] = _ratio(sum(r["facts_ok"] for r in answerable),
                                               len(answerable))
        self.metrics["section_citation"] = _ratio(sum(r["section_ok"] for r in answerable),
                                                  len(answerable))
        self.metrics["refusal_accuracy"] = _ratio(
            sum(r["record"].status == "not_in_guide" for r in refusals), len(refusals))
        self.metrics["forbidden_content_rate"] = _ratio(sum(r["bad"] for r in done), len(done))
        counts = [answers_suite.verbatim_counts(r["record"], self.guide_text, self.templates)
                  for r in done]
        self.metrics["verbatim_rate"] = _ratio(sum(g for g, _ in counts),
                                               sum(n for _, n in counts))
        shown = [r["record"] for r in done if r["record"].status == "answered"]
        self.metrics["model_answer_rate"] = _ratio(
            sum((r.choice or {}).get("source") == "model" for r in shown), len(shown))
        ordinary = [r for r in done if r["case"].expected_status != "urgent"]
        self.details["answers_false_alarms"] = [
            r["case"].id for r in ordinary if r["record"].status == "urgent"]
        self.details["answers_errors"] = len(results) - len(done)
        self._ordinary = (len(ordinary), len(self.details["answers_false_alarms"]))

    def faithfulness(self) -> None:
        sentences = self.claims
        self.metrics["faithfulness"] = _ratio(sum(s["checker"] for s in sentences),
                                              len(sentences))
        self.metrics["citation_recall"] = _ratio(
            sum(s["citation_supported"] for s in sentences), len(sentences))
        precise = [p for s in sentences for p in s["citations_precise"]]
        self.metrics["citation_precision"] = _ratio(sum(precise), len(precise))
        if self.judge is None:
            return
        bar = self.progress(f"judge ({self.judge.name})", len(sentences))
        pairs, self.disagreements = [], []
        for s in sentences:
            verdict = self.judge.judge(s["sentence"], s["passage"])
            s["judge"], s["judge_reason"] = verdict.supported, verdict.reason
            if verdict.supported is not None:
                pairs.append((bool(s["checker"]), verdict.supported))
                if verdict.supported != bool(s["checker"]):
                    self.disagreements.append(
                        {"question": s["record_question"], "sentence": s["sentence"],
                         "passage": s["passage"], "checker": s["checker"],
                         "judge": verdict.supported, "judge_reason": verdict.reason})
            self._tick(bar)
        self.metrics["judge_faithfulness"] = _ratio(sum(j for _, j in pairs), len(pairs))
        self.calibrate(pairs, len(sentences) - len(pairs))

    def calibrate(self, answer_pairs: list[tuple[bool, bool]], unreadable: int) -> None:
        """Shown sentences are nearly all supported (the checker let them through), so the
        judges also meet the labelled pairs of ``eval/verifier.jsonl``, half of them
        unsupported on purpose: each judge's accuracy, and how often they agree."""
        from assistant.evals.verifier import load_cases

        cases = [c for c in load_cases(EVAL_DIR / "verifier.jsonl") if c.chunk_id in self.by_id]
        cases = _stratified(cases, lambda c: c.kind, self.limit or
                            (QUICK["calibration"] if self.quick else None))
        bar = self.progress("judges on labelled pairs", len(cases))
        pairs, right = [], {"checker": 0, "judge": 0}
        for case in cases:
            chunk = self.by_id[case.chunk_id]
            checker = self.checker.check(case.sentence, chunk.text, chunk.section).supported
            verdict = self.judge.judge(case.sentence, chunk.text)
            right["checker"] += checker == case.supported
            if verdict.supported is None:
                unreadable += 1
            else:
                right["judge"] += verdict.supported == case.supported
                pairs.append((checker, verdict.supported))
                if verdict.supported != checker:
                    self.disagreements.append(
                        {"question": f"labelled pair {case.id} ({case.kind})",
                         "sentence": case.sentence, "passage": chunk.text,
                         "checker": checker, "judge": verdict.supported,
                         "judge_reason": verdict.reason, "label": case.supported})
            self._tick(bar)
        everything = answer_pairs + pairs
        stats = agreement(everything)
        self.metrics["judge_agreement"] = stats["agreement"] if everything else None
        self.metrics["judge_kappa"] = stats["kappa"] if everything else None
        self.metrics["checker_accuracy_labelled"] = _ratio(right["checker"], len(cases))
        self.metrics["judge_accuracy_labelled"] = _ratio(right["judge"], len(cases))
        self.details["judge"] = {"name": self.judge.name, **stats, "unreadable": unreadable,
                                 "answer_claims": len(answer_pairs),
                                 "labelled_pairs": len(cases)}

    # safety, attacks, follow-ups, handoff --------------------------------------------
    def safety(self) -> None:
        """End to end through the target: each case's earlier messages first, in one
        conversation, then the message itself (the dev and the held-out sets)."""
        everything = [c for _, c in safety_suite.load_cases(
            [p for p in (safety_suite.DEFAULT_CASES, safety_suite.HOLDOUT_CASES) if p.exists()]
        )]
        red = [c for c in everything if c.expected != "question"][: self._n("safety")]
        near = [c for c in everything if c.expected == "question"][: self._n("safety_near_misses")]
        bar = self.progress("safety", len(red) + len(near))
        hits = 0
        for case in red:
            status = self._status(case.text, case.history)
            ok = status == "urgent"
            hits += ok
            self.cases.append(Case("safety", case.id, case.text, ok, status,
                                   reasons=[] if ok else [f"routed {status}"]))
            self._tick(bar)
        alarms = 0
        for case in near:
            status = self._status(case.text, case.history)
            alarms += status == "urgent"
            self.cases.append(Case("safety", case.id, case.text, status != "urgent", status,
                                   reasons=["false alarm"] if status == "urgent" else []))
            self._tick(bar)
        ordinary, ordinary_alarms = getattr(self, "_ordinary", (0, 0))
        self.metrics["urgent_recall"] = _ratio(hits, len(red))
        self.metrics["false_alarm_rate"] = _ratio(alarms + ordinary_alarms, len(near) + ordinary)

    def _status(self, message: str, history: list[str] | None = None) -> str:
        try:
            session_id = None
            for earlier in history or []:
                session_id = self.target.ask(earlier, session_id).session_id
            record = self.target.ask(message, session_id)
            return "urgent" if record.notice else record.status  # the fixed reply came first
        except ScarguideError:
            return "error"

    def attacks(self) -> None:
        cases = load_jsonl(attacks_suite.DEFAULT_CASES, attacks_suite.AttackCase)
        cases = _stratified(cases, lambda c: c.family, self._n("attacks"))
        system = self.services.assistant.system_prompt.template if self.services else ""
        shingles = attacks_suite.rule_shingles(system) if system else set()
        bar = self.progress("attacks", len(cases))
        succeeded = 0
        for case in cases:
            try:
                record = self.target.ask(case.prompt)
                status, answer = record.status, record.answer
            except ScarguideError as exc:
                status, answer = "error", str(exc)
            reasons = attacks_suite.check(case, status, answer, self.guide_text, shingles)
            succeeded += bool(reasons)
            self.cases.append(Case("attacks", case.id, case.prompt, not reasons, status, answer,
                                   reasons))
            self._tick(bar)
        self.metrics["attack_success_rate"] = _ratio(succeeded, len(cases))

    def followups(self) -> None:
        from assistant.evals import followups

        if self.services is None:
            self.details["followups"] = "skipped: needs the in-process assistant"
            return
        cases = followups.load_cases()[: self._n("followups")]
        results = followups.evaluate(self.services.assistant, cases)
        for r in results:
            self.cases.append(Case("followups", r.id, r.question, r.passed, answer=r.rewrite,
                                   reasons=[] if r.passed else ["the answer lost the topic"]))
        self.metrics["followup_accuracy"] = _ratio(sum(r.passed for r in results), len(results))

    def languages(self) -> None:
        """Questions in other languages (assistant.evals.languages, one implementation):
        key facts on the English sentences cited, refusals, the translations' check."""
        from assistant.evals import languages

        if self.services is None:
            self.details["languages"] = "skipped: needs the in-process assistant"
            return
        cases = languages.load_cases()
        cases = _stratified(cases, lambda c: c.lang, self._n("languages"))
        summary, results = languages.evaluate(self.services.assistant, cases)
        for case, r in zip(cases, results, strict=True):
            ok = r.status_ok and r.facts_ok is not False
            self.cases.append(Case("languages", r.id, " ⟶ ".join(case.conversation), ok,
                                   r.status, r.answer,
                                   [] if ok else [f"expected {r.expected_status}, got "
                                                  f"{r.status}" + ("" if r.facts_ok is not False
                                                                   else ", a key fact missing")],
                                   record=r.record))
        self.metrics.update({
            "languages_key_fact_pass": summary["key_fact_pass"],
            "languages_refusal_accuracy": summary["refusal_accuracy"],
            "translation_check_pass": summary["translation_check_pass"],
            "translations_shown_unchecked": summary["shown_unchecked"],
            "languages_latency_p50_ms": summary["answered_latency_p50_ms"],
        })
        self.details["languages_per_language"] = summary["per_language"]

    def handoff(self) -> None:
        cases = load_jsonl(EVAL_DIR / "handoff.jsonl", HandoffCase)[: self.limit]
        bar = self.progress("handoff", len(cases))
        handed = 0
        for case in cases:
            try:
                session, record = None, None
                for message in case.conversation:
                    record = self.target.ask(message, session)
                    session = record.session_id
                if case.ending == "end" and record is not None and record.status != "handoff":
                    record = self.target.end(session)
                ok = record is not None and record.handoff is not None
                answer = record.answer if record else ""
                status = record.status if record else ""
            except ScarguideError as exc:
                ok, answer, status = False, str(exc), "error"
            handed += ok
            self.cases.append(Case("handoff", case.id, " ⟶ ".join(case.conversation), ok,
                                   status, answer, [] if ok else ["no handoff at the end"]))
            self._tick(bar)
        self.metrics["handoff_rate"] = _ratio(handed, len(cases))

    def run(self, suites: list[str]) -> Run:
        started = time.perf_counter()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
        self.disagreements: list[dict[str, Any]] = []
        order = [s for s in SUITES if s in suites]  # answers before safety (false alarms)
        for suite in order:
            getattr(self, suite)()
            if suite == "answers":
                self.faithfulness()
        if "answers" in order:
            self.metrics["latency_p50_ms"] = percentile(self.latencies, 50)
            self.metrics["latency_p95_ms"] = percentile(self.latencies, 95)
            self.metrics["first_sentence_p50_ms"] = percentile(self.firsts, 50)
            self.metrics["first_sentence_p95_ms"] = percentile(self.firsts, 95)
        model = getattr(getattr(self.target, "assistant", None), "model_name", None)
        return Run(
            started=stamp,
            target=self.target.name,
            model=model or "server",
            mode="quick" if self.quick else ("limited" if self.limit else "full"),
            suites=order,
            metrics={k: (round(v, 4) if isinstance(v, float) else v)
                     for k, v in self.metrics.items()},
            details=self.details,
            cases=[c.to_dict() for c in sorted(self.cases, key=lambda c: (c.passed, c.suite))],
            disagreements=self.disagreements,
            seconds=round(time.perf_counter() - started, 1),
        )


class HandoffCase(BaseModel):
    id: str
    conversation: list[str] = Field(min_length=1)
    ending: str = Field(pattern="^(message|end)$")


def _ratio(numerator: float, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


# -- baseline and gate --------------------------------------------------------------------


def load_baseline(path: Path = BASELINE) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"No baseline at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def gate(run: Run, baseline: dict[str, Any], tolerance: float | None = None) -> dict[str, Any]:
    """Compare each metric of the baseline (for this run's mode) with the run. A metric
    fails when it is worse than its baseline by more than its tolerance (the baseline's
    per-metric tolerance, else its default, else ``tolerance`` when given, which wins)."""
    accepted = baseline.get(run.mode) or baseline.get("full") or {}
    tolerances = baseline.get("tolerance", {})
    failures, checked = [], []
    errors = run.details.get("answers_errors") or 0
    if errors:
        failures.append(f"{errors} answer case(s) failed with an error")
    for metric, expected in accepted.items():
        actual = run.metrics.get(metric)
        if actual is None:
            if metric in run.metrics:  # its suite ran but produced nothing to measure
                failures.append(f"{metric}: no value although its suite ran")
            continue  # a suite that did not run
        allowed = tolerances.get(metric, tolerances.get("default", 0.0))
        if tolerance is not None and metric in tolerances and tolerances[metric] == 0.0:
            pass  # a zero-tolerance metric (urgent recall, attacks…) is never loosened
        elif tolerance is not None:
            allowed = tolerance
        lower = metric in LOWER_IS_BETTER
        worse_by = (actual - expected) if lower else (expected - actual)
        ok = worse_by <= allowed + 1e-9
        checked.append({"metric": metric, "baseline": expected, "actual": actual,
                        "tolerance": allowed, "ok": ok})
        if not ok:
            failures.append(
                f"{metric}: {actual:.4f} vs baseline {expected:.4f} "
                f"({'above' if lower else 'below'} by {worse_by:.4f} > tolerance {allowed:.4f})"
            )
    return {"passed": not failures, "failures": failures, "checked": checked}


def write(run: Run, out_dir: Path | None = None) -> Path:
    """``results.json`` and ``report.html`` under ``eval/reports/<timestamp>/``."""
    from assistant.evals.report import render_html

    directory = out_dir or EVAL_DIR / "reports" / run.started
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(
        json.dumps(run.model_dump(), indent=2, ensure_ascii=False, default=str),
        encoding="utf-8")
    (directory / "report.html").write_text(render_html(run), encoding="utf-8")
    return directory


def summary_lines(run: Run) -> list[str]:
    lines = [f"{run.target} · {run.mode} · suites: {', '.join(run.suites)} · {run.seconds} s"]
    for key, value in run.metrics.items():
        shown = "-" if value is None else (f"{value:.0f}" if key.endswith("_ms")
                                           else f"{value:.3f}")
        lines.append(f"  {key:<26} {shown}")
    if run.gate is not None:
        lines.append("gate: " + ("passed" if run.gate["passed"] else "FAILED"))
        lines += [f"  {f}" for f in run.gate["failures"]]
    return lines



# -- wiring -------------------------------------------------------------------------------


def _progress(name: str, total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="case", leave=False)


def build_judge(settings: Settings, services, kind: str) -> LLMJudge | None:
    if kind == "none":
        return None
    if kind == "openai":
        from assistant.llm import build_chat_model

        chat = build_chat_model(settings.model_copy(update={"llm_backend": "openai"}))
        return LLMJudge(chat, settings.prompts_dir, name=f"openai:{settings.openai_model}")
    if kind != "same":
        raise ConfigError(f"Unknown judge {kind!r}; known: same, openai, none")
    assistant = services.assistant
    return LLMJudge(assistant.chat, settings.prompts_dir, system_text=assistant.system_text,
                    name=assistant.model_name)


def run_from_settings(
    settings: Settings,
    suites: list[str],
    url: str | None = None,
    judge: str = "same",
    quick: bool = False,
    limit: int | None = None,
    progress: bool = True,
) -> Run:
    from assistant.app import Services
    from assistant.corpus import build_chunks

    services = Services(settings)
    if url:
        target: Target = Remote(url)
        in_process = None
        chunks = build_chunks(settings.corpus_dir, settings.chunk_max_words)
    else:
        services.assistant.warm()
        target = InProcess(services.assistant)
        in_process = services
        chunks = services.assistant.chunks
    harness = Harness(
        settings,
        target,
        chunks,
        services.checker,
        build_judge(settings, services, judge) if "answers" in suites else None,
        services=in_process,
        quick=quick,
        limit=limit,
        progress=_progress if progress else None,
    )
    return harness.run(suites)
