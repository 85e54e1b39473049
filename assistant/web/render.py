"""Text shown in the patients' page: always escaped, never live markup.

Everything a patient sees comes from the patient (their question), the guide (answers
and quotes) or our own templates. Patient and guide text is escaped for both HTML and
Markdown, so no ``<script>``, event handler, link or remote image can come from it;
Gradio's own sanitiser runs on top. Bare web addresses are broken so they do not become
links. The only links the page offers are ours: the booking button, and the links from
an answer's ``[n]`` markers and Sources to the guide page, whose addresses are built from
the guide's chunk ids and quotes (``guide.py``) and must look like a guide link to be
used at all (``guide_link``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~=:])")
_SCHEME = re.compile(r"\b(https?|ftp|javascript|data|vbscript|file)(\\?:)", re.I)
# what plain() makes of a "[n]" marker
_ESCAPED_MARKER = re.compile(r"\\\[(\d+)\\\]")
# /guide#anchor, optionally with a text fragment of percent-encoded guide words
# (``text=[prefix-,]start[,end]``)
_WORDS = r"[A-Za-z0-9%._~]+"
GUIDE_HREF = re.compile(
    rf"/guide#[A-Za-z0-9_-]+(?::~:text=(?:{_WORDS}-,)?{_WORDS}(?:,{_WORDS})?)?"
)


def plain(text: str) -> str:
    """``text`` as inert Markdown: HTML-escaped, Markdown punctuation backslash-escaped,
    and URL schemes broken ("https\\:" renders as "https:" but never as a link)."""
    escaped = _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))
    return _SCHEME.sub(lambda m: f"{m.group(1)}\u200b{m.group(2)}", escaped)


def guide_link(label: str, href: str | None, title: str = "") -> str:
    """A Markdown link to the guide page: ``label`` must already be ``plain()`` text,
    ``href`` a guide link (anything else, or None, gives the label alone)."""
    if not href or not GUIDE_HREF.fullmatch(href):
        return label
    title = re.sub(r"[\"\\\\<>]", "", title).strip()
    return f'[{label}]({href} "{html.escape(title, quote=False)}")' if title else (
        f"[{label}]({href})")


def link_markers(escaped: str, hrefs: Mapping[int, str | None],
                 titles: Mapping[int, str] | None = None) -> str:
    """In text escaped by ``plain()``, each ``[n]`` marker with a link in ``hrefs``
    becomes a link to its place in the guide; other markers stay text."""
    titles = titles or {}

    def one(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return guide_link(match.group(0), hrefs.get(n), titles.get(n, ""))

    return _ESCAPED_MARKER.sub(one, escaped)


def link_terms(escaped: str, terms: list[tuple[tuple[str, ...], str | None, str]]) -> str:
    """In text escaped by ``plain()``, the first mention of each glossary term becomes a
    link to the guide sentence that defines it, the definition its title (shown on
    hover and focus by the page's style; a tap opens it in the guide). ``terms``: each
    term's names, the guide link and the title. A term inside another's link is left."""
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, int, str, str]] = []
    for names, href, title in terms:
        if not href or not GUIDE_HREF.fullmatch(href):
            continue
        pattern = "|".join(
            r"\s+".join(re.escape(w) for w in name.split()) for name in
            sorted(names, key=len, reverse=True) if name.strip())
        if not pattern:
            continue
        for match in re.finditer(rf"(?<![\w\\-])(?:{pattern})(?:e?s)?(?![\w-])", escaped, re.I):
            start, end = match.span()
            if not any(start < b and a < end for a, b in taken):
                taken.append((start, end))
                found.append((start, end, href, title))
                break
    for start, end, href, title in sorted(found, reverse=True):
        escaped = escaped[:start] + guide_link(escaped[start:end], href, title) + escaped[end:]
    return escaped
