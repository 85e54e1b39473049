"""Privacy and limits: redacted logs, retention, rate limits, conversation length."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from assistant import logs
from assistant.store import SessionRow, Store
from tests.test_answer import SUBCISION_CHOICE
from tests.test_api import assert_error, booking, make_client

NAME, EMAIL, PHONE = "Jordan Quillfeather", "jordan.q@example.org", "+44 7700 900123"


@pytest.fixture
def captured():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    logs.configure("DEBUG", stream=stream)
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_logs_hold_no_name_email_phone_or_question(tmp_path, captured):
    question = f"I'm {NAME} ({EMAIL}, {PHONE}); how does subcision work for me?"
    with make_client(tmp_path, SUBCISION_CHOICE) as client:
        r = client.post("/api/chat", json={"message": question})
        assert r.status_code == 200
        sid = r.json()["session_id"]
        assert client.post(
            "/api/bookings", json=booking(sid, name=NAME, email=EMAIL, phone=PHONE)
        ).status_code == 201
        client.post("/api/feedback", json={"session_id": sid, "turn": 1, "rating": "down",
                                           "comment": f"call me on {PHONE}"})
        # a log line that quotes personal data by mistake is masked too
        logging.getLogger("scarguide.test").warning("oops %s %s %s", NAME, EMAIL, PHONE)
    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    messages = {line["message"] for line in lines}
    assert {"turn", "booking"} <= messages  # the exchange was logged ...
    assert any(line.get("status") == "answered" for line in lines)
    for secret in (NAME, "Quillfeather", EMAIL, PHONE, "900123", "how does subcision work"):
        assert secret not in text  # ... without anything personal
    assert "[personal]" in text


def test_redact_masks_emails_and_phone_numbers():
    assert logs.redact("write to a.b+c@mail.example.com or call 020 7946 0018") == (
        "write to [email] or call [phone]"
    )
    assert logs.redact("turn 3 took 2500 ms") == "turn 3 took 2500 ms"
    assert logs.redact("127.0.0.1:50316 GET /healthz") == "127.0.0.1:50316 GET /healthz"


def test_purge_deletes_old_conversations_and_keeps_bookings(tmp_path):
    from assistant.records import AnswerRecord
    from assistant.staff import StaffDesk

    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    old, new = store.create(), store.create()
    store.record_turn(AnswerRecord(status="not_in_guide", answer="x", session_id=old.session_id,
                                   turn=1, question="q"))
    store.add_feedback(old.session_id, 1, "down", None)
    StaffDesk(store).review("sam", 1, "incorrect", "reviewed before the purge")
    ref = store.add_booking(
        session_id=old.session_id, name=NAME, email=EMAIL, phone=None,
        preferred_times="any", concern="x", consent=True,
    )["reference"]
    with store._tx() as db:
        db.get(SessionRow, old.session_id).updated_at = datetime.now(UTC) - timedelta(days=100)
    assert store.purge(90) == {"sessions": 1, "turns": 1, "feedback": 1}
    assert not store.exists(old.session_id) and store.exists(new.session_id)
    kept = store.booking(ref)
    assert kept is not None and kept["session_id"] is None and kept["name"] == NAME


def test_rate_limit_per_client(tmp_path):
    with make_client(tmp_path, rate_limit="3/minute", coverage_threshold=0.99) as client:
        for _ in range(3):
            assert client.post("/api/chat", json={"message": "hello there"}).status_code == 200
        r = client.post("/api/chat", json={"message": "hello there"})
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1


def test_a_conversation_has_a_length_limit(tmp_path):
    with make_client(tmp_path, max_turns=1, coverage_threshold=0.99) as client:
        sid = client.post("/api/chat", json={"message": "hello there"}).json()["session_id"]
        r = client.post("/api/chat", json={"message": "hello again", "session_id": sid})
        assert_error(r, 409, "session_ended")
