"""Links into the guide page. Every chunk of the guide has a stable anchor on the page
(``anchor``, made from its ``chunk_id``); a link may add a text fragment
(``#anchor:~:text=…``, ``text_fragment``) that highlights the quoted sentence, built from
the guide's own words only."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote as url_quote

_SAFE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
LIST_ITEM = re.compile(r"^(\d+)[.)]\s+")
FRAGMENT_WORDS = 4  # a long quote's text fragment: its first and last four words


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


def flat(text: str) -> str:
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
    words = LIST_ITEM.sub("", flat(quote)).split()
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
