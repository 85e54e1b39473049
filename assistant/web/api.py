"""The REST API under ``/api``: a thin adapter over :class:`~assistant.frontdesk.FrontDesk`.

Every error is JSON ``{"error": {"code", "message"}}``; bad input is a 4xx, and no
response ever carries a stack trace or the patient's text back in an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.errors import (
    BusyError,
    InputError,
    RateLimitedError,
    ScarguideError,
    SessionEndedError,
    SessionError,
)
from assistant.frontdesk import BookingRequest, Feedback, FrontDesk
from assistant.records import (
    AnswerRecord,
    Citation,
    GlossaryEntry,
    Handoff,
    ShownSentence,
    Status,
    Translation,
)
from assistant.safety import OneLine, TextError, ValidText, clean_line

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("scarguide.api")


class ChatRequest(BaseModel):
    message: ValidText = Field(
        description="The patient's message. Control characters and line breaks are read as "
        "spaces; a surrogate or a noncharacter is refused (422)."
    )
    session_id: OneLine | None = Field(None, description="Leave out to start a conversation.")


class ChatResponse(BaseModel):
    session_id: str
    status: Status
    answer: str
    sentences: list[ShownSentence] = Field(
        default_factory=list, description="The answer piece by piece: each guide sentence "
        "with its citation numbers and its place in the guide, and the answer's own texts.")
    citations: list[Citation]
    glossary: list[GlossaryEntry] = Field(
        default_factory=list, description="Terms the answer shows, each with the guide "
        "sentence that defines it (and that sentence's chunk).")
    handoff: Handoff | None
    turn: int = Field(description="The answer's number in the conversation (for feedback).")
    coverage: Literal["full", "partial", "none"] | None = Field(
        None, description="How far the guide answers the question: full; partial (status "
        "not_in_guide: the guide covers the topic, not what was asked; what it says about the "
        "topic follows in the answer); none (status not_in_guide, nothing from the guide). "
        "None for urgent, declined and handoff replies.",
    )
    notice: str | None = Field(
        None, description="A fixed urgent or crisis reply to show before the answer (triage "
        "leaned to a risk without being sure).",
    )
    language: str = Field("en", description="The language of the answer's own texts "
                          "(refusals, the partial opening, the handoff); the guide's cited "
                          "sentences are English.")
    translations: list[Translation] = Field(
        default_factory=list, description="A question in another offered language: each "
        "cited sentence's automatic translation with its check. Show `shown` beside the "
        "English sentence `[n]`: the translation when `passed`, else a note that only the "
        "English is shown.")
    translation_label: str | None = Field(
        None, description="The label to show over the translations, in the patient's language.")


class EndResponse(BaseModel):
    session_id: str
    status: Status
    handoff: Handoff


class BookingCreated(BaseModel):
    booking_id: int
    reference: str


class BookingState(BaseModel):
    reference: str
    status: str
    created_at: str
    updated_at: str


class Created(BaseModel):
    id: int


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def chat_response(record: AnswerRecord) -> dict[str, Any]:
    return ChatResponse(**record.model_dump()).model_dump(mode="json")


_ERRORS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
           429: "rate_limited"}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    429: {"model": ErrorResponse},
}


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "malformed_json", "The request body is not valid JSON."
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", []) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "invalid_request", "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = _validation_message(exc)
        return error(400 if code == "malformed_json" else 422, code, message)

    @app.exception_handler(InputError)
    async def _input(_request: Request, exc: InputError) -> JSONResponse:
        return error(422, "invalid_message", exc.patient_message)

    @app.exception_handler(BusyError)
    async def _busy(_request: Request, exc: BusyError) -> JSONResponse:
        response = error(503, "busy", exc.patient_message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RateLimitedError)
    async def _limited(_request: Request, exc: RateLimitedError) -> JSONResponse:
        response = error(429, "rate_limited", exc.patient_message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(SessionEndedError)
    async def _ended(_request: Request, exc: SessionEndedError) -> JSONResponse:
        return error(409, "session_ended", "This conversation has ended; start a new one.")

    @app.exception_handler(SessionError)
    async def _session(_request: Request, exc: SessionError) -> JSONResponse:
        return error(404, "unknown_session", "This conversation does not exist or has expired.")

    @app.exception_handler(ScarguideError)
    async def _unavailable(_request: Request, exc: ScarguideError) -> JSONResponse:
        log.error("request failed: %s", type(exc).__name__)
        return error(503, "unavailable", exc.patient_message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _ERRORS.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # the type and where only: an exception's message may carry patient text
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        log.error("unexpected %s at %s", type(exc).__name__, where)
        return error(500, "internal", "Something went wrong on our side. Please try again.")


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def router(desk: Callable[[], FrontDesk]) -> APIRouter:
    """The routes; ``desk()`` returns the process's FrontDesk (built on first use)."""
    def limited(request: Request) -> None:
        desk().allow(request.client.host if request.client else None)

    # every route counts against the client's rate limit
    api = APIRouter(prefix="/api", responses=_RESPONSES, dependencies=[Depends(limited)])

    @api.post("/chat", response_model=ChatResponse, summary="Ask a question")
    def chat(request: ChatRequest) -> dict[str, Any]:
        """One turn: the answer, its citations, and a handoff when the conversation ends."""
        return chat_response(desk().chat(request.message, request.session_id))

    @api.post(
        "/chat/stream",
        summary="Ask a question, streamed",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    def chat_stream(request: ChatRequest) -> StreamingResponse:
        """Server-sent events: a `notice` event (`{"text"}`) first when triage leaned to a
        risk without being sure, `sentence` events (`{"text"}`) as each sentence passes
        verification, then one `record` event with the same body as `POST /api/chat`."""
        events = desk().stream(request.message, request.session_id)  # 4xx before streaming

        def body() -> Iterator[str]:
            try:
                for event in events:
                    if event.record is not None:
                        yield _sse("record", chat_response(event.record))
                    elif event.kind == "queued":
                        yield _sse("queued", {"position": int(event.text)})
                    elif event.kind == "notice":
                        yield _sse("notice", {"text": event.text})
                    elif event.translation is not None:
                        yield _sse("translation", event.translation.model_dump(mode="json"))
                    else:
                        yield _sse("sentence", {"text": event.text})
            except ScarguideError as exc:
                log.error("stream failed: %s", type(exc).__name__)
                problem = {"code": "unavailable", "message": exc.patient_message}
                yield _sse("error", {"error": problem})
            except Exception as exc:  # the status line is sent: report it in the stream
                log.error("stream failed: unexpected %s", type(exc).__name__)
                problem = {"code": "internal", "message": "Something went wrong on our side."}
                yield _sse("error", {"error": problem})
            finally:  # a client that left gives its place in line back
                events.close()

        return StreamingResponse(
            body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @api.post("/sessions/{session_id}/end", response_model=EndResponse, summary="End a chat")
    def end(session_id: str) -> dict[str, Any]:
        """Close the conversation: the handoff message, a summary and the booking link."""
        record = desk().end(session_id)
        return EndResponse(**record.model_dump()).model_dump(mode="json")

    @api.post("/bookings", status_code=201, response_model=BookingCreated, summary="Book")
    def book(request: BookingRequest) -> dict[str, Any]:
        """Store a consultation request. `201` is sent only after it is committed."""
        booking = desk().book(request)
        return {"booking_id": booking["booking_id"], "reference": booking["reference"]}

    @api.get("/bookings/{reference}", response_model=BookingState, summary="A booking's state")
    def booking(reference: str) -> dict[str, Any]:
        found = desk().booking(reference)
        if found is None:
            raise StarletteHTTPException(404, "No booking has this reference.")
        return {k: found[k] for k in BookingState.model_fields}

    @api.post("/feedback", status_code=201, response_model=Created, summary="Rate an answer")
    def feedback(request: Feedback) -> dict[str, Any]:
        return {"id": desk().feedback(request)}

    @api.api_route(
        "/{anything:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    def unknown(request: Request, anything: str) -> JSONResponse:
        """Anything else under /api: 405 for a known path, 404 otherwise, in the JSON error
        shape (the UI mounted at / would answer otherwise)."""
        path = request.url.path
        for route in api.routes:
            if getattr(route, "path", "").startswith("/api/{anything"):
                continue
            regex = getattr(route, "path_regex", None)
            if regex and regex.match(path):
                return error(405, "method_not_allowed", "Method not allowed.")
        return error(404, "not_found", "Not found.")

    return api


class BodyLimit:
    """Under ``/api``: a body over ``max_bytes`` is refused with 413 without reading the
    rest, by its Content-Length or, without one (chunked), by the bytes received; a path
    with a control character or an invalid code point (a parameter such as a booking
    reference or a session id) is refused with 422."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api"):
            await self.app(scope, receive, send)
            return
        problem = self._path_problem(scope)
        if problem is not None:
            await error(422, "invalid_request", problem)(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        # the body, up to the limit, then handed on (a JSON body is small: nothing streams)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
        response = error(413, "too_large", "The request is too large.")
        response.headers["Connection"] = "close"  # the server reads no more of the body
        await response(scope, receive, send)

    @staticmethod
    def _path_problem(scope: Scope) -> str | None:
        """Why the path cannot be taken (its bytes, percent-decoded, read as UTF-8), or None."""
        raw = scope.get("raw_path")
        try:  # an encoded surrogate or a stray byte is not UTF-8
            path = (unquote_to_bytes(raw.split(b"?")[0]).decode("utf-8") if raw is not None
                    else scope["path"])
            clean_line(path)
        except (UnicodeDecodeError, TextError):
            return ("The address holds a character that is not allowed (a control character, "
                    "a line break or an invalid code point).")
        return None
