"""The guide page's HTML pieces: its headings as a tree (``Heading``), the table of
contents, each section and chunk (every chunk in a block with its anchor), and the page's
only style, inline (``page_css``, its colours from ``PALETTE``)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field

from assistant.corpus import Chunk
from assistant.web.guide_links import LIST_ITEM, anchor, flat

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


@dataclass
class Heading:
    """One heading of the page, the chunks directly under it and its subheadings."""

    title: str
    path: tuple[str, ...]
    chunks: list[Chunk] = field(default_factory=list)
    children: dict[str, Heading] = field(default_factory=dict)

    def child(self, title: str) -> Heading:
        if title not in self.children:
            self.children[title] = Heading(title, (*self.path, title))
        return self.children[title]


def heading_id(doc_id: str, path: tuple[str, ...]) -> str:
    from assistant.corpus import slugify

    slug = "--".join(slugify(h) for h in path) or "top"
    return f"h-{slugify(doc_id)}__{slug}"


def toc_html(doc_id: str, nodes: Iterable[Heading]) -> str:
    items = [
        f'<li><a href="#{heading_id(doc_id, n.path)}">{html.escape(n.title)}</a>'
        + (toc_html(doc_id, n.children.values()) if n.children else "")
        + "</li>"
        for n in nodes
    ]
    return "<ol>" + "".join(items) + "</ol>" if items else ""


def section_html(doc_id: str, node: Heading, level: int) -> str:
    hid = heading_id(doc_id, node.path)
    tag = f"h{min(level, 6)}"
    parts = [f'<section aria-labelledby="{hid}">',
             f'<{tag} id="{hid}">{html.escape(node.title)}</{tag}>',
             *chunks_html(node.chunks),
             *(section_html(doc_id, c, level + 1) for c in node.children.values()),
             "</section>"]
    return "\n".join(parts)


def chunk_html(chunk: Chunk) -> str:
    """One chunk in a block with its anchor; a run of numbered paragraphs is a list."""
    blocks: list[str] = []
    items: list[tuple[str, str]] = []
    for paragraph in [p for p in chunk.text.split("\n\n") if p.strip()] + [""]:
        number = LIST_ITEM.match(paragraph)
        if number:
            items.append((number.group(1), flat(paragraph[number.end():])))
            continue
        if items:
            blocks.append('<ol class="steps">' + "".join(
                f'<li value="{n}">{html.escape(t)}</li>' for n, t in items) + "</ol>")
            items.clear()
        if paragraph:
            blocks.append(f"<p>{html.escape(flat(paragraph))}</p>")
    return f'<div class="chunk" id="{anchor(chunk.chunk_id)}">' + "".join(blocks) + "</div>"


def chunks_html(chunks: Iterable[Chunk]) -> list[str]:
    return [chunk_html(c) for c in chunks]


def page_css() -> str:
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
