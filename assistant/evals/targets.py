"""What the suites ask: the assistant in this process, or a server through its REST API.
Every suite that plays conversations talks to a :class:`Target`; in process, through the
front door (:class:`~assistant.door.Door`), as every adapter does."""

from __future__ import annotations

import time
from typing import Protocol

from assistant.door import Door
from assistant.errors import ScarguideError
from assistant.records import AnswerRecord


class Target(Protocol):
    name: str

    def ask(self, message: str, session_id: str | None = None) -> AnswerRecord: ...
    def end(self, session_id: str) -> AnswerRecord: ...


class InProcess:
    def __init__(self, assistant) -> None:
        self.assistant = assistant
        self.door = Door(assistant)
        self.name = f"in-process ({assistant.model_name})"

    def ask(self, message: str, session_id: str | None = None) -> AnswerRecord:
        return self.door.ask(message, session_id)

    def end(self, session_id: str) -> AnswerRecord:
        return self.door.end(session_id)


def _code(response) -> str | None:
    try:
        return response.json().get("error", {}).get("code")
    except ValueError:
        return None


class Remote:
    """A running server, through ``POST /api/chat`` and ``/api/sessions/{id}/end``."""

    def __init__(self, url: str, timeout: float = 300.0) -> None:
        import httpx

        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.name = f"server {url}"

    def _post(self, path: str, body: dict | None = None) -> dict:
        for _ in range(20):
            response = self.client.post(path, json=body)
            busy = response.status_code == 503 and _code(response) == "busy"
            if response.status_code == 429 or busy:  # rate limit or a full line: wait as told
                time.sleep(float(response.headers.get("Retry-After", "2")))
                continue
            if response.status_code >= 400:
                error = response.json().get("error", {})
                raise ScarguideError(f"{path}: {response.status_code} {error.get('code')}")
            return response.json()
        raise ScarguideError(f"{path}: still rate limited")

    def ask(self, message: str, session_id: str | None = None) -> AnswerRecord:
        body = self._post("/api/chat", {"message": message, "session_id": session_id})
        return AnswerRecord(**body, question=message)

    def end(self, session_id: str) -> AnswerRecord:
        body = self._post(f"/api/sessions/{session_id}/end")
        return AnswerRecord(**body, answer=body["handoff"]["message"], turn=0,
                            question="[end of conversation]")


def play(target: Target, conversation: list[str]) -> AnswerRecord:
    """Ask a conversation's messages in one session; the record of the last."""
    session = None
    for message in conversation[:-1]:
        session = target.ask(message, session).session_id
    return target.ask(conversation[-1], session)
