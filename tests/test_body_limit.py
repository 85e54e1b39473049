"""The body limit counts the bytes received, not only the Content-Length header: at the
ASGI level (a receive that counts its calls) and over a real uvicorn server (a chunked
body whose sender waits for the answer before each chunk)."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
import time

import pytest
import uvicorn

from assistant.app import Services
from assistant.web.api import BodyLimit
from assistant.web.server import create_app
from tests.conftest import fake_settings
from tests.server import free_port

CHUNK = 8192
CHUNKS = 128  # 1 MiB in all


class Upstream:
    """The app behind the limit: records the body it was handed."""

    def __init__(self) -> None:
        self.body: bytes | None = None

    async def __call__(self, scope, receive, send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.body = body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(app, chunks: int, headers=(), path: str = "/api/chat", raw_path: bytes | None = None):
    """Run one request through ``app``; the response and how often ``receive`` was called."""
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        if pulled > chunks:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": pulled < chunks}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": raw_path or
             path.encode(), "query_string": b"", "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, pulled


def test_a_chunked_body_over_the_limit_is_refused_without_reading_the_rest():
    upstream = Upstream()
    status, headers, body, pulled = call(BodyLimit(upstream, 3 * CHUNK), CHUNKS)
    assert status == 413 and json.loads(body)["error"]["code"] == "too_large"
    assert headers[b"connection"] == b"close"  # the server stops reading the connection
    assert pulled == 4 and upstream.body is None  # one chunk past the limit, no more


def test_a_content_length_over_the_limit_is_refused_before_any_read():
    upstream = Upstream()
    header = [(b"content-length", str(CHUNKS * CHUNK).encode())]
    status, _, body, pulled = call(BodyLimit(upstream, 3 * CHUNK), CHUNKS, header)
    assert status == 413 and pulled == 0 and upstream.body is None


def test_a_body_within_the_limit_reaches_the_app_whole():
    upstream = Upstream()
    status, _, body, pulled = call(BodyLimit(upstream, 3 * CHUNK), 3)
    assert status == 200 and body == b"ok" and upstream.body == b"x" * 3 * CHUNK


def test_a_path_with_an_invalid_code_point_is_refused():
    upstream = Upstream()
    status, _, body, pulled = call(BodyLimit(upstream, 3 * CHUNK), 1, path="/api/bookings/\ufffd",
                                   raw_path=b"/api/bookings/%ED%A0%80")
    assert status == 422 and json.loads(body)["error"]["code"] == "invalid_request"
    assert upstream.body is None


@pytest.fixture
def server(tmp_path):
    """The app (fake models, SQLite) on a real uvicorn server on loopback."""
    settings = fake_settings(tmp_path, session_store="database", rate_limit="",
                             database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    services = Services(settings)
    services.ingest()
    port = free_port()
    config = uvicorn.Config(create_app(services, ui=False, warm=False), host="127.0.0.1",
                            port=port, log_config=None, lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield port
    srv.should_exit = True
    thread.join(15)


def test_a_chunked_megabyte_is_refused_by_a_real_server_before_it_is_sent(server):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        s.sendall(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        while sent < CHUNKS and not select.select([s], [], [], 0.05)[0]:  # no answer yet
            try:
                s.sendall(b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n")
            except OSError:  # the server closed the connection
                break
            sent += 1
        answer = b""
        while chunk := s.recv(65536):  # until the server closes the connection
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "too_large"
    # the limit is max_message_chars * 4 + 16 KiB (about 24 KB): a few chunks, not 128
    assert sent < 16, sent
