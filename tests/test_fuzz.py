"""Property-based tests over every route: whatever a client sends (any JSON, any bytes, any
code point in any field, path or query parameter, lone surrogates included), no 500, no
stack trace, the error shape always holds under /api, and every acknowledged booking can
be found."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_api import make_client
from tests.test_staff import PASSWORD, csrf_of, login

JSON = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
TEXT = st.text(max_size=300) | st.sampled_from(["", " ", "\x00", "\ufeff", "é" * 3000])
SESSION = st.none() | st.text(max_size=70) | st.sampled_from(["A" * 12, "../../etc/passwd"])

# Any code point: st.characters() yields lone surrogates too, which json.dumps writes as
# "\ud800" escapes, the way a client sending raw JSON may.
ODD = ["\ud800", "a\udfffb", "\ufffe", "\U0010ffff", "\ufdd0", "\x00", "a\r\nb", "\u2028",
       "\x1b[31m", "\u202e", "<script>alert(1)</script>", "%00", "../..", "", " "]
ANY = st.text(st.characters(), max_size=60) | st.sampled_from(ODD)
ANY_OR_NONE = st.none() | ANY
# "live" stands for the module's real conversation, so valid ids reach the deeper code too
SID = st.none() | ANY | st.just("live")
METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # the scope gate answers without a model; no rate limit: hypothesis sends many requests
    with make_client(tmp_path_factory.mktemp("fuzz"), rate_limit="",
                     staff_login_rate_limit="", coverage_threshold=0.99) as c:
        c.live = c.post("/api/chat", json={"message": "what is subcision?"}).json()["session_id"]
        yield c


@pytest.fixture(scope="module")
def staff(client):
    """A second browser on the same app, logged in to the staff console."""
    client.app.state.staff.add_user("fuzz", PASSWORD)
    browser = TestClient(client.app, raise_server_exceptions=False)
    assert login(browser, "fuzz").status_code == 303
    browser.csrf = csrf_of(browser.get("/staff/queue").text)
    return browser


def well_formed(response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if (response.status_code >= 400 and response.request.method != "HEAD"
            and response.request.url.path.startswith("/api")):
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}


def post_json(client, path: str, body) -> object:
    """``body`` as raw JSON bytes: a surrogate goes out as its ``\\ud800`` escape."""
    return client.post(path, content=json.dumps(body).encode(),
                       headers={"content-type": "application/json"})


def segment(text: str) -> str:
    """``text`` as one path segment, percent-encoded (a surrogate as its UTF-8 bytes)."""
    return quote(text, safe="", errors="surrogatepass") or "x"


def query(**values) -> str:
    return urlencode({k: v for k, v in values.items() if v is not None},
                     errors="surrogatepass")


def form(client, path: str, **values):
    return client.post(path, content=query(**values).encode(),
                       headers={"content-type": "application/x-www-form-urlencoded"},
                       follow_redirects=False)


def live(client, sid):
    return client.live if sid == "live" else sid


common = settings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
some = settings(common, max_examples=40)


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


# -- any code point, in every field of every route -------------------------------------


@some
@given(message=ANY, session_id=SID)
def test_chat_routes_take_any_code_point(client, message, session_id):
    body = {"message": message, "session_id": live(client, session_id)}
    for path in ("/api/chat", "/api/chat/stream"):
        r = post_json(client, path, body)
        well_formed(r)
        if r.status_code == 200 and path.endswith("stream"):
            assert "event: error" not in r.text, r.text


@some
@given(name=ANY, email=ANY_OR_NONE | st.just("sam@example.org"),
       phone=ANY_OR_NONE | st.just("+44 20 7946 0018"), times=ANY, concern=ANY,
       session_id=SID)
def test_booking_takes_any_code_point(client, name, email, phone, times, concern, session_id):
    body = {"session_id": live(client, session_id), "name": name, "email": email,
            "phone": phone, "preferred_times": times, "concern": concern, "consent": True}
    r = post_json(client, "/api/bookings", body)
    well_formed(r)
    if r.status_code == 201:
        state = client.get(f"/api/bookings/{r.json()['reference']}")
        assert state.status_code == 200 and state.json()["status"] == "new"


@some
@given(session_id=SID, turn=st.integers(0, 3) | st.integers(), rating=ANY | st.just("down"),
       comment=ANY_OR_NONE)
def test_feedback_takes_any_code_point(client, session_id, turn, rating, comment):
    body = {"session_id": live(client, session_id), "turn": turn, "rating": rating,
            "comment": comment}
    well_formed(post_json(client, "/api/feedback", body))


@some
@given(param=ANY | st.just("live"), extra=ANY, method=METHODS)
def test_path_and_query_parameters_take_any_code_point(client, param, extra, method):
    p = segment(live(client, param))
    q = query(x=extra, session_id=extra)
    for path in (f"/api/sessions/{p}/end", f"/api/bookings/{p}", f"/api/{p}",
                 f"/api/{p}/{segment(extra)}", f"/api/chat?{q}", f"/healthz?{q}"):
        well_formed(client.request(method, path))
    well_formed(client.post(f"/api/sessions/{p}/end?{q}"))
    well_formed(client.get(f"/api/bookings/{p}?{q}"))


# -- the staff console, logged in and not ----------------------------------------------

# turn ids: small, 32- and 64-bit and beyond (422 past a SQL integer), or any text
TURN = st.integers(-2, 5).map(str) | st.integers(-2**70, 2**70).map(str) | ANY


@some
@given(logged_in=st.booleans(), turn=TURN, reference=ANY, text=ANY, flag=ANY,
       status=ANY | st.sampled_from(["answered", "not_in_guide", "contacted", "closed"]))
def test_staff_console_takes_any_code_point(client, staff, logged_in, turn, reference, text,
                                            flag, status):
    browser = staff if logged_in else client
    filters = query(status=status, thumbs_down=flag, dropped=flag, low=flag, since=text,
                    q=text, order=flag, flash=text)
    t, ref = segment(turn), segment(reference)
    for path in ("/staff", "/staff/", f"/staff/login?{query(error=text)}",
                 f"/staff/queue?{filters}", f"/staff/turns/{t}?{query(flash=text)}",
                 f"/staff/bookings?{query(status=status, flash=text)}", "/staff/bookings.csv",
                 "/staff/gaps", "/staff/audit", f"/staff/api/turns?{filters}",
                 f"/staff/api/turns/{t}", f"/staff/api/bookings?{query(status=status)}"):
        well_formed(browser.get(path, follow_redirects=False))
    csrf = getattr(browser, "csrf", text)
    for path, values in (
        (f"/staff/turns/{t}/review", {"verdict": status, "note": text}),
        (f"/staff/turns/{t}/add-case", {"expected_status": status, "facts": text}),
        (f"/staff/bookings/{ref}/status", {"status": status}),
    ):
        well_formed(form(browser, path, csrf=csrf, **values))
    well_formed(form(browser, "/staff/logout", csrf=text))  # never the right token
    well_formed(form(browser, "/staff/login", csrf=text, username=text, password=flag))
    # a login form with its own CSRF cookie: the account check itself runs
    anonymous = TestClient(client.app, raise_server_exceptions=False)
    token = csrf_of(anonymous.get("/staff/login").text)
    well_formed(form(anonymous, "/staff/login", csrf=token, username=text, password=flag))
