"""Text shown in the patients' page: always escaped, never live markup.

Everything a patient sees comes from the patient (their question), the guide (answers
and quotes) or our own templates. Patient and guide text is escaped for both HTML and
Markdown, so no ``<script>``, event handler, link or remote image can come from it;
Gradio's own sanitiser runs on top. Bare web addresses are broken so they do not become
links: the only link the page offers is the booking button.
"""

from __future__ import annotations

import html
import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~=:])")
_SCHEME = re.compile(r"\b(https?|ftp|javascript|data|vbscript|file)(\\?:)", re.I)


def plain(text: str) -> str:
    """``text`` as inert Markdown: HTML-escaped, Markdown punctuation backslash-escaped,
    and URL schemes broken ("https\\:" renders as "https:" but never as a link)."""
    escaped = _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))
    return _SCHEME.sub(lambda m: f"{m.group(1)}\u200b{m.group(2)}", escaped)
