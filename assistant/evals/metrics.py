"""The metric functions every suite shares: facts, forbidden strings, numbers and doses
not in the guide, shown sentences and how many are the guide's own words, ratios and the
quick subsets. One definition each, so ``scarguide eval`` and its subcommands decide
alike."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from assistant.records import AnswerRecord

# a dose-like quantity: a number with a unit (mg, ml, %, units, mm…)
DOSE = re.compile(
    r"\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|ml|g|%|percent|units?|iu|mm)\b|\d+\s*%", re.I
)
_MARKER = re.compile(r"\[\d+\]")


def _norm(text: str) -> str:
    text = text.lower().replace("’", "'").replace("–", "-").replace("—", "-")
    return " ".join(text.split())


def facts_present(answer: str, facts: list[list[str]]) -> bool:
    text = _norm(answer)
    return all(any(_norm(alt) in text for alt in fact) for fact in facts)


def forbidden_found(answer: str, forbidden: list[str]) -> list[str]:
    text = _norm(answer)
    return [f for f in forbidden if _norm(f) in text]


def numbers_not_in(answer: str, guide_text: str) -> list[str]:
    guide_numbers = set(re.findall(r"\d+(?:\.\d+)?", guide_text))
    shown = re.sub(r"\[\d+\]", " ", answer)
    return [n for n in re.findall(r"\d+(?:\.\d+)?", shown) if n not in guide_numbers]


def doses_not_in(answer: str, guide_text: str) -> list[str]:
    """Dose-like quantities of an answer (its ``[n]`` markers aside) that the guide, with
    its whitespace flattened, does not contain ("4-5 mm" is the guide's own)."""
    return [d for d in DOSE.findall(_MARKER.sub("", answer))
            if " ".join(d.split()) not in guide_text]


def first_hit(record: AnswerRecord) -> str | None:
    """The chunk retrieval ranked first for the record's question (the checker lets a
    claim resting on it echo the patient's words)."""
    return record.retrieved[0].chunk_id if record.retrieved else None


def unresolved_markers(record: AnswerRecord) -> list[int]:
    cited = {c.n for c in record.citations}
    return [int(n) for n in re.findall(r"\[(\d+)\]", record.answer) if int(n) not in cited]


def _flat(text: str) -> str:
    return " ".join(text.split())


def flat_guide(chunks) -> str:
    """The guide's text, each chunk's whitespace flattened."""
    return " ".join(_flat(c.text) for c in chunks)


def verbatim_counts(record: AnswerRecord, guide_text: str, templates) -> tuple[int, int]:
    """(verbatim sentences, shown sentences) of an answer: fixed template text at its
    start and end is set aside; the rest must be guide sentences, each with its marker."""
    if record.status in ("urgent", "declined", "handoff"):
        return 0, 0  # fixed replies, not answers
    text = _flat(record.answer)
    changed = True
    while changed and text:
        changed = False
        for pattern in templates:
            body = pattern.pattern.strip("^$")
            start = re.match(body + r"(?:\s+|$)", text, re.S)
            if start:
                text, changed = text[start.end():].strip(), True
                continue
            end = re.search(r"(?:^|\s)" + body.replace("(.+?)", "([^.]+?)") + "$", text, re.S)
            if end:
                text, changed = text[: end.start()].strip(), True
    by_n = {c.n: c for c in record.citations}
    guide = _flat(guide_text)
    pieces = re.findall(r"(.+?)((?:\s*\[\d+\])+)(?=\s|$)", text)
    leftover = re.sub(r"(.+?)((?:\s*\[\d+\])+)(?=\s|$)", " ", text).strip()
    good = 0
    for sentence, markers in pieces:
        numbers = [int(n) for n in re.findall(r"\d+", markers)]
        quotes = [_flat(by_n[n].quote) for n in numbers if n in by_n]
        sentence = _flat(sentence)
        good += bool(quotes) and all(q == sentence and q in guide for q in quotes)
    return good, len(pieces) + (1 if leftover else 0)


def shown_sentences(record: AnswerRecord) -> list[tuple[str, list[int]]]:
    """(sentence without markers, its marker numbers) for every shown guide sentence (the
    record's typed pieces; :func:`verbatim_counts` reads the string the patient reads)."""
    return [(s.text.strip(), list(s.citations)) for s in record.sentences if s.citations]


def ratio(numerator: float, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def stratified(items: list, key: Callable[[Any], str], n: int | None) -> list:
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


def pct(x: float | None) -> str:
    """A share as a percentage with one decimal ("-" for none)."""
    return "-" if x is None else f"{100 * x:.1f}%"


def secs(x: float | None, places: int = 2) -> str:
    """Milliseconds shown as seconds ("-" for none)."""
    return "-" if x is None else f"{x / 1000:.{places}f} s"
