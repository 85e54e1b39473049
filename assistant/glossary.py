"""The guide's own glossary: the terms it defines, each with the guide sentence that
defines it, found at ingest from the guide's shape, never written by a model.

A term comes from one of three general readings of the guide:

- **a heading** that names a thing ("Boxcar scars", "Post-inflammatory erythema (PIE)")
  and a sentence of its section that starts with that name: the definition is that
  sentence, with the next one when it goes on about the same thing ("They look like…");
- **an abbreviation in brackets**, either way round ("trichloroacetic acid (TCA)",
  "PRP (platelet-rich plasma)", "(or PIH, a.k.a. …)"), its long form found by the
  letters of the abbreviation (Schwartz and Hearst's algorithm): the definition is the
  sentence that introduces it;
- **a defining sentence**: one that opens with a short name and *is*, *are*,
  *refers to*, *involves*, *uses* or *means* ("Subcision is a type of treatment…").

Where a term is defined twice, a sentence that defines (a defining verb right after
the term) beats one that only mentions it, and the earlier wins a tie. An answer carries
the entries of the terms it shows (``terms_in``), except a term whose definition is a
sentence the answer already shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from assistant.corpus import BREADCRUMB_SEP, Chunk, split_sentences
from assistant.words import stem

Source = Literal["heading", "abbreviation", "sentence"]

_DEFINING = r"(?:is|are|refers? to|involves?|uses?|means?)"
_DEFINES = re.compile(rf"^\s*(?:The\s+)?(?P<name>[A-Za-z][\w-]*(?:\s+[\w-]+){{0,3}}?)\s+"
                      rf"{_DEFINING}\b")
_NOT_A_NAME = {"it", "this", "these", "they", "that", "those", "there", "here", "which",
               "what", "who", "he", "she", "we", "you", "i", "studies", "one", "each",
               "some", "many", "most", "all", "both", "such", "the", "a", "an"}
_GOES_ON = re.compile(r"^(?:They|These|It|This|Its|Their)\b")
# "long form (ABBR)", "(or ABBR, …)", "(ABBR)—": the abbreviation in brackets
_ABBR_AFTER = re.compile(r"\((?:or\s+|a\.k\.a\.\s+)?(?P<abbr>[A-Z][A-Z0-9]{1,7})s?[,)]")
# "ABBR (long form)"
_ABBR_BEFORE = re.compile(r"\b(?P<abbr>[A-Z][A-Z0-9]{1,7})\s+\((?P<long>[a-z][^()]{2,60})\)")
_WORD = re.compile(r"[A-Za-z][\w'-]*")
MAX_TERMS_PER_ANSWER = 8


@dataclass(frozen=True)
class Entry:
    """One term the guide defines, with its defining sentence and where that stands."""

    term: str
    definition: str
    chunk_id: str
    section: str
    source: Source
    also: tuple[str, ...] = ()  # other names of the same term (an abbreviation's long form)

    def names(self) -> tuple[str, ...]:
        return (self.term, *self.also)

    def to_dict(self) -> dict[str, object]:
        return {"term": self.term, "definition": self.definition, "chunk_id": self.chunk_id,
                "section": self.section, "source": self.source, "also": list(self.also)}


def _key(name: str) -> tuple[str, ...]:
    return tuple(stem(w.lower()) for w in _WORD.findall(name))


def long_form(abbr: str, words: list[str]) -> str | None:
    """The long form of ``abbr`` at the end of ``words`` (the words before it): the
    shortest run whose letters hold the abbreviation's in order, its first letter at
    the start of the run's first word (Schwartz & Hearst 2003)."""
    letters = abbr.lower()
    for size in range(1, min(len(words), len(abbr) + 2) + 1):
        candidate = " ".join(words[-size:])
        if candidate[:1].lower() != letters[0] or not _holds(letters, candidate.lower()):
            continue
        return candidate.strip(" ,;:—-")
    return None


