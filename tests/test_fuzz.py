"""Property-based tests over the REST API: whatever a client sends, no 500, no stack
trace, the error shape always holds, and every acknowledged booking can be found."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_api import make_client

JSON = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
TEXT = st.text(max_size=300) | st.sampled_from(["", " ", "\x00", "\ufeff", "é" * 3000])
SESSION = st.none() | st.text(max_size=70) | st.sampled_from(["A" * 12, "../../etc/passwd"])


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # the scope gate answers without a model; no rate limit: hypothesis sends many requests
    with make_client(tmp_path_factory.mktemp("fuzz"), rate_limit="",
                     coverage_threshold=0.99) as c:
        yield c


def well_formed(response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}


common = settings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])


@common
@given(body=JSON)
def test_any_json_body(client, body):
    for path in ("/api/chat", "/api/bookings", "/api/feedback", "/api/chat/stream"):
        well_formed(client.post(path, json=body))


@common
@given(raw=st.binary(max_size=200))
def test_any_bytes(client, raw):
    for path in ("/api/chat", "/api/bookings", "/api/feedback"):
        well_formed(client.post(path, content=raw, headers={"content-type": "application/json"}))


@common
@given(message=TEXT, session_id=SESSION)
def test_any_chat_message(client, message, session_id):
    well_formed(client.post("/api/chat", json={"message": message, "session_id": session_id}))


@common
@given(
    name=TEXT,
    email=st.none() | st.emails() | st.text(max_size=30),
    phone=st.none() | st.from_regex(r"\+?[0-9 ]{6,15}", fullmatch=True) | st.text(max_size=20),
    times=TEXT,
    concern=TEXT,
    consent=st.booleans() | st.none() | st.integers(),
)
def test_any_booking_is_refused_clearly_or_stored(client, name, email, phone, times, concern,
                                                 consent):
    body = {"name": name, "email": email, "phone": phone, "preferred_times": times,
            "concern": concern, "consent": consent}
    r = client.post("/api/bookings", json=body)
    well_formed(r)
    if r.status_code == 201:  # acknowledged: it must be there
        state = client.get(f"/api/bookings/{r.json()['reference']}")
        assert state.status_code == 200 and state.json()["status"] == "new"


@common
@given(session_id=st.text(max_size=70), turn=st.integers(), rating=st.text(max_size=5))
def test_any_feedback_and_end(client, session_id, turn, rating):
    well_formed(client.post("/api/feedback",
                            json={"session_id": session_id, "turn": turn, "rating": rating}))
    well_formed(client.post(f"/api/sessions/{quote(session_id, safe='') or 'x'}/end"))
