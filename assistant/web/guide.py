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
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote as url_quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from assistant.corpus import BREADCRUMB_SEP, Chunk

GUIDE_PATH = "/guide"
_SAFE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LIST_ITEM = re.compile(r"^(\d+)[.)]\s+")
_QUESTION_START = re.compile(
    r"^(what|how|why|when|which|who|where|can|could|does|do|is|are|should|will)\b", re.I
)
FRAGMENT_WORDS = 4  # a long quote's text fragment: its first and last four words

# (text, background) pairs the page uses; tests check each is at least 4.5:1
PALETTE = {
    "body": ("#1b1b1b", "#ffffff"),
    "link": ("#0b5c53", "#ffffff"),
    "muted": ("#4a4a4a", "#ffffff"),
    "toc": ("#1b1b1b", "#f2f6f6"),
    "toc-link": ("#0b5c53", "#f2f6f6"),
    "target": ("#1b1b1b", "#e6f2f0"),
    "target-link": ("#0b5c53", "#e6f2f0"),
    "quote": ("#1b1b1b", "#ffe58a"),
    "skip": ("#ffffff", "#0b5c53"),
}


def anchor(chunk_id: str) -> str:
    """The page anchor of a chunk: URL-safe (letters, digits, ``-``, ``_``), stable, and
    one to one. ``doc:heading/path:0`` becomes ``doc__heading--path__0`` (slugs never hold
    ``--`` or ``__``); any other id gets a readable slug and a hash of the id."""
    parts = chunk_id.split(":")
    if len(parts) == 3 and parts[2].isdigit() and _SAFE_ID.fullmatch(parts[0]):
        path = parts[1].split("/")
        if all(_SAFE_ID.fullmatch(p) for p in path):
            return f"{parts[0]}__{'--'.join(path)}__{parts[2]}"
    slug = re.sub(r"[^a-z0-9]+", "-", chunk_id.lower()).strip("-")[:60] or "chunk"
    return f"c-{slug}-{hashlib.sha256(chunk_id.encode('utf-8')).hexdigest()[:10]}"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _fragment_text(text: str) -> str:
    # the text directive's own syntax characters are - , & : encode them too
    return url_quote(text, safe="").replace("-", "%2D")


def text_fragment(quote: str, page_text: str | None = None, before: str = "") -> str:
    """``:~:text=…`` for one quoted sentence of the guide: the whole sentence when short,
    else its first and last words (``text=start,end``). A list item's number is left out:
    the page shows it as the list's marker.

    A browser highlights from the first place the start occurs. With ``page_text`` (the
    page's words) the start grows until it occurs only once and the end until it first
    occurs where the quote ends; a sentence the guide holds twice gets the words shown
    just ``before`` it as a prefix (``text=prefix-,start``)."""
    words = _LIST_ITEM.sub("", _flat(quote)).split()
    if not words:
        return ""
    n_start = n_end = FRAGMENT_WORDS
    prefix = ""
    if page_text is not None:
        text, whole = page_text.lower(), " ".join(words).lower()
        while n_start < len(words) and text.count(" ".join(words[:n_start]).lower()) > 1:
            n_start += 1
        if text.count(whole) > 1:  # the same sentence twice: what comes before tells them apart
            context = before.split()
            for k in range(1, min(len(context), 12) + 1):
                prefix = " ".join(context[-k:])
                if text.count(f"{prefix} {whole}".lower()) == 1:
                    break
        while n_end < len(words) - n_start:
            start, end = " ".join(words[:n_start]).lower(), " ".join(words[-n_end:]).lower()
            if whole.find(end, len(start)) == len(whole) - len(end):
                break
            n_end += 1
    head = f"{_fragment_text(prefix)}-," if prefix else ""
    if n_start + n_end >= len(words):
        return ":~:text=" + head + _fragment_text(" ".join(words))
    start, end = " ".join(words[:n_start]), " ".join(words[-n_end:])
    return f":~:text={head}{_fragment_text(start)},{_fragment_text(end)}"


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


