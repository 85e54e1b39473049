"""Guide files -> sections -> chunks.

A guide is a ``.md`` file (headings ``#``..``######``; optional YAML front matter
holding metadata such as the call to action) or a ``.txt`` file (one section),
with an optional ``<name>.meta.yaml`` beside it (title, publisher, source,
version, date). Chunks never straddle two sections; each has a stable id made
of document, heading path and ordinal, and a hash of its content.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import CorpusError

BREADCRUMB_SEP = " › "
GUIDE_SUFFIXES = (".md", ".txt")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
# A sentence ends at . ! ? (optionally followed by a closing quote or bracket)
# before white space and an upper-case letter, digit or opening quote/bracket.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[A-Z0-9“‘(\"])")
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")

log = logging.getLogger("scarguide.corpus")


@dataclass(frozen=True)
class GuideMeta:
    """What is known about one guide document (never embedded)."""

    doc_id: str
    title: str
    path: Path
    publisher: str | None = None
    source: str | None = None
    version: str | None = None
    date: str | None = None
    description: str | None = None
    call_to_action: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """The text directly under one heading."""

    doc_id: str
    heading_path: tuple[str, ...]
    paragraphs: tuple[str, ...]

    def breadcrumb(self, doc_title: str) -> str:
        return BREADCRUMB_SEP.join(self.heading_path) if self.heading_path else doc_title


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage of a guide."""

    chunk_id: str
    doc_id: str
    doc_title: str
    section: str
    ordinal: int
    text: str
    content_hash: str

    @property
    def embed_text(self) -> str:
        """What is embedded and indexed: the section breadcrumb gives the passage its context."""
        return f"{self.section}\n\n{self.text}"

    def metadata(self) -> dict[str, str | int]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "doc_title": self.doc_title,
            "section": self.section,
            "ordinal": self.ordinal,
            "text": self.text,
            "content_hash": self.content_hash,
        }


@dataclass(frozen=True)
class Guide:
    meta: GuideMeta
    sections: tuple[Section, ...]


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "section"


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences, keeping abbreviations such as "a.k.a." intact and a
    list item's number ("2.") with the sentence it numbers."""
    sentences: list[str] = []
    for piece in (p.strip() for p in _SENTENCE_END.split(text.strip())):
        if not piece:
            continue
        if sentences and re.fullmatch(r"\d+[.)]", sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


_LIST_ITEM = re.compile(r"^\d+[.)]\s")


def guide_units(text: str) -> list[str]:
    """What an answer shows of a passage, in order: its sentences, with a numbered list
    item kept whole as one unit ("1. Inflammation. When you have a pimple, …")."""
    units: list[str] = []
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        if _LIST_ITEM.match(paragraph):
            units.append(" ".join(paragraph.split()))
        else:
            units.extend(" ".join(s.split()) for s in split_sentences(paragraph))
    return units


def _read_yaml(text: str, where: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CorpusError(f"{where}: metadata is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise CorpusError(f"{where}: metadata must be a mapping of keys to values")
    return data


def _paragraphs(lines: Iterable[str]) -> list[str]:
    """Group lines into paragraphs; every list item is a paragraph of its own."""
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            paragraphs.append(" ".join(" ".join(current).split()))
            current.clear()

    for line in lines:
        if not line.strip():
            flush()
        elif _LIST_ITEM.match(line):
            flush()
            current.append(line.strip())
        else:
            current.append(line.strip())
    flush()
    return paragraphs


def parse_markdown(
    text: str, doc_id: str, path: Path
) -> tuple[dict[str, Any], str | None, list[Section]]:
    """Return (front matter, first H1 title or None, sections) of a markdown guide."""
    front: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        front = _read_yaml(match.group(1), path)
        text = text[match.end() :]

    title: str | None = None
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    body: list[str] = []
    seen: dict[tuple[str, ...], int] = {}

    def close() -> None:
        paragraphs = _paragraphs(body)
        body.clear()
        if not paragraphs:
            return
        heading_path = tuple(h for _, h in stack)
        count = seen.get(heading_path, 0)
        seen[heading_path] = count + 1
        if count:  # the same heading path twice: keep ids distinct and stable
            heading_path = heading_path[:-1] + (f"{heading_path[-1]} ({count + 1})",)
        sections.append(Section(doc_id, heading_path, tuple(paragraphs)))

    for line in text.splitlines():
        heading = _HEADING.match(line)
        if not heading:
            body.append(line)
            continue
        close()
        level, name = len(heading.group(1)), heading.group(2).strip()
        if level == 1 and title is None and not stack:
            title = name
            continue
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, name))
    close()
    return front, title, sections


def load_guide(path: Path) -> Guide:
    """Read one guide file and the metadata beside it."""
    doc_id = slugify(path.stem)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot be read as UTF-8 text ({exc})") from None

    sidecar = path.with_name(f"{path.stem}.meta.yaml")
    meta: dict[str, Any] = {}
    if sidecar.exists():
        meta = _read_yaml(sidecar.read_text(encoding="utf-8"), sidecar)

    if path.suffix == ".md":
        front, h1, sections = parse_markdown(text, doc_id, path)
        meta = {**front, **meta}
    else:
        h1 = None
        paragraphs = _paragraphs(text.splitlines())
        sections = [Section(doc_id, (), tuple(paragraphs))] if paragraphs else []

    if not sections:
        raise CorpusError(f"{path}: the guide has no text")
    title = str(meta.pop("title", None) or h1 or path.stem.replace("-", " ").capitalize())
    known = {
        k: meta.pop(k, None) for k in ("publisher", "source", "version", "date", "description")
    }
    cta = meta.pop("call_to_action", None)
    guide_meta = GuideMeta(
        doc_id=doc_id,
        title=title,
        path=path,
        **{k: (str(v).strip() if v is not None else None) for k, v in known.items()},
        call_to_action={k: str(v).strip() for k, v in cta.items()}
        if isinstance(cta, dict)
        else None,
        extra=meta,
    )
    return Guide(guide_meta, tuple(sections))


def load_corpus(corpus_dir: Path) -> list[Guide]:
    """Load every guide in ``corpus_dir`` (sorted by file name, so ids are stable)."""
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"Corpus folder {corpus_dir} does not exist. Set SCARGUIDE_CORPUS_DIR to the folder "
            "holding the guide (.md or .txt files)."
        )
    files = sorted(p for p in corpus_dir.iterdir() if p.is_file() and p.suffix in GUIDE_SUFFIXES)
    if not files:
        raise CorpusError(f"Corpus folder {corpus_dir} holds no guide (.md or .txt files).")
    guides = [load_guide(p) for p in files]
    ids = [g.meta.doc_id for g in guides]
    if len(set(ids)) != len(ids):
        raise CorpusError(f"Two guides in {corpus_dir} share a name: {sorted(ids)}")
    return guides


