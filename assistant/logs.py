"""Structured, redacted logs.

The assistant never logs what a patient wrote: log lines carry ids, statuses, timings
and error types. As a second line of defence every record passes a redaction filter
that masks email addresses, phone numbers, any value registered as personal (the
names, emails and phones of bookings, as whole words) and the query string of any
path or URL (search text) before a handler sees it. Requests are logged by
:class:`AccessLog`: method, path without its query, status and milliseconds.

:func:`scrub` masks more for patient text kept outside the conversation (eval cases):
URLs, long digit runs, street addresses, postcodes and names given in bookings.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ()./-]{5,}\d(?![\w-])")
# a path (or URL) followed by a query string: the query goes, the path stays
_QUERY = re.compile(r"((?:\b[a-z][a-z0-9+.-]*://[^\s/?#\"']*)?/[^\s?#\"']*)\?[^\s#\"']*", re.I)
# a URL (with a scheme, www. or a path), without the punctuation that ends a sentence
_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.|\b(?:[a-z0-9-]+\.)+[a-z]{2,}/)"
                  r"(?:[^\s<>\"']*[^\s<>\"'.,;:!?)])?", re.I)
_DIGITS = re.compile(r"\d{6,}")
_STREET = re.compile(
    r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][\w'’-]*\s+){1,3}"
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Close|Way|Court|Ct|Place|Pl|Square|Sq"
    r"|Terrace|Crescent|Grove|Gardens|Boulevard|Blvd|Row|Mews|Hill|Park|Walk|Parade)\b\.?"
)
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
# "I'm Jo Bloggs": the introduction in any case, the name capitalised
_GIVEN_NAME = re.compile(
    r"((?i:\b(?:my name is|my name['’]s|i am|i['’]?m|call me|name:))\s+)"
    r"([A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+)?)"
)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _words(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern matching any of ``values`` as a whole word (Unicode-aware, any case)."""
    values = sorted({v for v in values if v}, key=len, reverse=True)
    if not values:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(v) for v in values) + r")(?!\w)",
                      re.I)


class _Personal:
    """Recently seen personal values (bounded), masked wherever they appear."""

    def __init__(self, size: int = 5000) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, *values: str | None) -> None:
        with self._lock:
            for value in values:
                if value and len(value.strip()) >= 2:
                    self._values[value.strip()] = None
                    self._values.move_to_end(value.strip())
            while len(self._values) > self._size:
                self._values.popitem(last=False)
            self._pattern = _words(self._values)

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub("[personal]", text) if pattern else text


personal = _Personal()


_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def _phone(match: re.Match[str]) -> str:
    found = match.group(0)
    if _IPV4.match(found) or sum(c.isdigit() for c in found) < 7:
        return found  # an IP address or a short number, not a phone number
    return "[phone]"


def redact(text: str) -> str:
    """What every log line passes: personal values, emails, phones, query strings."""
    text = personal.mask(text)
    text = _EMAIL.sub("[email]", text)
    text = _QUERY.sub(r"\1", text)
    return _PHONE.sub(_phone, text)


def scrub(text: str, names: Iterable[str | None] = (),
          values: Iterable[str | None] = ()) -> str:
    """Patient text with its personal details masked: ``names`` (and each of their words)
    and ``values`` (e.g. a booking's email and phone) as whole words, a name the patient
    introduces ("I'm …"), registered personal values, emails, URLs, phone numbers, street
    addresses, postcodes and runs of six or more digits."""
    text = _EMAIL.sub("[email]", text)
    text = _URL.sub("[url]", text)
    text = _PHONE.sub(_phone, text)
    named = [n.strip() for n in names if n and n.strip()]
    pattern = _words([*named, *(w for n in named for w in re.split(r"[\s,]+", n)
                                if len(w) >= 2)])
    if pattern:
        text = pattern.sub("[name]", text)
    pattern = _words(v.strip() for v in values if v and v.strip())
    if pattern:
        text = pattern.sub("[personal]", text)
    text = personal.mask(text)
    text = _GIVEN_NAME.sub(lambda m: m.group(1) + "[name]", text)
    text = _STREET.sub("[address]", text)
    text = _POSTCODE.sub("[postcode]", text)
    return _DIGITS.sub("[number]", text)


class RedactingFilter(logging.Filter):
    """Masks personal data in the message, its arguments and its extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the template only
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info:  # a traceback may quote anything: keep the type only
            record.msg += f" [{record.exc_info[0].__name__ if record.exc_info[0] else 'error'}]"
            record.exc_info, record.exc_text = None, None
        return True


class AccessLog:
    """ASGI middleware: one line per request with its method, path (never its query
    string), status and milliseconds; in place of the server's own access log."""

    def __init__(self, app: ASGIApp, logger: str = "scarguide.access") -> None:
        self.app = app
        self.log = logging.getLogger(logger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            # "in" keeps the status and the time apart: together they would read as a phone
            self.log.info("%s %s %d in %.0f ms", scope["method"], scope["path"], status, ms,
                          extra={"method": scope["method"], "path": scope["path"],
                                 "status": status, "ms": ms})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker, when several serve
        }
        entry.update(
            {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        )
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO", json_lines: bool = True,
              stream: TextIO | None = None) -> logging.Handler:
    """Route every logger (ours, uvicorn's, the libraries') through one redacting handler."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    for noisy in ("httpx", "httpcore", "chromadb", "sentence_transformers", "bm25s"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
