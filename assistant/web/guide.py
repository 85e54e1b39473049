"""``/guide``: the guide itself, readable in the app, and the links that open it.

Every chunk of the guide has a stable anchor on the page (made from its ``chunk_id``), so
an answer's ``[n]`` marker and its Sources entry open the passage they quote. A link may
add a text fragment (``#anchor:~:text=…``) that highlights the quoted sentence: it is
built from the guide's own words only (a quote that is not the chunk's text gets no
fragment, a chunk that is not in the guide gets no link), so nothing a patient typed ever
goes into a URL. A fragment never reaches the server either: browsers do not send it.

The page is plain HTML (``lang``, landmarks, a table of contents, headings in order,
contrast of at least 4.5:1), with its only style inline and a Content-Security-Policy that
allows nothing else: no script, no image, no external asset.

The same headings give the chat its invitations: the suggested questions on its first
screen (``starter_questions``) and the topics offered after a "not covered" answer
(``nearby_questions``).

The anchors and text fragments are made in ``guide_links.py``, the page's HTML pieces and
its style in ``guide_html.py``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable, Iterable, Sequence

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from assistant.corpus import BREADCRUMB_SEP, Chunk
from assistant.records import RetrievedPassage
from assistant.web.guide_html import (
    PALETTE,
    Heading,
    chunk_html,
    chunks_html,
    heading_id,
    page_css,
    section_html,
    toc_html,
)
from assistant.web.guide_links import LIST_ITEM, anchor, flat, text_fragment

# the page's colours and the links into it are the guide's public face too
__all__ = ["GUIDE_PATH", "PALETTE", "Guide", "anchor", "guide_metadata", "guide_router",
           "leaf", "text_fragment", "topic_question"]

GUIDE_PATH = "/guide"
_QUESTION_START = re.compile(
    r"^(what|how|why|when|which|who|where|can|could|does|do|is|are|should|will)\b", re.I
)


def leaf(section: str) -> str:
    return section.split(BREADCRUMB_SEP)[-1].strip()


def topic_question(heading: str) -> str:
    """The question a suggestion asks about one heading of the guide: a heading that is a
    question already is asked as it is; any other is "What does the guide say about …?"."""
    heading = heading.strip()
    if heading.endswith("?"):
        return heading
    if _QUESTION_START.match(heading):
        return heading + "?"
    return f"What does the guide say about {_lower_first(heading)}?"


def _lower_first(heading: str) -> str:
    """"Laser therapy" -> "laser therapy"; an acronym ("PRP therapy") stays as it is."""
    first = heading.split(" ", 1)[0]
    if first[:1].isupper() and first[1:] == first[1:].lower():
        return heading[:1].lower() + heading[1:]
    return heading

def _is_topic(node: Heading) -> bool:
    """A top heading worth asking about: a question, or a topic with subtopics (a closing
    "Bottom line" is neither)."""
    return bool(node.title.endswith("?") or _QUESTION_START.match(node.title) or node.children)


def _heading_path(chunk: Chunk) -> tuple[str, ...]:
    if chunk.section == chunk.doc_title:  # a guide without headings
        return ()
    return tuple(h.strip() for h in chunk.section.split(BREADCRUMB_SEP))


class Guide:
    """The guide as the app shows it: its page, its anchors and links, its headings."""

    def __init__(self, chunks: Sequence[Chunk], meta: dict[str, dict[str, str]] | None = None):
        self.chunks = list(chunks)
        self.by_id = {c.chunk_id: c for c in self.chunks}
        self.meta = meta or {}
        self.docs: dict[str, Heading] = {}
        self.node_of: dict[str, Heading] = {}  # chunk id → its heading
        for chunk in self.chunks:
            doc = self.docs.setdefault(chunk.doc_id, Heading(chunk.doc_title, ()))
            node = doc
            for title in _heading_path(chunk):
                node = node.child(title)
            node.chunks.append(chunk)
            self.node_of[chunk.chunk_id] = node
        self._page: str | None = None
        self._text: str | None = None

    # -- links --------------------------------------------------------------------------

    def href(self, chunk_id: str, quote: str | None = None) -> str | None:
        """The link that opens a chunk at its place on the page, with the quoted sentence
        highlighted when ``quote`` is that chunk's own text. None for an unknown chunk."""
        chunk = self.by_id.get(chunk_id)
        if chunk is None:
            return None
        link = f"{GUIDE_PATH}#{anchor(chunk_id)}"
        if quote and flat(quote) and flat(quote) in flat(chunk.text):
            link += text_fragment(quote, self.text, self._before(chunk, quote))
        return link

    @property
    def text(self) -> str:
        """The words the page shows, where a browser looks for a text fragment."""
        if self._text is None:
            body = re.sub(r"<style>.*?</style>|<title>.*?</title>", " ", self.page(), flags=re.S)
            self._text = flat(html.unescape(re.sub(r"<[^>]+>", " ", body)))
        return self._text

    def _before(self, chunk: Chunk, quote: str) -> str:
        """The page's words just before ``quote`` in ``chunk`` (a few are enough)."""
        shown = flat(html.unescape(re.sub(r"<[^>]+>", " ", chunk_html(chunk))))
        words = LIST_ITEM.sub("", flat(quote))
        at = self.text.find(shown)
        inside = shown.find(words)
        if at < 0 or inside < 0:
            return ""
        return self.text[max(0, at + inside - 200):at + inside]

    # -- headings -----------------------------------------------------------------------

    def top_headings(self) -> list[Heading]:
        return [n for doc in self.docs.values() for n in doc.children.values()]

    def starter_questions(self, limit: int = 5) -> list[str]:
        """Questions for the first screen, from the guide's top headings: those that ask a
        question or lead to subsections (a closing "Bottom line" does neither), in order."""
        chosen = [topic_question(n.title) for n in self.top_headings() if _is_topic(n)]
        if len(chosen) < 3:  # a guide of few or flat headings: its first headings
            chosen += [topic_question(n.title) for n in self.top_headings()]
        return list(dict.fromkeys(chosen))[:limit]

    def nearby_questions(self, retrieved: Iterable[RetrievedPassage], cited: Iterable[str] = (),
                         limit: int = 4, least: int = 2) -> list[str]:
        """2–4 questions about the guide's topics nearest to a question it does not answer:
        the sections retrieved for it (best first), less those the answer already cites
        and a closing section such as "Bottom line" (no topic to ask about); topped up
        from the first screen's questions when fewer than ``least``."""
        shown = {leaf(s) for s in cited}
        found: list[str] = []
        for hit in retrieved:
            chunk = self.by_id.get(hit.chunk_id)
            if chunk is None:  # only the guide's own headings, never the record's text
                continue
            heading = leaf(chunk.section)
            node = self.node_of[chunk.chunk_id]
            if heading in shown or not node.path or (len(node.path) == 1 and not _is_topic(node)):
                continue
            shown.add(heading)
            found.append(topic_question(heading))
        for question in self.starter_questions():
            if len(found) >= least:
                break
            if question not in found:
                found.append(question)
        return list(dict.fromkeys(found))[:limit]

    def title(self) -> str:
        return " · ".join(d.title for d in self.docs.values())

    def covers_line(self) -> str:
        """What the guide covers, in one line (plain text), from its headings: e.g. "6
        topics and 16 subtopics, from atrophic scars to dermal fillers"."""
        top = self.top_headings()
        subs: list[str] = []

        def walk(nodes: Iterable[Heading]) -> None:
            for n in nodes:
                subs.append(n.title)
                walk(n.children.values())

        for n in top:
            walk(n.children.values())
        line = f"{len(top)} topic{'' if len(top) == 1 else 's'}"
        if len(subs) >= 2:
            line += (f" and {len(subs)} subtopics, from {_lower_first(subs[0])} to "
                     f"{_lower_first(subs[-1])}")
        return line

    # -- the page -----------------------------------------------------------------------

    def page(self) -> str:
        if self._page is None:
            self._page = self._render()
        return self._page

    def _render(self) -> str:
        e = html.escape
        several = len(self.docs) > 1
        title = "The guides" if several else self.title() or "The guide"
        toc: list[str] = []
        body: list[str] = []
        for doc_id, doc in self.docs.items():
            level = 2 if several else 1
            if several:
                toc.append(f'<li><a href="#{heading_id(doc_id, ())}">{e(doc.title)}</a>')
                body.append(f'<section aria-labelledby="{heading_id(doc_id, ())}">'
                            f'<h2 id="{heading_id(doc_id, ())}">{e(doc.title)}</h2>')
            if several:
                body.append(self._meta_line(doc_id))
            body.extend(chunks_html(doc.chunks))
            toc.append(toc_html(doc_id, doc.children.values()))
            for node in doc.children.values():
                body.append(section_html(doc_id, node, level + 1))
            if several:
                body.append("</section>")
                toc.append("</li>")
        meta = "" if several or not self.docs else self._meta_line(next(iter(self.docs)))
        return (
            "<!doctype html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(title)} · the guide the assistant answers from</title>\n"
            f"<style>{page_css()}</style>\n</head>\n<body>\n"
            '<a class="skip" href="#guide">Skip to the guide</a>\n'
            '<header>\n<p><a href="/">Ask the assistant a question</a></p>\n</header>\n'
            '<main id="guide">\n'
            f"<h1>{e(title)}</h1>\n{meta}\n"
            '<p class="muted">This is the whole guide the assistant answers from. A link from '
            "an answer opens the passage it quotes, with the quoted sentence highlighted; "
            "your conversation stays open in its own tab.</p>\n"
            '<nav aria-labelledby="toc-title">\n<h2 id="toc-title">Contents</h2>\n'
            + ("<ol>" + "".join(toc) + "</ol>" if several else "".join(toc))
            + "\n</nav>\n"
            + "\n".join(b for b in body if b)
            + "\n</main>\n"
            '<footer>\n<p class="muted">General information, not a diagnosis or medical '
            'advice. <a href="/">Ask a question or book a consultation</a>.</p>\n</footer>\n'
            "</body>\n</html>\n"
        )

    @staticmethod
    def csp() -> str:
        """The page's Content-Security-Policy: its own inline style (by hash), nothing else."""
        digest = base64.b64encode(hashlib.sha256(page_css().encode()).digest()).decode()
        return (f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; "
                "form-action 'none'; frame-ancestors 'none'")

    def _meta_line(self, doc_id: str) -> str:
        meta = self.meta.get(doc_id) or {}
        parts = [f"Version {meta['version']}" if meta.get("version") else "",
                 meta.get("date") or ""]
        parts = [html.escape(p) for p in parts if p]
        return f'<p class="muted">{" · ".join(parts)}</p>' if parts else ""


def guide_metadata(corpus_dir) -> dict[str, dict[str, str]]:
    """Each guide's version and date (shown under its title); empty if unreadable."""
    from assistant.corpus import load_corpus
    from assistant.errors import CorpusError

    try:
        guides = load_corpus(corpus_dir)
    except CorpusError:
        return {}
    return {g.meta.doc_id: {"version": g.meta.version or "", "date": g.meta.date or ""}
            for g in guides}


def guide_router(chunks: Callable[[], Sequence[Chunk]], settings=None) -> APIRouter:
    """``GET /guide``: the guide's page, rendered once from ``chunks()`` (the indexed
    chunks, e.g. ``lambda: services.chunks``)."""
    router = APIRouter(include_in_schema=False)
    built: dict[str, Guide] = {}

    def guide() -> Guide:
        if "guide" not in built:
            meta = guide_metadata(settings.corpus_dir) if settings is not None else {}
            built["guide"] = Guide(chunks(), meta)
        return built["guide"]

    @router.get(GUIDE_PATH, response_class=HTMLResponse)
    def guide_page() -> HTMLResponse:
        response = HTMLResponse(guide().page())
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = Guide.csp()
        return response

    return router