def _pack(paragraphs: Iterable[str], max_words: int) -> list[str]:
    """Pack paragraphs (split into sentences when too long) into chunks of at most
    ``max_words`` words; a single sentence longer than that becomes a chunk of its own."""
    units: list[tuple[str, bool]] = []  # (text, starts a new paragraph)
    for paragraph in paragraphs:
        if len(paragraph.split()) <= max_words:
            units.append((paragraph, True))
        else:
            units.extend((s, i == 0) for i, s in enumerate(split_sentences(paragraph)))

    chunks: list[str] = []
    current, words = "", 0
    for text, new_paragraph in units:
        n = len(text.split())
        if current and words + n > max_words:
            chunks.append(current)
            current, words = "", 0
        joiner = "\n\n" if new_paragraph else " "
        current = f"{current}{joiner}{text}" if current else text
        words += n
    if current:
        chunks.append(current)
    return chunks


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def without_instructions(paragraphs: Iterable[str], where: str) -> list[str]:
    """Paragraphs with every sentence that addresses the assistant left out (logged)."""
    from assistant.safety import instruction_like

    kept = []
    for paragraph in paragraphs:
        sentences = split_sentences(paragraph)
        clean = [s for s in sentences if not instruction_like(s)]
        for dropped in (s for s in sentences if instruction_like(s)):
            log.warning("left out of the index (an instruction, not a fact) in %s: %s",
                        where, dropped[:200])
        if clean:
            kept.append(paragraph if len(clean) == len(sentences) else " ".join(clean))
    return kept


def chunk_guide(guide: Guide, max_words: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in guide.sections:
        breadcrumb = section.breadcrumb(guide.meta.title)
        path_slug = "/".join(slugify(h) for h in section.heading_path) or "intro"
        paragraphs = without_instructions(section.paragraphs, breadcrumb)
        for ordinal, text in enumerate(_pack(paragraphs, max_words)):
            chunks.append(
                Chunk(
                    chunk_id=f"{guide.meta.doc_id}:{path_slug}:{ordinal}",
                    doc_id=guide.meta.doc_id,
                    doc_title=guide.meta.title,
                    section=breadcrumb,
                    ordinal=ordinal,
                    text=text,
                    content_hash=content_hash(f"{breadcrumb}\n{text}"),
                )
            )
    return chunks


def build_chunks(corpus_dir: Path, max_words: int) -> list[Chunk]:
    """The whole corpus as chunks, in a stable order."""
    return [c for guide in load_corpus(corpus_dir) for c in chunk_guide(guide, max_words)]
