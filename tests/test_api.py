"""The REST contract (FastAPI TestClient, fake chat model, SQLite in a temp folder)."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from assistant.app import Services
from assistant.web.server import create_app
from tests.conftest import fake_settings
from tests.test_answer import SUBCISION, SUBCISION_CHOICE

CHAT_FIELDS = {"session_id", "status", "coverage", "answer", "citations", "handoff", "turn",
               "notice"}


def make_client(tmp_path, *replies, ui=False, **overrides) -> TestClient:
    overrides.setdefault("coverage_threshold", -1.0)
    overrides.setdefault("followup_similarity", -1.0)
    settings = fake_settings(
        tmp_path,
        fake_replies=list(replies),
        session_store="database",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        **overrides,
    )
    services = Services(settings)
    services.ingest()
    return TestClient(create_app(services, ui=ui), raise_server_exceptions=False)


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path, *[SUBCISION_CHOICE] * 4) as c:
        yield c


def assert_error(response, status, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"] and "Traceback" not in response.text
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_chat_starts_a_session_and_cites_the_guide(client):
    r = client.post("/api/chat", json={"message": "how does subcision work?"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == CHAT_FIELDS
    assert body["status"] == "answered" and body["session_id"] and body["turn"] == 1
    assert body["coverage"] == "full"
    c = body["citations"][0]
    assert set(c) == {"n", "chunk_id", "section", "quote"}
    assert c["section"] == "How to treat acne scars › Subcision"
    assert c["quote"] in SUBCISION
    # the same session continues
    r2 = client.post(
        "/api/chat", json={"message": "how is subcision done?", "session_id": body["session_id"]}
    )
    assert r2.status_code == 200 and r2.json()["turn"] == 2


def test_an_unsure_triage_streams_the_notice_before_the_answer(tmp_path):
    from assistant.embeddings import HashEmbeddings
    from assistant.triage import build_triage
    from tests.test_triage import Scores

    settings = fake_settings(tmp_path, llm_backend="quote", coverage_threshold=-1.0)
    services = Services(settings)
    services.__dict__["triage"] = build_triage(
        settings, HashEmbeddings(), lambda: Scores({"urgent": 0.2, "none": 0.8}))
    services.ingest()
    client = TestClient(create_app(services, ui=False), raise_server_exceptions=False)
    with client.stream("POST", "/api/chat/stream", json={"message": "what is subcision?"}) as r:
        raw = "".join(r.iter_text())
    kinds = [block.split("\n")[0].removeprefix("event: ") for block in raw.strip().split("\n\n")]
    assert kinds[0] == "notice" and kinds[-1] == "record" and "sentence" in kinds
    body = client.post("/api/chat", json={"message": "what is subcision?"}).json()
    assert body["status"] == "answered" and "emergency" in body["notice"]


def test_chat_stream_sends_sentences_then_the_record(client):
    with client.stream("POST", "/api/chat/stream", json={"message": "what is subcision?"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = "".join(r.iter_text())
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1][6:]))
        for block in raw.strip().split("\n\n")
    ]
    kinds = [k for k, _ in events]
    assert kinds[-1] == "record" and kinds[:-1] and set(kinds[:-1]) == {"sentence"}
    record = events[-1][1]
    assert set(record) == CHAT_FIELDS and record["status"] == "answered"
    streamed = " ".join(d["text"] for _, d in events[:-1])
    assert streamed.split("[")[0].strip() in record["answer"]


def test_end_returns_the_handoff(client):
    sid = client.post("/api/chat", json={"message": "what is subcision?"}).json()["session_id"]
    r = client.post(f"/api/sessions/{sid}/end")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"session_id", "status", "handoff"}
    assert body["status"] == "handoff" and body["session_id"] == sid
    assert set(body["handoff"]) == {"message", "summary", "booking_url"}
    assert "Subcision" in body["handoff"]["summary"]


def booking(sid=None, **overrides):
    body = {
        "session_id": sid,
        "name": "Sam Patient",
        "email": "sam@example.org",
        "preferred_times": "weekday mornings",
        "concern": "rolling scars on cheeks",
        "consent": True,
    }
    body.update(overrides)
    return body


def test_booking_is_stored_and_its_state_readable_by_reference(client):
    sid = client.post("/api/chat", json={"message": "what is subcision?"}).json()["session_id"]
    r = client.post("/api/bookings", json=booking(sid))
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"booking_id", "reference"}
    state = client.get(f"/api/bookings/{created['reference']}")
    assert state.status_code == 200
    assert state.json()["status"] == "new" and state.json()["reference"] == created["reference"]
    assert "email" not in state.json()  # the reference shows the state, not personal data
    # phone instead of email is fine, and a booking without a conversation too
    assert client.post("/api/bookings", json=booking(email=None, phone="+44 20 7946 0018")
                       ).status_code == 201


def test_feedback_is_stored(client, tmp_path):
    sid = client.post("/api/chat", json={"message": "what is subcision?"}).json()["session_id"]
    r = client.post(
        "/api/feedback", json={"session_id": sid, "turn": 1, "rating": "down", "comment": "vague"}
    )
    assert r.status_code == 201
    store = client.app.state.runtime.services.store
    assert store.feedback(sid)[0] | {"created_at": None} == {
        "session_id": sid, "turn": 1, "rating": "down", "comment": "vague", "created_at": None
    }


def test_every_turn_is_recorded_whole(client):
    sid = client.post("/api/chat", json={"message": "what is subcision?"}).json()["session_id"]
    store = client.app.state.runtime.services.store
    [record] = store.turns(sid)
    assert record.question == "what is subcision?" and record.retrieved and record.verdicts


@pytest.mark.parametrize(
    "path,body,status,code",
    [
        ("/api/chat", {"message": ""}, 422, "invalid_message"),
        ("/api/chat", {"message": "   "}, 422, "invalid_message"),
        ("/api/chat", {"message": "x" * 5000}, 422, "invalid_message"),
        ("/api/chat", {}, 422, "invalid_request"),
        ("/api/chat", {"message": 12}, 422, "invalid_request"),
        ("/api/chat", {"message": "hi", "session_id": "nope-not-a-session"}, 404,
         "unknown_session"),
        ("/api/chat", {"message": "hi", "session_id": "../../etc/passwd"}, 404,
         "unknown_session"),
        ("/api/chat/stream", {"message": ""}, 422, "invalid_message"),
        ("/api/chat/stream", {"message": "hi", "session_id": "AAAAAAAAAAAA"}, 404,
         "unknown_session"),
        ("/api/sessions/AAAAAAAAAAAA/end", None, 404, "unknown_session"),
        ("/api/bookings", booking(consent=False), 422, "invalid_request"),
        ("/api/bookings", {k: v for k, v in booking().items() if k != "consent"}, 422,
         "invalid_request"),
        ("/api/bookings", booking(email="not-an-email"), 422, "invalid_request"),
        ("/api/bookings", booking(email=None), 422, "invalid_request"),
        ("/api/bookings", booking(phone="call me", email=None), 422, "invalid_request"),
        ("/api/bookings", booking(name=""), 422, "invalid_request"),
        ("/api/bookings", booking(sid="AAAAAAAAAAAA"), 404, "unknown_session"),
        ("/api/feedback", {"session_id": "AAAAAAAAAAAA", "turn": 1, "rating": "up"}, 404,
         "unknown_session"),
        ("/api/feedback", {"session_id": "AAAAAAAAAAAA", "turn": 1, "rating": "meh"}, 422,
         "invalid_request"),
    ],
)
def test_bad_input_is_a_clear_4xx(client, path, body, status, code):
    r = client.post(path, json=body) if body is not None else client.post(path)
    error = assert_error(r, status, code)
    if isinstance(body, dict) and isinstance(body.get("message"), str) and len(body["message"]) > 3:
        assert body["message"] not in error["message"]  # patient text is not echoed


def test_malformed_json_and_unknown_things(client):
    r = client.post(
        "/api/chat", content=b'{"message": "hi",', headers={"content-type": "application/json"}
    )
    assert_error(r, 400, "malformed_json")
    assert_error(client.get("/api/bookings/SG-NOPE1234"), 404, "not_found")
    assert_error(client.get("/api/nothing-here"), 404)
    assert_error(client.get("/api/chat"), 405)
    sid = client.post("/api/chat", json={"message": "what is subcision?"}).json()["session_id"]
    r = client.post("/api/feedback", json={"session_id": sid, "turn": 9, "rating": "up"})
    assert_error(r, 422, "invalid_message")


def test_a_model_failure_is_a_503_not_a_traceback(tmp_path):
    with make_client(tmp_path) as c:  # the fake model has no reply left: it fails
        r = c.post("/api/chat", json={"message": "what is subcision?"})
    assert_error(r, 503, "unavailable")


def healthy(client, seconds=10.0):
    deadline = time.monotonic() + seconds
    while True:
        r = client.get("/healthz")
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def test_healthz_and_docs(client):
    r = healthy(client)  # the warm-up runs in the background at start
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model_loaded": True, "index_ready": True,
                        "database": True, "model": "fake"}
    spec = client.get("/openapi.json").json()
    assert {"/api/chat", "/api/chat/stream", "/api/sessions/{session_id}/end", "/api/bookings",
            "/api/bookings/{reference}", "/api/feedback"} <= set(spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text  # works offline
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200


def test_api_works_beside_the_mounted_ui(tmp_path):
    with make_client(tmp_path, SUBCISION_CHOICE, ui=True) as c:
        assert c.get("/").status_code == 200 and "gradio" in c.get("/").text.lower()
        r = c.post("/api/chat", json={"message": "what is subcision?"})
        assert r.status_code == 200 and r.json()["status"] == "answered"
        assert healthy(c).status_code == 200
        # the contract's error shape holds with the UI mounted at /
        assert_error(c.post("/api/chat", json={"message": ""}), 422, "invalid_message")
        assert_error(c.get("/api/nothing-here"), 404, "not_found")
        assert_error(c.get("/api/chat"), 405, "method_not_allowed")
        assert_error(c.post("/api/bookings/x"), 405, "method_not_allowed")


def test_an_ended_conversation_takes_no_more_messages_and_ends_once(client):
    sid = client.post("/api/chat", json={"message": "what is subcision?"}).json()["session_id"]
    first = client.post(f"/api/sessions/{sid}/end").json()
    again = client.post(f"/api/sessions/{sid}/end").json()
    assert first == again
    assert_error(client.post("/api/chat", json={"message": "hi", "session_id": sid}), 409,
                 "session_ended")
    store = client.app.state.runtime.services.store
    assert [r.status for r in store.turns(sid)] == ["answered", "handoff"]


def test_oversized_bodies_and_odd_values(client):
    r = client.post("/api/chat", content=b"x" * 200_000,
                    headers={"content-type": "application/json"})
    assert_error(r, 413, "too_large")
    sid = client.post("/api/chat", json={"message": "what is subcision?"}).json()["session_id"]
    r = client.post("/api/feedback", json={"session_id": sid, "turn": 2**63, "rating": "up"})
    assert_error(r, 422, "invalid_request")
    assert_error(client.post("/api/bookings", json=booking(consent=1)), 422, "invalid_request")


def test_a_stream_that_fails_midway_ends_with_an_error_event(client, monkeypatch):
    desk = client.app.state.runtime.desk()

    def broken(message, session_id=None):
        desk.check(message, session_id)

        def events():
            raise RuntimeError("boom")
            yield  # a generator

        return events()

    monkeypatch.setattr(desk, "stream", broken)
    with client.stream("POST", "/api/chat/stream", json={"message": "what is subcision?"}) as r:
        raw = "".join(r.iter_text())
    assert r.status_code == 200 and raw.startswith("event: error")
    assert json.loads(raw.split("data: ", 1)[1])["error"]["code"] == "internal"
    assert "boom" not in raw
