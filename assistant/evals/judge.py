"""Two judges of faithfulness: the claim checker (the gate the answers pass) and a
second, different one: a chat model asked claim by claim whether the passage supports
the claim ("yes: …" / "no: …"). The local model by default; any OpenAI-compatible model
with ``SCARGUIDE_JUDGE_BACKEND=openai`` (and the ``SCARGUIDE_OPENAI_*`` settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.evals.metrics import ratio, stratified
from assistant.prompts import load_prompt
from assistant.safety import as_data

if TYPE_CHECKING:
    from assistant.evals.harness import Harness


@dataclass
class Judgement:
    supported: bool | None  # None: the judge's reply could not be read
    reason: str


class LLMJudge:
    def __init__(self, chat: BaseChatModel, prompts_dir, system_text: str | None = None,
                 name: str = "llm") -> None:
        self.chat = chat
        self.prompt = load_prompt("judge", prompts_dir)
        # the assistant's own guide prefix when the judge is the same local model (llama.cpp
        # reuses it, so a verdict costs seconds); a plain instruction otherwise
        self.system = system_text or "You check whether a passage supports a claim."
        self.name = name

    def judge(self, claim: str, passage: str) -> Judgement:
        reply = self.chat.invoke(
            [
                SystemMessage(self.system),
                HumanMessage(self.prompt.render(passage=as_data(passage), claim=as_data(claim))),
            ],
            max_tokens=32,
        ).content
        text = str(reply).strip()
        verdict = re.match(r"\W*(yes|no)\b\W*(.*)", text, re.I | re.S)
        if not verdict:
            return Judgement(None, text[:200])
        return Judgement(verdict.group(1).lower() == "yes", verdict.group(2).strip()[:200])


def agreement(pairs: list[tuple[bool, bool]]) -> dict[str, float | int]:
    """Raw agreement and Cohen's kappa (scikit-learn's) of two judges' yes/no verdicts;
    kappa is 1.0 when both judges gave one and the same verdict throughout (chance
    agreement is then total, and scikit-learn's kappa undefined)."""
    from sklearn.metrics import cohen_kappa_score

    n = len(pairs)
    if n == 0:
        return {"pairs": 0, "agreement": 0.0, "kappa": 0.0}
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    agree = sum(x == y for x, y in pairs) / n
    kappa = 1.0 if len(set(a) | set(b)) == 1 else float(cohen_kappa_score(a, b))
    return {"pairs": n, "agreement": round(agree, 4), "kappa": round(kappa, 4)}


def faithfulness(h: Harness, sentences: list[dict[str, Any]]
                 ) -> tuple[dict[str, float | None], dict[str, Any], list[dict[str, Any]]]:
    """Faithfulness and citation metrics of the answers suite's shown sentences (each a
    :class:`assistant.evals.answers.Claim` entry with its passage), then the second judge
    on them and on the labelled pairs: (metrics, details, disagreements)."""
    metrics: dict[str, float | None] = {}
    metrics["faithfulness"] = ratio(sum(s["checker"] for s in sentences), len(sentences))
    metrics["citation_recall"] = ratio(
        sum(s["citation_supported"] for s in sentences), len(sentences))
    precise = [p for s in sentences for p in s["citations_precise"]]
    metrics["citation_precision"] = ratio(sum(precise), len(precise))
    if h.judge is None:
        return metrics, {}, []
    bar = h.progress(f"judge ({h.judge.name})", len(sentences))
    pairs, disagreements = [], []
    for s in sentences:
        verdict = h.judge.judge(s["sentence"], s["passage"])
        s["judge"], s["judge_reason"] = verdict.supported, verdict.reason
        if verdict.supported is not None:
            pairs.append((bool(s["checker"]), verdict.supported))
            if verdict.supported != bool(s["checker"]):
                disagreements.append(
                    {"question": s["record_question"], "sentence": s["sentence"],
                     "passage": s["passage"], "checker": s["checker"],
                     "judge": verdict.supported, "judge_reason": verdict.reason})
        h.tick(bar)
    metrics["judge_faithfulness"] = ratio(sum(j for _, j in pairs), len(pairs))
    more, details = calibrate(h, h.judge, pairs, len(sentences) - len(pairs), disagreements)
    return metrics | more, details, disagreements


def calibrate(h: Harness, judge: LLMJudge, answer_pairs: list[tuple[bool, bool]],
              unreadable: int,
              disagreements: list[dict[str, Any]]
              ) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Shown sentences are nearly all supported (the checker let them through), so the
    judges also meet the labelled pairs of ``eval/verifier.jsonl``, half of them
    unsupported on purpose: each judge's accuracy, and how often they agree (their
    disagreements are added to ``disagreements``)."""
    from assistant.evals.verifier import load_cases

    cases = [c for c in load_cases(h.eval_dir / "verifier.jsonl") if c.chunk_id in h.by_id]
    cases = stratified(cases, lambda c: c.kind, h.n("calibration"))
    bar = h.progress("judges on labelled pairs", len(cases))
    pairs, right = [], {"checker": 0, "judge": 0}
    for case in cases:
        chunk = h.by_id[case.chunk_id]
        checker = h.checker.check(case.sentence, chunk.text, chunk.section).supported
        verdict = judge.judge(case.sentence, chunk.text)
        right["checker"] += checker == case.supported
        if verdict.supported is None:
            unreadable += 1
        else:
            right["judge"] += verdict.supported == case.supported
            pairs.append((checker, verdict.supported))
            if verdict.supported != checker:
                disagreements.append(
                    {"question": f"labelled pair {case.id} ({case.kind})",
                     "sentence": case.sentence, "passage": chunk.text,
                     "checker": checker, "judge": verdict.supported,
                     "judge_reason": verdict.reason, "label": case.supported})
        h.tick(bar)
    everything = answer_pairs + pairs
    stats = agreement(everything)
    metrics = {
        "judge_agreement": stats["agreement"] if everything else None,
        "judge_kappa": stats["kappa"] if everything else None,
        "checker_accuracy_labelled": ratio(right["checker"], len(cases)),
        "judge_accuracy_labelled": ratio(right["judge"], len(cases)),
    }
    details = {"judge": {"name": judge.name, **stats, "unreadable": unreadable,
                         "answer_claims": len(answer_pairs), "labelled_pairs": len(cases)}}
    return metrics, details
