"""Structured, redacted logs.

The assistant never logs what a patient wrote: log lines carry ids, statuses, timings
and error types. As a second line of defence every record passes a redaction filter
that masks email addresses, phone numbers and any value registered as personal (the
names, emails and phones of bookings) before a handler sees it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from datetime import UTC, datetime

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ()./-]{5,}\d(?![\w-])")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


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
                if value and len(value.strip()) >= 3:
                    self._values[value.strip()] = None
                    self._values.move_to_end(value.strip())
            while len(self._values) > self._size:
                self._values.popitem(last=False)
            self._pattern = (
                re.compile("|".join(re.escape(v) for v in sorted(self._values, key=len,
                                                                 reverse=True)), re.I)
                if self._values
                else None
            )

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
    text = personal.mask(text)
    text = _EMAIL.sub("[email]", text)
    return _PHONE.sub(_phone, text)


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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        )
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO", json_lines: bool = True, stream=None) -> logging.Handler:
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
