"""Two judges of faithfulness: the claim checker (the gate the answers pass) and a
second, different one: a chat model asked claim by claim whether the passage supports
the claim ("yes: …" / "no: …"). The local model by default; any OpenAI-compatible model
with ``SCARGUIDE_JUDGE_BACKEND=openai`` (and the ``SCARGUIDE_OPENAI_*`` settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.prompts import load_prompt
from assistant.safety import as_data


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
    """Raw agreement and Cohen's kappa of two judges' yes/no verdicts."""
    n = len(pairs)
    if n == 0:
        return {"pairs": 0, "agreement": 0.0, "kappa": 0.0}
    agree = sum(a == b for a, b in pairs) / n
    p_a = sum(a for a, _ in pairs) / n
    p_b = sum(b for _, b in pairs) / n
    expected = p_a * p_b + (1 - p_a) * (1 - p_b)
    kappa = (agree - expected) / (1 - expected) if expected < 1 else 1.0
    return {"pairs": n, "agreement": round(agree, 4), "kappa": round(kappa, 4)}
