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
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from assistant.config import PACKAGE_ROOT, Settings
from assistant.corpus import Chunk
from assistant.errors import ConfigError
from assistant.evals import (
    answers,
    attacks,
    followups,
    handoff,
    languages,
    percentile,
    retrieval,
    safety,
)
from assistant.evals.judge import LLMJudge
from assistant.evals.metrics import flat_guide, ratio
from assistant.evals.outcome import Outcome
from assistant.evals.targets import InProcess, Remote, Target
from assistant.localise import template_patterns
from assistant.verify import ClaimChecker

EVAL_DIR = PACKAGE_ROOT / "eval"
BASELINE = EVAL_DIR / "baseline.json"
SUITES = ("retrieval", "answers", "safety", "attacks", "followups", "handoff", "languages")
# each suite: a function of the harness to what it measured (one implementation each, in
# its own module, the one the ``scarguide eval <suite>`` commands use)
RUNNERS: dict[str, Callable[[Harness], Outcome]] = {
    "retrieval": retrieval.suite, "answers": answers.suite, "safety": safety.suite,
    "attacks": attacks.suite, "followups": followups.suite, "handoff": handoff.suite,
    "languages": languages.suite,
}
# quick mode: a fixed, stratified subset that runs in a few minutes on the default model
QUICK = {"answers": 14, "attacks": 12, "followups": 6, "safety": 20, "safety_near_misses": 6,
         "calibration": 12, "languages": 6}
LOWER_IS_BETTER = {"forbidden_content_rate", "false_alarm_rate", "attack_success_rate",
                   "translations_shown_unchecked"}


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


class Harness:
    """What every suite runs against (the target, the guide, the checker and the judge,
    the case counts of the mode) and the run of the chosen suites. Suites share nothing
    else: each returns an :class:`Outcome`, in any order with the same results."""

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
        self.eval_dir = EVAL_DIR
        self.by_id = {c.chunk_id: c for c in chunks}
        self.guide_text = flat_guide(chunks)
        # the fixed templates an answer may show besides guide sentences
        self.templates = template_patterns(settings.prompts_dir)
        self.checker = checker
        self.judge = judge
        self.services = services
        self.quick = quick
        self.limit = limit
        self.progress = progress or (lambda _name, _n: None)

    def n(self, suite: str) -> int | None:
        """How many cases of ``suite`` (or of a part of it) this mode takes; None: all."""
        return self.limit or (QUICK.get(suite) if self.quick else None)

    def tick(self, bar) -> None:
        if bar is not None:
            bar.update(1)

    def run(self, suites: list[str]) -> Run:
        started = time.perf_counter()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
        order = [s for s in SUITES if s in suites]
        outcomes = {suite: RUNNERS[suite](self) for suite in order}
        metrics: dict[str, float | None] = {}
        details: dict[str, Any] = {}
        cases, disagreements = [], []
        for outcome in outcomes.values():
            metrics.update(outcome.metrics)
            details.update(outcome.details)
            cases += outcome.cases
            disagreements += outcome.disagreements
        if "safety" in outcomes:  # false alarms: safety's near misses and ordinary questions
            seen = [o.near_misses for o in outcomes.values() if o.near_misses is not None]
            metrics["false_alarm_rate"] = ratio(sum(a for _, a in seen), sum(n for n, _ in seen))
        if "answers" in outcomes:
            latencies = outcomes["answers"].latencies
            for name in ("latency", "first_sentence"):
                for q in (50, 95):
                    metrics[f"{name}_p{q}_ms"] = percentile(latencies[name], q)
        model = getattr(getattr(self.target, "assistant", None), "model_name", None)
        return Run(
            started=stamp,
            target=self.target.name,
            model=model or "server",
            mode="quick" if self.quick else ("limited" if self.limit else "full"),
            suites=order,
            metrics={k: (round(v, 4) if isinstance(v, float) else v)
                     for k, v in metrics.items()},
            details=details,
            cases=[c.to_dict() for c in sorted(cases, key=lambda c: (c.passed, c.suite))],
            disagreements=disagreements,
            seconds=round(time.perf_counter() - started, 1),
        )


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
