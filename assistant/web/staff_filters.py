"""What the staff console's templates show, as Jinja filters: a search's matches marked,
an excerpt around the first, a moment in UTC (the page's script shows it in local time),
a turn's or a booking's status as a tag. Every fragment is escaped before it is marked
up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

from assistant.staff import booking_label, search_pattern, status_label

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def highlight(text: str | None, query: str | None) -> Markup:
    """``text`` escaped, with every case-insensitive occurrence of the filter's text in a
    ``<mark>``. The text is split on the matches first and each piece is escaped on its
    own, so a search never matches inside an entity (``lt`` in ``&lt;``) and markup in
    the text, matched or not, stays text."""
    text = text or ""
    pattern = search_pattern(query)
    if pattern is None:
        return escape(text)
    out, last = [], 0
    for found in pattern.finditer(text):
        out += [escape(text[last:found.start()]),
                Markup("<mark>%s</mark>") % found.group()]
        last = found.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def excerpt(text: str | None, query: str | None, width: int = 160) -> str:
    """At most ``width`` characters of ``text``: its start, or around the first match of
    the filter's text when that lies further on (with … where text was cut)."""
    text = text or ""
    if len(text) <= width:
        return text
    pattern = search_pattern(query)
    found = pattern.search(text) if pattern else None
    start = 0
    if found and found.end() > width:
        start = max(0, min(found.start() - width // 4, len(text) - width))
    end = min(len(text), start + width)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def when(value: Any) -> Markup:
    """``<time datetime="ISO">2 Dec 2026, 14:05 UTC</time>``: readable in UTC without
    JavaScript; the page's script rewrites it to the browser's local time."""
    moment = _moment(value) if value else None
    if moment is None:
        return escape(value or "–")
    readable = (f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}, "
                f"{moment:%H:%M} UTC")
    return Markup('<time datetime="%s" title="%s">%s</time>') % (
        moment.isoformat(timespec="seconds"), moment.isoformat(timespec="seconds"), readable)


def status_tag(status: str | None) -> Markup:
    """A turn's status as staff read it; the code stays in the class, ``data-status`` and
    the title."""
    code = status or ""
    return Markup('<span class="tag status %s" data-status="%s" title="status: %s">%s</span>'
                  ) % (code, code, code, status_label(code))


def booking_tag(status: str | None) -> Markup:
    code = status or ""
    return Markup('<span class="tag booking %s" data-status="%s" title="status: %s">%s</span>'
                  ) % (code, code, code, booking_label(code))
