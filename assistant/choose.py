"""The answer call: the model chooses which guide passages answer the question.

The cached prefix holds the fixed instructions, the whole guide as numbered passages and
reviewed worked examples (``prompts/choose_system.yaml``, ``prompts/choose_examples.yaml``);
one call adds only the patient's earlier messages, the question and the retriever's
candidates, and the reply is constrained by a JSON schema to ``{"ids": [...]}`` naming
candidates only (a grammar for llama.cpp, ``response_format`` for an OpenAI-compatible
server). The model writes nothing a patient reads. A reply that is not valid JSON, names
an unknown passage or is empty where the retriever is sure falls back to the retriever's
ranking, recorded as such.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from assistant.corpus import Chunk
from assistant.errors import ConfigError
from assistant.prompts import load_prompt
from assistant.safety import as_data

MAX_CHOSEN = 2


@dataclass
class Choice:
    """What the answer call chose: passage numbers (1-based, in the order to show)."""

    numbers: list[int]
    source: str  # "model", "prior" (the retriever's ranking) or "model-empty"
    raw: str = ""
    problem: str | None = None
    candidates: list[int] = field(default_factory=list)
    # the local model's probabilities: of choosing nothing, and of a second passage
    p_none: float | None = None
    p_second: float | None = None
    # the candidate the model alone would have put first (1-based local), when the
    # retriever's prior moved the choice
    model_first: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "numbers": self.numbers,
            "source": self.source,
            "raw": self.raw[:200],
            "problem": self.problem,
            "candidates": self.candidates,  # passage numbers, 1-based
            "p_none": None if self.p_none is None else round(self.p_none, 4),
            "p_second": None if self.p_second is None else round(self.p_second, 4),
            "model_first": self.model_first,
        }


def schema_for(count: int) -> dict[str, Any]:
    """JSON schema of a reply that may name only candidates 1..count (at most two)."""
    return {
        "type": "object",
        "properties": {
            "ids": {
                "type": "array",
                "items": {"type": "integer", "enum": list(range(1, count + 1))},
                "maxItems": MAX_CHOSEN,
            }
        },
        "required": ["ids"],
        "additionalProperties": False,
    }


def response_format(count: int, kind: str = "json_schema") -> dict[str, Any] | None:
    """The OpenAI ``response_format`` for the schema (llama.cpp turns it into a grammar);
    ``json_object``: the older form with the schema beside it (llama-cpp-python's server)."""
    if kind == "json_object":
        return {"type": "json_object", "schema": schema_for(count)}
    if kind == "none":
        return None
    return {
        "type": "json_schema",
        "json_schema": {"name": "choice", "strict": True, "schema": schema_for(count)},
    }


def reply_text(ids: list[int]) -> str:
    return json.dumps({"ids": ids}, separators=(",", ":"))


def parse_reply(text: str, count: int) -> tuple[list[int] | None, str | None]:
    """(ids, problem): the chosen candidates (1-based), or None and why it is unusable."""
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        return None, "not JSON"
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None, "not JSON"
    chosen = data.get("ids") if isinstance(data, dict) else None
    if not isinstance(chosen, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in chosen
    ):
        return None, "no list of candidate numbers"
    unknown = [n for n in chosen if not 1 <= n <= count]
    if unknown:
        return None, f"names numbers that are not candidates: {unknown}"
    return list(dict.fromkeys(chosen))[:MAX_CHOSEN], None


class Chooser:
    """Builds the answer call's messages and reads its reply. Candidates are numbered
    1..k in each question (the guide's passages are known to the model by heading)."""

    def __init__(self, chunks: list[Chunk], prompts_dir: Path, second: float = 0.5,
                 server_format: str = "json_schema", prior_weight: float = 0.0):
        self.chunks = chunks
        self.server_format = server_format
        # how much the retriever's fused score adds to the model's log-probability of a
        # candidate (local model): the retriever's ranking is the prior
        self.prior_weight = prior_weight
        self.second = second  # probability of a second passage from which it is shown
        self.system_prompt = load_prompt("choose_system", prompts_dir)
        self.prompt = load_prompt("choose", prompts_dir)
        self.system_text = self.system_prompt.render(
            passages="\n".join(
                f"[{self.heading(i)}] {' '.join(c.text.split())}"
                for i, c in enumerate(chunks, start=1)
            )
        )
        self.examples = self._load_examples(prompts_dir / "choose_examples.yaml")
        # what the cached prefix holds (its cache file is named by this text)
        self.prefix_text = self.system_text + "".join(
            f"\n{m.type}: {m.content}" for m in self.examples
        )

    def heading(self, number: int) -> str:
        """Passage ``number`` (1-based) by its heading ("What causes acne scars? (continued)")."""
        chunk = self.chunks[number - 1]
        leaf = chunk.section.split(" › ")[-1]
        return f"{leaf} (continued)" if chunk.ordinal else leaf

    def _number(self, heading: str, where: Path) -> int:
        for i, c in enumerate(self.chunks, start=1):
            if c.section.split(" › ")[-1] == heading and c.ordinal == 0:
                return i
        raise ConfigError(f"{where}: no guide section is headed {heading!r}")

    def _load_examples(self, path: Path) -> list[BaseMessage]:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot be read ({exc})") from None
        messages: list[BaseMessage] = []
        for example in (data or {}).get("examples", []):
            candidates = [self._number(h, path) for h in example["candidates"]]
            chosen = [candidates.index(self._number(h, path)) + 1 for h in example["choose"]]
            messages.append(
                HumanMessage(self.render(example.get("earlier", []), example["question"],
                                         candidates))
            )
            messages.append(AIMessage(reply_text(chosen)))
        return messages

    def render(self, earlier: list[str], question: str, candidates: list[int]) -> str:
        said = "; ".join(f'"{as_data(e[:200])}"' for e in earlier) or "none"
        return self.prompt.render(
            earlier=said,
            question=as_data(question),
            candidates="; ".join(f"{i} = {self.heading(n)}" for i, n in enumerate(candidates, 1)),
        )

    def messages(self, earlier: list[str], question: str,
                 candidates: list[int]) -> list[BaseMessage]:
        return [
            SystemMessage(self.system_text),
            *self.examples,
            HumanMessage(self.render(earlier, question, candidates)),
        ]

    def prefix(self) -> list[BaseMessage]:
        """What every call shares (for warming the cache)."""
        return [SystemMessage(self.system_text), *self.examples]

    def choose(
        self,
        chat: BaseChatModel,
        earlier: list[str],
        question: str,
        candidates: list[int],
        prior: list[int],
        prior_scores: list[float] | None = None,
    ) -> Choice:
        """Ask the model; fall back to ``prior`` (the retriever's ranking) when its reply
        is unusable. ``prior_scores``: the retriever's score of each candidate, which
        weighs in with the model's probabilities when they are known (a local model).
        Failures of the model itself propagate (the caller's ModelError)."""
        messages = self.messages(earlier, question, candidates)
        scores: dict[str, float] = {}
        if hasattr(chat, "next_token_scores"):
            weights = [self.prior_weight * s for s in prior_scores or [0.0] * len(candidates)]
            raw = self._read_greedily(chat, messages, len(candidates), scores, self.second,
                                      weights)
        else:
            fmt = response_format(len(candidates), self.server_format)
            options: dict[str, Any] = {"response_format": fmt} if fmt else {}
            reply = chat.invoke(messages, max_tokens=16, **options)
            raw = str(reply.content)
        chosen, problem = parse_reply(raw, len(candidates))
        p_none, p_second = scores.get("none"), scores.get("second")
        if chosen is None:
            return Choice(prior, "prior", raw, problem, candidates,
                          p_none=p_none, p_second=p_second)
        if not chosen:
            return Choice([], "model-empty", raw, None, candidates,
                          p_none=p_none, p_second=p_second)
        first = scores.get("model_first")
        return Choice([candidates[i - 1] for i in chosen], "model", raw, None, candidates,
                      p_none=p_none, p_second=p_second,
                      model_first=None if first is None else int(first))

    @staticmethod
    def _read_greedily(
        chat: Any, messages: list[BaseMessage], count: int, scores: dict[str, float],
        second: float, weights: list[float] | None = None,
    ) -> str:
        """The schema's reply decoded greedily from next-token probabilities, one forward
        pass per decision: which candidate first (or none), then another or the end. The
        same reply grammar-constrained decoding would give at temperature 0 (with
        ``second`` 0.5 and no ``weights``), without decoding the tokens the grammar
        forces. ``weights`` (one per candidate) add to the log-probability of each
        candidate as the first passage."""
        start = '{"ids":['
        digits = {str(i): [str(i)] for i in range(1, count + 1)}
        first = chat.next_token_scores(messages, start, {**digits, "]": ["]", "]}"]})
        scores["none"] = first["]"] / max(1e-12, sum(first.values()))
        if max(first, key=first.__getitem__) == "]":
            return reply_text([])
        weights = weights or [0.0] * count
        best = max(digits, key=lambda d: math.log(first[d] + 1e-12) + weights[int(d) - 1])
        alone = max(digits, key=first.__getitem__)
        if alone != best:  # the prior outweighed the model's own first choice
            scores["model_first"] = int(alone)
        if count < 2:
            return reply_text([int(best)])
        more = chat.next_token_scores(messages, start + best, {",": [","], "]": ["]", "]}"]})
        scores["second"] = more[","] / max(1e-12, more[","] + more["]"])
        if scores["second"] < second:
            return reply_text([int(best)])
        rest = {d: v for d, v in digits.items() if d != best}
        after = chat.next_token_scores(messages, f"{start}{best},", rest)
        return reply_text([int(best), int(max(after, key=after.__getitem__))])