def _holds(letters: str, text: str) -> bool:
    """Every letter of the abbreviation, right to left, in ``text``; the first at a
    word's start."""
    at = len(text) - 1
    for i in range(len(letters) - 1, -1, -1):
        while at >= 0 and (text[at] != letters[i] or
                           (i == 0 and at > 0 and text[at - 1].isalnum())):
            at -= 1
        if at < 0:
            return False
        at -= 1
    return True


@dataclass
class _Found:
    entry: Entry
    defines: bool
    order: int


class Glossary:
    """The terms of a guide, found in its chunks; ``terms_in`` reads an answer."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)
        self._by_name = {_key(n): e for e in self.entries for n in e.names() if _key(n)}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> Entry | None:
        return self._by_name.get(_key(name))

    @classmethod
    def from_chunks(cls, chunks: Iterable[Chunk]) -> Glossary:
        found: dict[tuple[str, ...], _Found] = {}
        order = 0

        def add(entry: Entry, defines: bool) -> None:
            """One entry per thing: a name already known (the term or another name of
            it) joins its entry, and a defining sentence beats a mention."""
            nonlocal order
            order += 1
            key = _key(entry.term)
            if not key or key[0] in _NOT_A_NAME:
                return
            keys = {_key(n) for n in entry.names()}
            old_key = next((k for k, f in found.items()
                            if keys & {_key(n) for n in f.entry.names()}), None)
            if old_key is None:
                found[key] = _Found(entry, defines, order)
                return
            old = found[old_key]
            base = entry if defines and not old.defines else old.entry
            names = _names([old.entry.term, *old.entry.also], entry.names(), base.term)
            old.entry = Entry(base.term, base.definition, base.chunk_id, base.section,
                              base.source, names)
            old.defines = old.defines or defines

        chunks = list(chunks)
        every = [stem(w.lower()) for c in chunks for w in _WORD.findall(c.text)]
        titles = [_key(c.doc_title) for c in chunks]

        def named(entry: Entry) -> bool:
            """The guide's subject (in its title) is no term to explain; a name from a
            defining sentence must be named again in the guide (a topic, not a phrase)."""
            key = _key(entry.term)
            if any(_find(list(title), key) is not None for title in titles):
                return False
            return entry.source != "sentence" or _count(every, key) >= 2

        for chunk in chunks:
            sentences = [s for p in chunk.text.split("\n\n") for s in split_sentences(p)]
            heading = chunk.section.split(BREADCRUMB_SEP)[-1].strip()
            for entry, defines in _from_heading(heading, sentences, chunk):
                if named(entry):
                    add(entry, defines)
            for i, sentence in enumerate(sentences):
                for entry, defines in _from_sentence(sentence, sentences, i, chunk):
                    if named(entry):
                        add(entry, defines)
        return cls(f.entry for f in sorted(found.values(), key=lambda f: f.order))

    def terms_in(self, text: str, shown: Iterable[str] = ()) -> list[Entry]:
        """The entries whose term (or another name of it) ``text`` shows, in the order
        they first appear, without those defined by a sentence in ``shown``."""
        shown_norm = {" ".join(s.split()) for s in shown}
        tokens = [stem(w.lower()) for w in _WORD.findall(text)]
        hits: dict[str, tuple[int, Entry]] = {}
        for entry in self.entries:
            if " ".join(entry.definition.split()) in shown_norm or any(
                    " ".join(s.split()) in shown_norm for s in split_sentences(entry.definition)):
                continue
            for name in entry.names():
                key = _key(name)
                at = _find(tokens, key)
                if at is not None and (entry.term not in hits or at < hits[entry.term][0]):
                    hits[entry.term] = (at, entry)
        ordered = [e for _, e in sorted(hits.values(), key=lambda h: h[0])]
        return _without_parts(ordered)[:MAX_TERMS_PER_ANSWER]


def _names(old: Iterable[str], new: Iterable[str], term: str) -> tuple[str, ...]:
    """Other names, one per spelling (case and plural aside), never the term itself."""
    seen = {_key(term)}
    out = []
    for name in [*old, *new]:
        if _key(name) not in seen:
            seen.add(_key(name))
            out.append(name)
    return tuple(out)


def _find(tokens: list[str], key: tuple[str, ...]) -> int | None:
    if not key:
        return None
    for i in range(len(tokens) - len(key) + 1):
        if tuple(tokens[i:i + len(key)]) == key:
            return i
    return None


def _count(tokens: list[str], key: tuple[str, ...]) -> int:
    return sum(tuple(tokens[i:i + len(key)]) == key for i in range(len(tokens) - len(key) + 1))


def _without_parts(entries: list[Entry]) -> list[Entry]:
    """A term inside a longer one shown ("scars" in "boxcar scars") is left out."""
    keys = [_key(e.term) for e in entries]
    out = []
    for entry, key in zip(entries, keys, strict=True):
        longer = any(len(k) > len(key) and _find(list(k), key) is not None for k in keys)
        if not longer:
            out.append(entry)
    return out


def _name_and_abbr(heading: str) -> tuple[str, str | None]:
    match = re.fullmatch(r"(?P<name>.+?)\s*\((?P<abbr>[A-Z][A-Z0-9]{1,7})\)", heading)
    return (match["name"], match["abbr"]) if match else (heading, None)


def _from_heading(heading: str, sentences: list[str],
                  chunk: Chunk) -> Iterator[tuple[Entry, bool]]:
    """A heading that names a thing: a short noun phrase, no question, no comparison,
    and a sentence of its section that opens with it (its words among the first few)."""
    if not heading or heading.endswith("?") or len(heading.split()) > 5 or \
            re.search(r"\b(?:vs\.?|how|why|what|when|line)\b", heading, re.I):
        return
    name, abbr = _name_and_abbr(heading)
    want = set(_key(name))
    for i, sentence in enumerate(sentences):
        opening = {stem(w.lower()) for w in _WORD.findall(sentence)[: len(want) + 4]}
        if want and want <= opening:
            definition = _with_next(sentences, i)
            defines = bool(re.search(rf"\b{_DEFINING}\b", " ".join(sentence.split()[:8])))
            also = (abbr,) if abbr else ()
            yield Entry(name, definition, chunk.chunk_id, chunk.section, "heading", also), \
                defines
            return


def _from_sentence(sentence: str, sentences: list[str], i: int,
                   chunk: Chunk) -> Iterator[tuple[Entry, bool]]:
    for match in _ABBR_AFTER.finditer(sentence):
        abbr = match["abbr"]
        before = sentence[: match.start()]
        if match.group(0).startswith(("(or", "(a.k.a")):  # "X (or ABBR": X stands before
            before = before.rstrip()
        words = _WORD.findall(before)[-(len(abbr) + 2):]
        # hyphenated words count their parts' letters ("post-inflammatory")
        full = long_form(abbr, [w for w in words])
        if full:
            defines = bool(re.match(rf"\s*(?:\((?:[^)]*)\)\s*)?\w*\s*{_DEFINING}\b",
                                    sentence[match.end():]))
            yield Entry(abbr, sentence, chunk.chunk_id, chunk.section, "abbreviation",
                        (full,)), defines
    for match in _ABBR_BEFORE.finditer(sentence):
        abbr, full = match["abbr"], match["long"].strip()
        if long_form(abbr, _WORD.findall(full)) == full or _holds(abbr.lower(), full.lower()):
            yield Entry(abbr, sentence, chunk.chunk_id, chunk.section, "abbreviation",
                        (full,)), True
    defined = _DEFINES.match(sentence)
    if defined and len(defined["name"].split()) <= 4:
        name = defined["name"]
        if name.split()[0].lower() not in _NOT_A_NAME and not any(
                w[0].isdigit() for w in name.split()):
            yield Entry(name, _with_next(sentences, i), chunk.chunk_id, chunk.section,
                        "sentence"), True


def _with_next(sentences: list[str], i: int) -> str:
    """The sentence, and the next when it goes on about the same thing ("They …")."""
    if i + 1 < len(sentences) and _GOES_ON.match(sentences[i + 1]):
        return f"{sentences[i]} {sentences[i + 1]}"
    return sentences[i]
