"""Triage: is a message an emergency or a crisis? Layered, and failing towards routing.

Every message is triaged before anything else, read with the last turns of its
conversation, in whatever language it is written:

1. **Patterns** (``assistant.safety``): reviewed English patterns for the unambiguous
   cases. Instant, no model; a hit routes at once.
2. **The model**: the chat model, on an instance of its own (or the server), asked one
   constrained question, ``urgent`` / ``crisis`` / ``none``, with its instructions and
   examples in a cached prefix (``assistant.triage_check``). The answer is read off the
   probabilities of the three words, so the bar for routing is a setting, not a guess of
   the model's.
3. **The screen**: cheap signals that never route a message alone while the model
   answers: the similarity of the message to a reviewed bank of example messages
   (``prompts/triage_examples.yaml``) and reviewed red-flag terms in every supported
   language (``prompts/triage_terms.yaml``). A message with a signal is checked first
   (it jumps the model's queue, with a short deadline), and when the model check errors,
   times out or answers nonsense, a message with a signal is routed, not answered.

The language of a message (``py3langid``, its model inside the package) chooses the
language of the fixed reply; see ``assistant.replies``.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml

from assistant.errors import ConfigError
from assistant.prompts import PROMPTS_DIR
from assistant.safety import red_flag, route
from assistant.translate import mostly_english
from assistant.triage_check import (
    LABELS,
    Check,
    CheckFailed,
    Examples,
    Label,
    ModelCheck,
    load_examples,
)

# which part of triage decided: a pattern, the model check, the fail-safe (no usable check
# and a risk signal), or none of them (the message is answered)
Layer = Literal["pattern", "model", "fail-safe", "none"]

@dataclass
class TriageResult:
    """What triage decided, and why (stored with the answer record for staff)."""

    route: Label
    layer: Layer
    language: str
    # firm: the fixed reply replaces the answer. Not firm (the model leans to a risk below
    # the firm threshold): the fixed reply is shown first, as a notice, and the answer
    # follows it, so an unsure reading never withholds either.
    firm: bool = True
    # A second fixed reply shown after the first: the model's risk was split between
    # urgent and crisis (self-harm that bleeds, tablets taken), so the patient gets both
    # the emergency instruction and the crisis line rather than a guess between them.
    also: Label | None = None
    check: Check = "skipped"
    scores: dict[str, float] = field(default_factory=dict)
    signal: str | None = None
    ms: float = 0.0

    @property
    def routed(self) -> bool:
        return self.route != "none"

    @property
    def replies(self) -> tuple[Label, ...]:
        """The fixed replies shown, in order (empty when not routed)."""
        if not self.routed:
            return ()
        return (self.route, self.also) if self.also else (self.route,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "layer": self.layer,
            "language": self.language,
            "firm": self.firm,
            "also": self.also,
            "check": self.check,
            "scores": self.scores,
            "signal": self.signal,
            "ms": self.ms,
        }


# -- language -----------------------------------------------------------------------------


class LanguageDetector:
    """py3langid restricted to the languages on offer. When it is unsure, English only if
    the message's words are mostly English words: a short question in French is not read
    as English because the identifier hesitated (its best guess is taken)."""

    def __init__(self, languages: list[str], min_confidence: float = 0.5) -> None:
        self.languages = list(dict.fromkeys(["en", *languages]))
        self.min_confidence = min_confidence

    @cached_property
    def _identifier(self):
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        if len(self.languages) > 1:
            identifier.set_languages(self.languages)
        return identifier

    def detect(self, text: str) -> str:
        if len(self.languages) == 1:
            return self.languages[0]
        if any(unicodedata.name(ch, "").startswith("CJK UNIFIED") for ch in text):
            if "zh" in self.languages:
                return "zh"
        language, confidence = self._identifier.classify(text)
        if confidence >= self.min_confidence or (language != "en" and not mostly_english(text)):
            return language
        return "en"


# -- the screen -----------------------------------------------------------------------------


def load_terms(directory: Path = PROMPTS_DIR) -> dict[str, dict[Label, re.Pattern[str]]]:
    """Reviewed red-flag terms per language: ``{language: {label: pattern}}``."""
    path = directory / "triage_terms.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        terms = {
            language: {
                label: re.compile("|".join(f"(?:{t})" for t in items), re.I)
                for label, items in labels.items()
                if items
            }
            for language, labels in data["terms"].items()
        }
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, re.error) as exc:
        raise ConfigError(f"{path}: not a readable triage term file ({exc})") from None
    return terms


@dataclass(frozen=True)
class Signal:
    label: Label  # the screen's best guess: urgent or crisis (none: no signal)
    reason: str | None


class Screen:
    """Signals that decide priority and the fail-safe route, never a route on their own
    while the model answers."""

    def __init__(self, embeddings, examples: Examples, terms, threshold: float) -> None:
        self.embeddings = embeddings
        self.examples = examples
        self.terms = terms
        self.threshold = threshold

    @cached_property
    def _bank(self) -> list[tuple[Label, list[float]]]:
        texts = [(label, t) for label in LABELS for t in self.examples.bank[label]]
        vectors = self.embeddings.embed_documents([t for _, t in texts])
        return [(label, _unit(v)) for (label, _), v in zip(texts, vectors, strict=True)]

    def similarities(self, text: str) -> dict[Label, float]:
        if self.embeddings is None:
            return {}
        query = _unit(self.embeddings.embed_query(text))
        best: dict[Label, float] = {}
        for label, vector in self._bank:
            score = sum(a * b for a, b in zip(query, vector, strict=True))
            best[label] = max(best.get(label, -1.0), score)
        return best

    def signal(self, text: str, history: list[str], language: str = "en") -> Signal:
        """Terms of the message's language and English (a stem of one language can sit
        inside a word of another: German "atmen" in "treatment"), then the bank."""
        lowered = text.lower()
        for labels in (self.terms.get(lang, {}) for lang in dict.fromkeys([language, "en"])):
            for label in ("crisis", "urgent"):
                pattern = labels.get(label)
                match = pattern.search(lowered) if pattern else None
                if match:
                    return Signal(label, f"term {match.group(0)!r}")
        best: tuple[float, Label] | None = None
        risks: tuple[Label, ...] = ("crisis", "urgent")
        for candidate in [text, " ".join([*history[-1:], text])] if history else [text]:
            sims = self.similarities(candidate)
            for label in risks:
                score = sims.get(label, -1.0)
                if score >= self.threshold and score > sims.get("none", -1.0):
                    if best is None or score > best[0]:
                        best = (score, label)
        if best is not None:
            return Signal(best[1], f"like the {best[1]} examples ({best[0]:.2f})")
        return Signal("none", None)


def _unit(vector) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


# -- triage ------------------------------------------------------------------------------------


class Triage:
    """Patterns, then the model with the screen deciding priority and the fail-safe."""

    def __init__(
        self,
        check: ModelCheck | None,
        screen: Screen,
        detector: LanguageDetector,
        threshold: float = 0.15,
        firm_threshold: float = 0.4,
        split_share: float = 1.0,
        priority_timeout_s: float = 6.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.check = check
        self.screen = screen
        self.detector = detector
        self.threshold = threshold
        self.firm_threshold = max(firm_threshold, threshold)
        self.split_share = split_share
        self.priority_timeout_s = priority_timeout_s
        self.timeout_s = timeout_s

    def warm(self) -> None:
        if self.check is not None:
            try:
                self.check.warm()
            except CheckFailed:
                pass  # a check that fails now fails towards routing later

    def assess(self, text: str, history: list[str] | None = None) -> TriageResult:
        started = time.perf_counter()
        history = list(history or [])
        result = self._assess(text, history)
        result.ms = round((time.perf_counter() - started) * 1000, 1)
        return result

    def _assess(self, text: str, history: list[str]) -> TriageResult:
        language = self.detector.detect(text)
        found = route(text)
        if found in ("urgent", "crisis"):
            return TriageResult(found, "pattern", language, signal="pattern")
        flag = red_flag(text)  # a red flag in a general question: a signal, not a route
        signal = Signal(flag, "red-flag pattern in a question") if flag else \
            self.screen.signal(text, history, language)
        risky = signal.label != "none"
        if self.check is None:
            kind: Check = "skipped"
            scores: dict[str, float] = {}
        else:
            try:
                timeout = self.priority_timeout_s if risky else self.timeout_s
                scores = self.check.scores(text, history, priority=risky, timeout=timeout)
                kind = "ok"
            except CheckFailed as failed:
                kind, scores = failed.kind, {}
        if kind == "ok":
            label = decide(scores, self.threshold)
            layer: Layer = "model" if label != "none" else "none"
            firm = 1 - scores.get("none", 0.0) >= self.firm_threshold
            also = second_reply(scores, label, self.split_share)
            return TriageResult(label, layer, language, firm, also, kind, scores,
                                signal.reason)
        if risky:  # no usable check and a risk signal: route, never answer; the screen
            # only guesses which risk, so both replies show, its guess first
            other: Label = "urgent" if signal.label == "crisis" else "crisis"
            return TriageResult(signal.label, "fail-safe", language, True, other, kind,
                                scores, signal.reason)
        return TriageResult("none", "none", language, True, None, kind, scores,
                            signal.reason)


def decide(scores: dict[str, float], threshold: float) -> Label:
    """Route when the model puts at least ``threshold`` of its probability on a risk
    (``1 - P(none)``), to the likelier of crisis and urgent. On the development set one
    threshold on the total risk separated better than one per label: the model often
    splits a real emergency between the two."""
    risk = scores.get("urgent", 0.0) + scores.get("crisis", 0.0)
    if risk < threshold:
        return "none"
    return "crisis" if scores.get("crisis", 0.0) >= scores.get("urgent", 0.0) else "urgent"


def second_reply(scores: dict[str, float], label: Label, share: float) -> Label | None:
    """The other risk's reply too, when it holds at least ``share`` of the model's risk
    (``P(urgent) + P(crisis)``). The two replies send to different help (the emergency
    number; the crisis line) and a small model splits a message that is both, such as
    self-harm with an injury, between them: showing both fails towards the help the
    patient may need, where picking the likelier can withhold it."""
    if label == "none":
        return None
    other: Label = "urgent" if label == "crisis" else "crisis"
    risk = scores.get("urgent", 0.0) + scores.get("crisis", 0.0)
    return other if risk > 0 and scores.get(other, 0.0) >= share * risk else None


def build_triage(settings, embeddings, chat_factory: Callable[[], Any] | None) -> Triage:
    """Triage from settings; ``chat_factory`` builds the model the check uses (None: no
    semantic layer, patterns and the screen only)."""
    examples = load_examples(settings.prompts_dir)
    screen = Screen(embeddings, examples, load_terms(settings.prompts_dir),
                    settings.triage_screen_similarity)
    check = None
    if chat_factory is not None and settings.triage_model_check:
        cache = settings.data_dir / "cache" if settings.prefix_cache else None
        check = ModelCheck(chat_factory(), examples, settings.prompts_dir,
                           settings.triage_history_turns, cache)
    return Triage(
        check,
        screen,
        LanguageDetector(settings.languages),
        settings.triage_threshold,
        settings.triage_firm_threshold,
        settings.triage_split_share,
        settings.triage_priority_timeout_s,
        settings.triage_timeout_s,
    )
