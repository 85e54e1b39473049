"""The REST contract (FastAPI TestClient, fake chat model, SQLite in a temp folder)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from assistant.app import Services
from assistant.web.server import create_app
from tests.conftest import fake_settings
from tests.test_answer import SUBCISION, SUBCISION_CHOICE

CHAT_FIELDS = {"session_id", "status", "coverage", "answer", "sentences", "citations", "glossary",
               "handoff", "turn", "notice", "language", "translations", "translation_label"}


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
    first = body["sentences"][0]  # the answer piece by piece: the first is [1]'s quote
    assert set(first) == {"text", "citations", "source"}
    assert first["text"] == c["quote"] and first["citations"] == [1]
    assert first["source"].startswith(c["chunk_id"] + "#")
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
    assert body["handoff"]["summary"] == "Asked about: Subcision."


def test_the_summary_holds_the_guide_topics_never_the_patients_words(tmp_path):
    with make_client(tmp_path, SUBCISION_CHOICE, coverage_threshold=0.99,
                     followup_similarity=0.99) as c:
        sid = c.post("/api/chat", json={
            "message": "<b>Sam Doe</b> sam@example.org: does https://evil.example/x work?"
        }).json()["session_id"]
        c.post("/api/chat", json={"message": "what dose of isotretinoin should i take",
                                  "session_id": sid})
        summary = c.post(f"/api/sessions/{sid}/end").json()["handoff"]["summary"]
    assert summary == ("1 question the guide does not cover; 1 question for a dermatologist "
                       "(doses, prescriptions or a diagnosis).")


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
    assert store.feedback.all(sid)[0] | {"created_at": None} == {
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


def raw(client, path, body: str):
    """A JSON body as written, so ``\\ud800`` reaches the server as a lone surrogate."""
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


SURROGATE = "\\ud800"  # as JSON text


@pytest.mark.parametrize("path,body,field", [
    ("/api/chat", f'{{"message": "hi {SURROGATE} there"}}', "message"),
    ("/api/chat/stream", f'{{"message": "hi {SURROGATE} there"}}', "message"),
    ("/api/chat", f'{{"message": "hi", "session_id": "{SURROGATE}abcdefgh"}}', "session_id"),
    ("/api/chat", '{"message": "hi \\uffff"}', "message"),
    ("/api/chat", '{"message": "hi \\ufdd0"}', "message"),
    ("/api/bookings", json.dumps(booking(name="Sam \ud800")), "name"),
    ("/api/bookings", json.dumps(booking(email="sam\udfff@example.org")), "email"),
    ("/api/bookings", json.dumps(booking(phone="+44 20 \ud800")), "phone"),
    ("/api/bookings", json.dumps(booking(preferred_times="mornings \ud800")), "preferred_times"),
    ("/api/bookings", json.dumps(booking(concern="scars \U0001fffe")), "concern"),
    ("/api/bookings", json.dumps(booking(sid="\ud800" * 12)), "session_id"),
    ("/api/feedback", json.dumps({"session_id": "A\ud800" * 6, "turn": 1, "rating": "up"}),
     "session_id"),
    ("/api/feedback", json.dumps({"session_id": "A" * 12, "turn": 1, "rating": "up",
                                  "comment": "vague \ud800"}), "comment"),
])
def test_invalid_code_points_are_a_clear_422(client, path, body, field):
    error = assert_error(raw(client, path, body), 422, "invalid_request")
    assert error["message"].startswith(f"{field}: holds U+"), error
    assert "not a valid character" in error["message"]


@pytest.mark.parametrize("field,value", [
    ("name", "Sam\r\nBcc: x@example.org"), ("name", "Sam\x00"), ("name", "Sam\x1b[31m"),
    ("name", "Sam\u2028Doe"), ("name", "Sam\tDoe"), ("email", "sam@example.org\r\nBcc: x"),
    ("phone", "+44 20 7946 0018\n"), ("phone", "+44\x0b20 7946 0018"),
    ("sid", "AAAAAAAAAAAA\n"),
])
def test_one_line_booking_fields_refuse_control_characters_and_line_breaks(client, field, value):
    error = assert_error(client.post("/api/bookings", json=booking(**{field: value})), 422,
                         "invalid_request")
    name = "session_id" if field == "sid" else field
    assert error["message"].startswith(f"{name}: must be one line without control characters")


def test_multi_line_fields_keep_line_breaks_and_refuse_other_control_characters(client):
    sid = client.post("/api/chat", json={"message": "what is subcision?"}).json()["session_id"]
    r = client.post("/api/bookings", json=booking(
        sid, name="  Sam   Doe ", concern="rolling scars\r\n\r\n\r\n\ton both cheeks  ",
        preferred_times="Mondays\nor Fridays"))
    assert r.status_code == 201, r.text
    [stored] = client.app.state.staff.bookings()
    assert stored["name"] == "Sam Doe"
    assert stored["concern"] == "rolling scars\n\non both cheeks"
    assert stored["preferred_times"] == "Mondays\nor Fridays"
    for field in ("concern", "preferred_times"):
        error = assert_error(client.post("/api/bookings", json=booking(**{field: "a\x00b"})),
                             422, "invalid_request")
        assert error["message"].startswith(f"{field}: holds a control character (U+0000)")
    r = client.post("/api/feedback", json={"session_id": sid, "turn": 1, "rating": "down",
                                           "comment": "vague\r\nand long"})
    assert r.status_code == 201
    assert client.app.state.runtime.services.store.feedback.all(sid)[0]["comment"] == (
        "vague\nand long")
    r = client.post("/api/feedback", json={"session_id": sid, "turn": 1, "rating": "down",
                                           "comment": "vague\x07"})
    assert_error(r, 422, "invalid_request")


def test_control_characters_in_a_chat_message_read_as_spaces(client):
    r = client.post("/api/chat", json={"message": "what\x00is\r\nsubcision?\x1b"})
    assert r.status_code == 200
    sid = r.json()["session_id"]
    [record] = client.app.state.runtime.services.store.turns(sid)
    assert record.question == "what is subcision?"


@pytest.mark.parametrize("path", [
    "/api/bookings/SG-%00", "/api/bookings/SG-%0D%0A", "/api/bookings/%ED%A0%80",
    "/api/bookings/%FF", "/api/bookings/%EF%BF%BF", "/api/sessions/AAAAAAAAAAA%0A/end",
    "/api/sessions/%ED%A0%80AAAAAAAA/end", "/api/nothing%00here",
])
def test_path_parameters_refuse_invalid_code_points_and_control_characters(client, path):
    method = client.post if path.endswith("/end") else client.get
    error = assert_error(method(path), 422, "invalid_request")
    assert "not allowed" in error["message"]


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
    # without a Content-Length (chunked), the bytes received count
    chunks = (b"x" * 10_000 for _ in range(100))
    r = client.post("/api/chat", content=chunks, headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "too_large")
    r = client.post("/api/chat", content=iter([b'{"message": ', b'"what is subcision?"}']),
                    headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["status"] == "answered"
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


def test_an_answer_that_breaks_off_is_recorded_as_failed_and_the_next_one_works(tmp_path):
    # the fake model has one reply: the first answer gets it, the second finds none
    with make_client(tmp_path, SUBCISION_CHOICE) as client:
        first = client.post("/api/chat", json={"message": "what is subcision?"}).json()
        sid = first["session_id"]
        broken = client.post("/api/chat", json={"message": "how does subcision work?",
                                                "session_id": sid})
        assert_error(broken, 503)
        store = client.app.state.runtime.services.store
        turns = store.turns(sid)
        assert [(t.turn, t.status) for t in turns] == [(1, "answered"), (2, "failed")]
        assert turns[1].answer == "" and turns[1].error
        # the conversation goes on: a fixed reply needs no model
        bye = client.post("/api/chat", json={"message": "thanks, bye", "session_id": sid})
        assert bye.status_code == 200 and bye.json()["turn"] == 3


def test_a_rate_limit_counted_in_the_database_is_shared_by_every_front_desk(tmp_path):
    from assistant.errors import RateLimitedError
    from assistant.frontdesk import RateLimiter
    from assistant.store import Store

    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    one, two = (RateLimiter("5/minute", "database", Store(url)) for _ in range(2))
    allowed = 0
    for k in range(12):
        try:
            (one if k % 2 else two).check("10.0.0.1")
            allowed += 1
        except RateLimitedError as limited:
            assert 1 <= limited.retry_after <= 60
    assert allowed == 5
    one.check("10.0.0.2")  # another client has its own count
    # in memory, each desk counts alone
    mine, yours = RateLimiter("5/minute"), RateLimiter("5/minute")
    for _ in range(5):
        mine.check("10.0.0.1")
        yours.check("10.0.0.1")


def test_the_servers_warm_up_and_a_first_patient_compute_the_prefix_once(tmp_path):
    with make_client(tmp_path, SUBCISION_CHOICE) as client:
        runtime = client.app.state.runtime
        assistant = runtime.desk().assistant
        assistant.prefix_source = "cold"
        calls = []

        def slow_warm():  # stands in for processing the guide prefix (seconds)
            calls.append(1)
            time.sleep(1.5)
            assistant.prefix_source = "computed"
            return 1.5

        assistant.warm = slow_warm
        warming = threading.Thread(target=runtime.warm)
        warming.start()
        time.sleep(0.05)  # a patient arrives while the server warms up
        assert client.post("/api/chat", json={"message": "what is subcision?"}).status_code == 200
        warming.join(10)
        assert calls == [1] and runtime.warm_seconds is not None
