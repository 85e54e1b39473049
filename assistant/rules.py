"""The answer chain's remaining rules, each named and switchable.

``SCARGUIDE_ANSWER_RULES_OFF`` (a list of names) turns rules off; docs/answers.md gives each
rule's measured effect on the held-out answer sets. No rule names a guide passage or an
eval question: each is a general reading of what a patient asked.

- ``aspects``: a question about an aspect patients often ask about (cost, pain, recovery,
  sessions, risks, age, pregnancy) that the chosen passages never mention gets a partial
  answer: what the guide does not say, then what it says about the topic.
- ``beyond_topic``: a question that names a chosen passage's topic (a word of its heading
  that no other heading has, typos allowed: "subcison") and asks with words the chosen
  passages never use, even misspelled, and that are English words ("is it sore
  afterwards?"; not a name, an address or a number), at least two of them (one alone is
  more often a synonym: "wrinkles" for "fine lines"), gets a partial answer naming them.
  A question in lay words names no topic, and is left to the model. A question read in
  English from another language is not checked: its words are the translation's, not the
  patient's.
- ``model_says_none``: the model's probability of choosing no passage, read off its
  next-token distribution, at least ``answer_none_probability``: the guide does not cover
  the question (the greedy reply alone almost never chooses none).
- ``refers_back``: a message is read together with the patient's previous one only for
  the scope gate when it points back at it (a pronoun, a demonstrative, "and…", "what
  about…"): "pizza near me" after a question on lasers is not about lasers.
- ``closing_by_meaning``: a message that reads like a reviewed goodbye or request for a
  person (``prompts/closing_examples.yaml``, MiniLM similarity ≥ ``closing_similarity``)
  gets the handoff; the reviewed patterns of ``assistant.safety`` catch the plain ones.
  Either way the message must read more like a closing than like any guide passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property

import yaml
from langchain_core.embeddings import Embeddings

from assistant.config import Settings
from assistant.corpus import Chunk
from assistant.embeddings import cosine
from assistant.errors import ConfigError
from assistant.safety import Route
from assistant.safety import route as pattern_route
from assistant.verify import distinctive_heading_words
from assistant.words import (
    alike,
    content_stems,
    english_words,
    stem,
    uncovered_words,
    words,
)

NAMES = ("aspects", "beyond_topic", "model_says_none", "refers_back", "closing_by_meaning")

# Words by which a message points back at the conversation ("does *it* hurt?", "and
# *those*?", "what about…"): English pronouns, demonstratives and elliptical openers.
_REFERS_BACK = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|those|these|that|this|one|ones|both|either|"
    r"the same|the first|the second|the other|the former|the latter)\b"
    r"|^\s*(and|also|what about|how about|so|but|then)\b",
    re.I,
)

# aspect: (how a reply names it, the words that ask about it)
ASPECTS = {
    "cost": ("cost", r"\b(cost|costs|price|prices|pricing|expensive|cheap|afford|pay for"
             r"|insurance)\b"),
    "pain": ("pain", r"\b(hurt|hurts|painful|pain|sting|stings|numb|numbing|anesthe\w*"
             r"|anaesthe\w*)\b"),
    "recovery": ("recovery time", r"\b(recovery|recover|downtime|down time|heal time"
                 r"|healing time|how long)\b"),
    "sessions": ("the number of sessions", r"\b(sessions?|appointments?|treatments? needed"
                 r"|how many times)\b"),
    "risks": ("risks or safety", r"\b(side effects?|risks?|risky|complications?|safe|safety"
              r"|dangerous)\b"),
    "age": ("age", r"\b(age|ages|age limit|years old|too young|too old|teen|teenager)\b"),
    "pregnancy": ("pregnancy", r"\b(pregnan\w*|breast ?feeding)\b"),
}


# beyond_topic: the fewest words the passages lack that make a question ask beyond them
BEYOND_MIN_WORDS = 2

# closing by meaning alone: the message must read this much more like a closing than like
# any guide passage ("can you help me with my eczema too" asks something)
CLOSING_MARGIN = 0.2


class Rules:
    def __init__(self, settings: Settings, embeddings: Embeddings | None = None):
        unknown = set(settings.answer_rules_off) - set(NAMES)
        if unknown:
            raise ConfigError(f"answer_rules_off: unknown rules {sorted(unknown)}; known: {NAMES}")
        self.settings = settings
        self.embeddings = embeddings
        self.off = frozenset(settings.answer_rules_off)

    def on(self, name: str) -> bool:
        return name not in self.off

    def missing_aspects(self, question: str, passages: str) -> list[str]:
        """Aspects the question asks about that the passages never mention (same words)."""
        if not self.on("aspects"):
            return []
        q, p = question.lower(), passages.lower()
        return [
            name
            for name, pattern in ASPECTS.values()
            if re.search(pattern, q) and not re.search(pattern, p)
        ]

    def refers_back(self, text: str) -> bool:
        """Does the message point back at the conversation? (Always, with the rule off.)"""
        return not self.on("refers_back") or bool(_REFERS_BACK.search(text))

    def beyond_topic(self, question: str, chosen: list[Chunk], sections: list[str],
                     translated: bool = False) -> list[str]:
        """The question's words that the chosen passages lack, when it names their topic
        (``sections``: every section of the guide, whose headings tell topics apart).
        ``translated``: the question was put into English, so its words are not the
        patient's own, and none is held against the guide."""
        if not self.on("beyond_topic") or not chosen or translated:
            return []
        own = distinctive_heading_words(sections)
        asked = content_stems(question)
        if not any(alike(a, w) for c in chosen for w in own.get(c.section, ()) for a in asked):
            return []
        # every heading counts as known: another topic named ("keloid vs hypertrophic") is
        # the guide's, not a gap
        context = " ".join([*(f"{c.section} {c.text}" for c in chosen), *sections])
        missing = uncovered_words(question, context)
        # English words only, and none written as a name ("I'm Ada"): a name, an email or a
        # garbled typo asks about nothing
        english = english_words()
        plain = re.sub(r"\S*[@/\d]\S*", " ", question)  # addresses, links, numbers
        names = {m.lower() for m in re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+", plain)}
        found = list(dict.fromkeys(
            w for w in words(plain) if stem(w) in missing and w in english and w not in names
        ))
        # one word alone is more often the patient's synonym ("wrinkles" for "fine lines")
        return found[:3] if len(found) >= BEYOND_MIN_WORDS else []

    @cached_property
    def _closing_bank(self) -> list[list[float]]:
        path = self.settings.prompts_dir / "closing_examples.yaml"
        try:
            examples = (yaml.safe_load(path.read_text(encoding="utf-8")) or {})["examples"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: cannot be read ({exc})") from None
        assert self.embeddings is not None
        return self.embeddings.embed_documents([str(e) for e in examples])

    def closing_score(self, text: str) -> float:
        if self.embeddings is None:
            return 0.0
        vector = self.embeddings.embed_query(text)
        return max(cosine(vector, v) for v in self._closing_bank)

    def route(self, text: str, guide_similarity: Callable[[str], float] | None = None) -> Route:
        """Reviewed patterns first (declined, closing); then closing by meaning: a message
        reads like a reviewed closing (at least ``closing_similarity``), or a pattern
        matched, and either way it reads more like a closing than like any guide passage
        (``guide_similarity``: the retriever's top similarity): "bye bye pimples, hello
        scars, what now?" is a question."""
        where = pattern_route(text)
        if where not in ("question", "closing") or not self.on("closing_by_meaning"):
            return where
        score = self.closing_score(text)
        guide = guide_similarity(text) if guide_similarity is not None else -1.0
        if where == "closing":
            return "closing" if score >= guide else "question"
        if score >= self.settings.closing_similarity and score >= guide + CLOSING_MARGIN:
            return "closing"
        return where
