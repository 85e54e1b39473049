"""Triage's model check: the chat model asked one constrained question, ``urgent`` /
``crisis`` / ``none``, over a cached prefix of its instructions and the reviewed examples
(``prompts/triage_examples.yaml``, whose bank the screen also reads). The answer is read
off the probabilities of the three words; one call runs at a time, a message with a risk
signal first (``PriorityGate``). A check that gives no usable answer raises
``CheckFailed``, and ``assistant.triage`` fails towards routing.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from assistant.errors import ConfigError
from assistant.models import model_identity
from assistant.prompts import PROMPTS_DIR, load_prompt
from assistant.safety import as_data

Label = Literal["urgent", "crisis", "none"]
LABELS: tuple[Label, ...] = ("urgent", "crisis", "none")
Check = Literal["ok", "timeout", "error", "unreadable", "skipped"]


class CheckFailed(Exception):
    """The model check gave no usable answer (``kind``: timeout, error, unreadable)."""

    def __init__(self, kind: Check, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True)
class Examples:
    shots: list[tuple[str, Label]]
    bank: dict[Label, list[str]]


def load_examples(directory: Path = PROMPTS_DIR) -> Examples:
    path = directory / "triage_examples.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        shots = [(str(s["text"]), s["label"]) for s in data["shots"]]
        bank = {label: [str(t) for t in data["bank"].get(label, [])] for label in LABELS}
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a readable triage example file ({exc})") from None
    for text, label in shots:
        if label not in LABELS:
            raise ConfigError(f"{path}: shot {text!r} has unknown label {label!r}")
        bank[label].append(text)
    return Examples(shots, bank)




class PriorityGate:
    """One model call at a time; waiting callers with priority go first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent: deque[object] = deque()
        self._ordinary: deque[object] = deque()

    def acquire(self, priority: bool, timeout: float) -> bool:
        me = object()
        queue = self._urgent if priority else self._ordinary
        deadline = time.monotonic() + timeout
        with self._cond:
            queue.append(me)
            try:
                while self._busy or self._next() is not me:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                self._busy = True
                return True
            finally:
                queue.remove(me)
                self._cond.notify_all()

    def _next(self) -> object | None:
        return (self._urgent or self._ordinary or [None])[0]

    def release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def waiting(self) -> int:
        with self._cond:
            return len(self._urgent) + len(self._ordinary)


class ModelCheck:
    """The chat model asked ``urgent`` / ``crisis`` / ``none``; returns the probabilities."""

    def __init__(self, chat, examples: Examples, prompts_dir: Path = PROMPTS_DIR,
                 history_turns: int = 3, cache_dir: Path | None = None) -> None:
        self.chat = chat
        self.cache_dir = cache_dir
        self.prompt = load_prompt("triage", prompts_dir)
        self.instructions = self.prompt.render()
        self.shots = examples.shots
        self.history_turns = history_turns
        self.gate = PriorityGate()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="triage")

    def messages(self, text: str, history: list[str]) -> list[BaseMessage]:
        out: list[BaseMessage] = [SystemMessage(self.instructions)]
        for shot, label in self.shots:
            out += [HumanMessage(self._user(shot, [])), AIMessage(label)]
        out.append(HumanMessage(self._user(text, history[-self.history_turns :])))
        return out

    @staticmethod
    def _user(text: str, history: list[str]) -> str:
        earlier = "".join(f"<earlier>{as_data(h)}</earlier>\n" for h in history)
        return f"{earlier}<latest>{as_data(text)}</latest>"

    def warm(self) -> None:
        """Process the cached prefix now (the instructions and the examples), so the
        first patient's check does not pay for it. A local model restores the prefix an
        earlier process saved for the same model and examples, and saves it otherwise."""
        if not hasattr(self.chat, "save_prefix"):  # a server keeps its own prompt cache
            return
        cache = self._cache_path()
        if cache is not None and cache.exists() and self.chat.load_prefix(cache):
            return
        self.scores("hello", [], priority=False, timeout=600)
        if cache is not None:
            self.chat.save_prefix(cache)

    def _cache_path(self) -> Path | None:
        if self.cache_dir is None or not hasattr(self.chat, "save_prefix"):
            return None
        prefix = "\n".join(str(m.content) for m in self.messages("", [])[:-1])
        key = hashlib.sha256(
            f"{model_identity(self.chat.model_path)}\n{self.chat.n_ctx}\n{prefix}".encode()
        ).hexdigest()[:16]
        return self.cache_dir / f"triage-{self.chat.model_name}-{key}.npz"

    def scores(self, text: str, history: list[str], priority: bool,
               timeout: float) -> dict[str, float]:
        started = time.monotonic()
        if not self.gate.acquire(priority, timeout):
            raise CheckFailed("timeout", "the model was busy")
        try:
            future = self._pool.submit(self._ask, self.messages(text, history))
        except BaseException:
            self.gate.release()
            raise
        future.add_done_callback(lambda _f: self.gate.release())
        left = max(0.05, timeout - (time.monotonic() - started))
        try:
            return future.result(timeout=left)
        except FutureTimeout:
            raise CheckFailed("timeout", f"no answer in {timeout:.1f}s") from None
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - any model failure fails towards routing
            raise CheckFailed("error", type(exc).__name__) from None

    def _ask(self, messages: list[BaseMessage]) -> dict[str, float]:
        label_scores = getattr(self.chat, "label_scores", None)
        if label_scores is not None:  # the local model: the three words' probabilities
            return _normalised(label_scores(messages, list(LABELS)))
        reply = self.chat.bind(logprobs=True, top_logprobs=10, max_tokens=2).invoke(messages) \
            if _supports_logprobs(self.chat) else self.chat.invoke(messages)
        logprobs = (getattr(reply, "response_metadata", None) or {}).get("logprobs")
        if logprobs and logprobs.get("content"):
            top = logprobs["content"][0].get("top_logprobs") or []
            found = _from_top_tokens([(t["token"], t["logprob"]) for t in top])
            if found:
                return found
        word = re.match(r"\W*([a-z]+)", str(reply.content).lower())
        if word and word.group(1) in LABELS:
            return {label: float(label == word.group(1)) for label in LABELS}
        raise CheckFailed("unreadable", "the reply is not one of the three words")


def _supports_logprobs(chat) -> bool:
    return type(chat).__name__ == "ChatOpenAI"


def _from_top_tokens(top: list[tuple[str, float]]) -> dict[str, float]:
    """Label probabilities from a first token's top alternatives ("urg", " crisis"…)."""
    mass: dict[str, float] = {label: 0.0 for label in LABELS}
    for token, logprob in top:
        piece = token.strip().lower()
        if not piece:
            continue
        for label in LABELS:
            if label.startswith(piece):
                mass[label] += math.exp(logprob)
                break
    return _normalised(mass) if sum(mass.values()) > 0 else {}


def _normalised(mass: dict[str, float]) -> dict[str, float]:
    total = sum(mass.values())
    if total <= 0:
        raise CheckFailed("unreadable", "no probability on any of the three words")
    return {label: round(mass.get(label, 0.0) / total, 4) for label in LABELS}