@dataclass
class _Node:
    """One heading of the page, the chunks directly under it and its subheadings."""

    title: str
    path: tuple[str, ...]
    chunks: list[Chunk] = field(default_factory=list)
    children: dict[str, _Node] = field(default_factory=dict)

    def child(self, title: str) -> _Node:
        if title not in self.children:
            self.children[title] = _Node(title, (*self.path, title))
        return self.children[title]


def _is_topic(node: _Node) -> bool:
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
        self.docs: dict[str, _Node] = {}
        self.node_of: dict[str, _Node] = {}  # chunk id → its heading
        for chunk in self.chunks:
            doc = self.docs.setdefault(chunk.doc_id, _Node(chunk.doc_title, ()))
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
        if quote and _flat(quote) and _flat(quote) in _flat(chunk.text):
            link += text_fragment(quote, self.text, self._before(chunk, quote))
        return link

    @property
    def text(self) -> str:
        """The words the page shows, where a browser looks for a text fragment."""
        if self._text is None:
            body = re.sub(r"<style>.*?</style>|<title>.*?</title>", " ", self.page(), flags=re.S)
            self._text = _flat(html.unescape(re.sub(r"<[^>]+>", " ", body)))
        return self._text

    def _before(self, chunk: Chunk, quote: str) -> str:
        """The page's words just before ``quote`` in ``chunk`` (a few are enough)."""
        shown = _flat(html.unescape(re.sub(r"<[^>]+>", " ", _chunk_html(chunk))))
        words = _LIST_ITEM.sub("", _flat(quote))
        at = self.text.find(shown)
        inside = shown.find(words)
        if at < 0 or inside < 0:
            return ""
        return self.text[max(0, at + inside - 200):at + inside]

    # -- headings -----------------------------------------------------------------------

    def top_headings(self) -> list[_Node]:
        return [n for doc in self.docs.values() for n in doc.children.values()]

    def starter_questions(self, limit: int = 5) -> list[str]:
        """Questions for the first screen, from the guide's top headings: those that ask a
        question or lead to subsections (a closing "Bottom line" does neither), in order."""
        chosen = [topic_question(n.title) for n in self.top_headings() if _is_topic(n)]
        if len(chosen) < 3:  # a guide of few or flat headings: its first headings
            chosen += [topic_question(n.title) for n in self.top_headings()]
        return list(dict.fromkeys(chosen))[:limit]

    def nearby_questions(self, retrieved: Iterable[dict[str, Any]], cited: Iterable[str] = (),
                         limit: int = 4, least: int = 2) -> list[str]:
        """2–4 questions about the guide's topics nearest to a question it does not answer:
        the sections retrieved for it (best first), less those the answer already cites
        and a closing section such as "Bottom line" (no topic to ask about); topped up
        from the first screen's questions when fewer than ``least``."""
        shown = {leaf(s) for s in cited}
        found: list[str] = []
        for hit in retrieved:
            chunk = self.by_id.get(str(hit.get("chunk_id", "")))
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

        def walk(nodes: Iterable[_Node]) -> None:
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
                toc.append(f'<li><a href="#{_heading_id(doc_id, ())}">{e(doc.title)}</a>')
                body.append(f'<section aria-labelledby="{_heading_id(doc_id, ())}">'
                            f'<h2 id="{_heading_id(doc_id, ())}">{e(doc.title)}</h2>')
            if several:
                body.append(self._meta_line(doc_id))
            body.extend(_chunks_html(doc.chunks))
            toc.append(_toc(doc_id, doc.children.values()))
            for node in doc.children.values():
                body.append(_section_html(doc_id, node, level + 1))
            if several:
                body.append("</section>")
                toc.append("</li>")
        meta = "" if several or not self.docs else self._meta_line(next(iter(self.docs)))
        return (
            "<!doctype html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(title)} · the guide the assistant answers from</title>\n"
            f"<style>{_css()}</style>\n</head>\n<body>\n"
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
        digest = base64.b64encode(hashlib.sha256(_css().encode()).digest()).decode()
        return (f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; "
                "form-action 'none'; frame-ancestors 'none'")

    def _meta_line(self, doc_id: str) -> str:
        meta = self.meta.get(doc_id) or {}
        parts = [f"Version {meta['version']}" if meta.get("version") else "",
                 meta.get("date") or ""]
        parts = [html.escape(p) for p in parts if p]
        return f'<p class="muted">{" · ".join(parts)}</p>' if parts else ""


def _heading_id(doc_id: str, path: tuple[str, ...]) -> str:
    from assistant.corpus import slugify

    slug = "--".join(slugify(h) for h in path) or "top"
    return f"h-{slugify(doc_id)}__{slug}"


def _toc(doc_id: str, nodes: Iterable[_Node]) -> str:
    items = [
        f'<li><a href="#{_heading_id(doc_id, n.path)}">{html.escape(n.title)}</a>'
        + (_toc(doc_id, n.children.values()) if n.children else "")
        + "</li>"
        for n in nodes
    ]
    return "<ol>" + "".join(items) + "</ol>" if items else ""


def _section_html(doc_id: str, node: _Node, level: int) -> str:
    hid = _heading_id(doc_id, node.path)
    tag = f"h{min(level, 6)}"
    parts = [f'<section aria-labelledby="{hid}">',
             f'<{tag} id="{hid}">{html.escape(node.title)}</{tag}>',
             *_chunks_html(node.chunks),
             *(_section_html(doc_id, c, level + 1) for c in node.children.values()),
             "</section>"]
    return "\n".join(parts)


def _chunk_html(chunk: Chunk) -> str:
    """One chunk in a block with its anchor; a run of numbered paragraphs is a list."""
    blocks: list[str] = []
    items: list[tuple[str, str]] = []
    for paragraph in [p for p in chunk.text.split("\n\n") if p.strip()] + [""]:
        number = _LIST_ITEM.match(paragraph)
        if number:
            items.append((number.group(1), _flat(paragraph[number.end():])))
            continue
        if items:
            blocks.append('<ol class="steps">' + "".join(
                f'<li value="{n}">{html.escape(t)}</li>' for n, t in items) + "</ol>")
            items.clear()
        if paragraph:
            blocks.append(f"<p>{html.escape(_flat(paragraph))}</p>")
    return f'<div class="chunk" id="{anchor(chunk.chunk_id)}">' + "".join(blocks) + "</div>"


def _chunks_html(chunks: Iterable[Chunk]) -> list[str]:
    return [_chunk_html(c) for c in chunks]


def _css() -> str:
    p = PALETTE
    return (
        "body{margin:0;font:17px/1.6 system-ui,'Segoe UI',Roboto,sans-serif;"
        f"color:{p['body'][0]};background:{p['body'][1]}}}"
        "header,main,footer{max-width:46rem;margin:0 auto;padding:0 1rem}"
        f"a{{color:{p['link'][0]}}}"
        f".muted{{color:{p['muted'][0]}}}"
        f"nav{{background:{p['toc'][1]};color:{p['toc'][0]};padding:.5rem 1rem;"
        "border-radius:6px;margin:1rem 0 2rem}"
        f"nav a{{color:{p['toc-link'][0]}}}"
        "nav ol{margin:.2rem 0;padding-left:1.4rem} nav h2{margin:.4rem 0}"
        "h1{font-size:1.9rem;line-height:1.25;margin:1rem 0 .5rem}"
        "h2{font-size:1.45rem;margin:2rem 0 .5rem} h3{font-size:1.2rem;margin:1.5rem 0 .4rem}"
        "h4,h5,h6{font-size:1.05rem;margin:1.2rem 0 .3rem}"
        "h2,h3,h4,h5,h6{scroll-margin-top:1rem}"
        ".chunk{scroll-margin-top:4.5rem;padding:0 .6rem;border-left:4px solid transparent}"
        f".chunk:target{{background:{p['target'][1]};color:{p['target'][0]};"
        f"border-left-color:{p['link'][0]}}}"
        f".chunk:target a{{color:{p['target-link'][0]}}}"
        f"::target-text{{background:{p['quote'][1]};color:{p['quote'][0]}}}"
        ".skip{position:absolute;left:-999px;top:0}"
        f".skip:focus{{left:.5rem;background:{p['skip'][1]};color:{p['skip'][0]};"
        "padding:.4rem .8rem;z-index:1}"
        ":focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}"
        "footer{margin-top:3rem;padding-bottom:2rem}"
    )


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
