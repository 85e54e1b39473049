"""Sentence-level support checking: is this answer sentence backed by that passage?

No packaged NLI model exists, so the checker combines signals that each catch a
known way small models invent facts, and it errs towards "not supported":

- numbers and units in the sentence must appear in the passage;
- negations must agree with the passage sentence the claim rests on;
- quantifier, comparison and category cues ("always", "more", "type of", …) must
  appear in the passage;
- content words new to the passage count against support;
- a claim keeps to its subject: naming another section's topic needs a passage that names
  it too; resting on a topic's passage ("Atrophic scars…") it must name that topic or refer
  back, not speak of all scars; a judgement between options ("better for", "more effective
  than") needs the same judgement in the passage;
- embedding similarity to the best passage sentence, as one signal among these.

``check`` returns a ``SentenceVerdict`` with the reasons; ``quote`` is the passage sentence
the claim rests on, an exact substring of the guide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings

from assistant.corpus import split_sentences
from assistant.embeddings import cosine
from assistant.records import SentenceVerdict
from assistant.words import STOP, content_stems, stem, unknown_names, words

_NUMBER = re.compile(r"\$?\d+(?:[.,]\d+)?\s*(?:%|mm|cm|percent)?")
_NUMBER_WORDS = {
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "twice",
    "once",
    "dozen",
    "hundred",
    "thousand",
    "half",
    "single",
    "several",
    "few",
}
_NEGATION = re.compile(r"\b(?:not|no|never|none|without|cannot|nor)\b|n['’]t\b", re.I)
_NOT_A_NEGATION = re.compile(r"\bor not\b", re.I)  # "whether or not" states no negation
# Absolute, superlative and safety words: the passage must use the same word.
_CUES = (
    "always",
    "never",
    "most",
    "least",
    "same",
    "only",
    "all",
    "every",
    "best",
    "worst",
    "guarantee",
    "guaranteed",
    "permanent",
    "permanently",
    "completely",
    "entirely",
    "painless",
    "safe",
    "safest",
    "cure",
    "cures",
    "instant",
    "instantly",
    "immediately",
)
# A comparison in the claim needs a comparison in the passage.
_COMPARATIVE_CLAIM = re.compile(r"\b(?:more|less|better|worse|higher|lower|fewer|greater)\b")
# "X is better (worse) than Y" judges treatments: only the same judgement in the passage counts.
# ("looks better" is an improvement, not a judgement between options; "looks better than
# before" is rejected all the same: the guide compares nothing with "before").
_JUDGEMENT = re.compile(
    r"\b(?:(?:better|worse) (?:than|for|at|option|choice)|best|worst|superior|inferior|"
    r"(?:more|less) \w+ than)\b"
)
_COMPARATIVE_PASSAGE = re.compile(
    r"\b(?:more|less|better|worse|higher|lower|fewer|greater|increas\w*|reduc\w*|diminish\w*|"
    r"improv\w*|smooth\w*|excess|overproduc\w*)\b"
)
_SUPERLATIVE = re.compile(r"\b[a-z]{2,}est\b")
_NOT_SUPERLATIVE = {
    "interest",
    "suggest",
    "rest",
    "test",
    "honest",
    "request",
    "latest",
    "forest",
    "digest",
    "invest",
    "arrest",
    "manifest",
    "modest",
    "harvest",
    "contest",
}
# "X is a type of Y": Y must be what the passage says X is a type of.
_CATEGORY = re.compile(r"\b(?:type|kind|form|sort) of ((?:[a-z\-]+ ){0,2}[a-z\-]+)")


def _numbers(text: str) -> set[str]:
    found = {re.sub(r"\s+", "", m.group(0)).rstrip(".,").lower() for m in _NUMBER.finditer(text)}
    found |= {w for w in words(text) if w in _NUMBER_WORDS}
    return {n for n in found if n}


def _digits(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?", text))


def _cues(text: str) -> set[str]:
    lowered = f" {' '.join(words(text))} "
    cues = {c for c in _CUES if f" {c} " in lowered}
    return cues | {w for w in _SUPERLATIVE.findall(lowered) if w not in _NOT_SUPERLATIVE}


def _negated(text: str) -> bool:
    return bool(_NEGATION.search(_NOT_A_NEGATION.sub("", text)))


_CATEGORY_IN_PASSAGE = re.compile(r"\b(?:type|kind|form|sort)s? of ((?:[a-z\-]+ ?){1,3})")


def _category_problems(claim: str, context: str) -> list[str]:
    """ "X is a type (kind, form, sort) of Y" needs the passage to call something a type of Y:
    the first word of Y must follow "type of" (or "types of", "kind of", …) in the passage."""
    stated = [
        [stem(w) for w in words(m.group(1)) if w not in STOP]
        for m in _CATEGORY_IN_PASSAGE.finditer(context.lower())
    ]
    problems = []
    for match in _CATEGORY.finditer(claim.lower()):
        wanted = [stem(w) for w in words(match.group(1)) if w not in STOP]
        if wanted and not any(wanted[0] in words for words in stated):
            problems.append(f"category not stated in the passage: {match.group(0)!r}")
    return problems


_BACK_REFERENCE = re.compile(
    r"^(they|these|this|it|those|the (?:treatment|process|procedure|technique))\b", re.I
)
# A subject that covers a whole kind: acne scars, scars, treatments, marks.
_GENERAL_SUBJECT = re.compile(
    r"^(?:the |most |all |many |some |such )?(?:acne )?(?:scars?|scarring|treatments?|marks?)\b",
    re.I,
)


def distinctive_heading_words(sections: list[str]) -> dict[str, frozenset[str]]:
    """Section -> the words of its own heading (the last part of the breadcrumb) that no
    other heading uses ("Chemical peels" -> chemical, peel; "Laser therapy" -> laser)."""
    leaves = {section: content_stems(section.split(" › ")[-1]) for section in sections}
    counts: dict[str, int] = {}
    for stems in leaves.values():
        for w in stems:
            counts[w] = counts.get(w, 0) + 1
    return {s: frozenset(w for w in stems if counts[w] == 1) for s, stems in leaves.items()}


def topic_words(passages: dict[str, str]) -> dict[str, frozenset[str]]:
    """Section -> its distinctive heading words, for the sections that name a topic: those
    whose passage opens with its heading ("Chemical peels can improve…"; "Bottom line"
    opens otherwise and names none)."""
    return {
        section: own
        for section, own in distinctive_heading_words(list(passages)).items()
        if own and own & content_stems(" ".join(passages[section].split()[:8]))
    }


_MARKER = re.compile(r"\s*\[\d+\](?:\s*\[\d+\])*")


def strip_markers(sentence: str) -> str:
    return _MARKER.sub("", sentence).strip()


@dataclass
class ClaimChecker:
    """Decides support of one sentence by one passage. Thresholds are settings."""

    embeddings: Embeddings
    min_similarity: float = 0.55
    max_novelty: float = 0.25
    max_novelty_if_similar: float = 0.5
    similar: float = 0.75
    # section -> the words of its heading that name its topic (see ``topic_words``)
    topics: dict[str, frozenset[str]] = field(default_factory=dict)
    _cache: dict[str, tuple[list[str], list[list[float]]]] = field(default_factory=dict)
    _claims: dict[str, list[float]] = field(default_factory=dict)

    def _claim_vector(self, claim: str) -> list[float]:
        """A claim is checked against several passages: embed it once."""
        vector = self._claims.get(claim)
        if vector is None:
            if len(self._claims) > 256:
                self._claims.clear()
            vector = self._claims[claim] = self.embeddings.embed_query(claim)
        return vector

    def _subject_problems(
        self, claim: str, claim_stems: set[str], quote: str, section: str
    ) -> list[str]:
        """A passage about one topic ("Atrophic scars") speaks of it, in its "They…"
        sentences too. A claim resting on it must name that topic or refer back: "Acne
        scars look like depressions" says of all scars what the guide says of one type."""
        topic = self.topics.get(section)
        if not topic or topic & claim_stems or _BACK_REFERENCE.match(claim):
            return []
        if _BACK_REFERENCE.match(quote) or _GENERAL_SUBJECT.match(claim):
            return [f"says of something else what the passage says of {section.split(' › ')[-1]!r}"]
        return []

    def _foreign_topics(self, claim_stems: set[str], here: set[str], section: str) -> list[str]:
        """A claim that names another section's topic, all its heading words ("Chemical
        peels use trichloroacetic acid", resting on TCA CROSS), says of that topic what the
        guide says of this one, unless this passage names it too. ("Do not cross the
        borders" does not name TCA CROSS.)"""
        return [
            f"names {other.split(' › ')[-1]!r}, which the passage does not speak of"
            for other, topic in self.topics.items()
            if other != section and topic <= claim_stems and not topic <= here
        ]

    def passage_sentences(self, passage: str) -> tuple[list[str], list[list[float]]]:
        if passage not in self._cache:
            sentences = [s for p in passage.split("\n\n") for s in split_sentences(p)]
            self._cache[passage] = (sentences, self.embeddings.embed_documents(sentences))
        return self._cache[passage]

    def check(
        self,
        sentence: str,
        passage: str,
        section: str = "",
        question: str = "",
        first_hit: bool = False,
    ) -> SentenceVerdict:
        """``question``: the patient's words a claim may echo without adding content ("sink
        in", "stick up") when it closely paraphrases the passage, or when ``first_hit``: the
        retriever, independently of the model, ranked this passage first for those words.
        Numbers, negations and claim words always count."""
        claim = strip_markers(sentence)
        sentences, vectors = self.passage_sentences(passage)
        claim_vector = self._claim_vector(claim)
        sims = [cosine(claim_vector, v) for v in vectors]
        best = max(range(len(sims)), key=sims.__getitem__)
        similarity = sims[best]
        quote = sentences[best]
        context = f"{section} {passage}"
        claim_stems, context_stems = content_stems(claim), content_stems(context)

        reasons: list[str] = []
        missing_numbers = {
            n for n in _numbers(claim) if not (_digits(n) and _digits(n) <= _digits(context))
        }
        missing_numbers -= {n for n in missing_numbers if n in words(context)}
        if missing_numbers:
            reasons.append(f"number(s) not in the passage: {', '.join(sorted(missing_numbers))}")
        if _negated(claim) != _negated(quote):
            reasons.append("negation differs from the passage")
        missing_cues = _cues(claim) - _cues(context)
        if missing_cues:
            reasons.append(f"claim word(s) not in the passage: {', '.join(sorted(missing_cues))}")
        if _COMPARATIVE_CLAIM.search(claim.lower()) and not _COMPARATIVE_PASSAGE.search(
            context.lower()
        ):
            reasons.append("comparison not made in the passage")
        elif _JUDGEMENT.search(claim.lower()) and not _JUDGEMENT.search(context.lower()):
            reasons.append("judges better or worse where the passage does not")
        reasons.extend(self._foreign_topics(claim_stems, context_stems, section))
        reasons.extend(_category_problems(claim, context))
        reasons.extend(self._subject_problems(claim, claim_stems, quote, section))
        names = unknown_names(claim, context)
        if names:  # the patient's words do not excuse these: injected products come from there
            reasons.append(f"name(s) the passage never uses: {', '.join(sorted(names))}")
        new = claim_stems - context_stems
        if similarity >= self.similar or first_hit:
            # Otherwise the patient's words are the claim's own: "the scar that sticks up
            # is called a boxcar scar" maps them to a passage nothing else ties them to.
            new -= content_stems(question)
        novelty = len(new) / len(claim_stems) if claim_stems else 0.0
        allowed = self.max_novelty_if_similar if similarity >= self.similar else self.max_novelty
        if novelty > allowed:
            reasons.append(f"words new to the passage: {', '.join(sorted(new))}")
        if similarity < self.min_similarity:
            reasons.append(f"low similarity to the passage ({similarity:.2f})")
        return SentenceVerdict(sentence=claim, supported=not reasons, similarity=similarity,
                               novelty=novelty, quote=quote, reasons=reasons)
