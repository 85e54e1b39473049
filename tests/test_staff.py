"""The staff console over HTTP (TestClient, fake models, SQLite in a temp folder)."""

from __future__ import annotations

import csv
import io
import re
import shutil
import time

import pytest

from assistant.config import PACKAGE_ROOT
from assistant.evals.answers import load_cases
from tests.test_answer import SUBCISION_CHOICE
from tests.test_api import booking, make_client

PASSWORD = "correct horse battery staple"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client, username="sam", password=PASSWORD):
    page = client.get("/staff/login")
    return client.post("/staff/login", data={"csrf": csrf_of(page.text), "username": username,
                                             "password": password}, follow_redirects=False)


@pytest.fixture
def staff(tmp_path):
    cases = tmp_path / "answers.jsonl"
    shutil.copy(PACKAGE_ROOT / "eval" / "answers.jsonl", cases)
    replies = ["Subcision costs $300.", SUBCISION_CHOICE]
    with make_client(tmp_path, *replies, staff_eval_file=cases) as client:
        client.cases = cases
        client.desk = client.app.state.staff
        yield client


def seed(client) -> str:
    """Two answers (the first with an unusable model reply) and a thumbs-down on it."""
    r = client.post("/api/chat", json={"message": "how does subcision work?"}).json()
    client.post("/api/chat", json={"message": "what is subcision?", "session_id": r["session_id"]})
    client.post("/api/feedback", json={"session_id": r["session_id"], "turn": 1,
                                       "rating": "down", "comment": "it invented a price"})
    return r["session_id"]


def test_without_an_account_the_console_says_how_to_create_one(staff):
    page = staff.get("/staff/login")
    assert page.status_code == 200 and "scarguide staff add" in page.text
    assert 'type="password"' not in page.text  # no form, no default account
    token = staff.cookies.get("sg_login_csrf")
    r = staff.post("/staff/login", data={"csrf": token, "username": "admin", "password": "admin"})
    assert r.status_code == 401  # there is no default account


def test_nothing_is_reachable_without_a_session(staff):
    for path in ("/staff", "/staff/queue", "/staff/turns/1", "/staff/bookings",
                 "/staff/bookings.csv", "/staff/gaps", "/staff/audit"):
        r = staff.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/staff/login", path
    for path in ("/staff/api/turns", "/staff/api/turns/1", "/staff/api/bookings"):
        r = staff.get(path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = staff.post("/staff/turns/1/review", data={"verdict": "correct"}, follow_redirects=False)
    assert r.status_code == 303


def test_login_wrong_password_csrf_cookie_and_logout(staff):
    staff.desk.add_user("sam", PASSWORD)
    assert login(staff, password="wrong password!").status_code == 401
    # a login post without the form's CSRF cookie is refused
    staff.cookies.clear()
    r = staff.post("/staff/login", data={"csrf": "x", "username": "sam", "password": PASSWORD})
    assert r.status_code == 403
    r = login(staff)
    assert r.status_code == 303 and r.headers["location"] == "/staff/queue"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/staff" in cookie
    assert staff.get("/staff/api/turns").status_code == 200
    page = staff.get("/staff/queue")
    staff.post("/staff/logout", data={"csrf": csrf_of(page.text)})
    assert staff.get("/staff/api/turns").status_code == 401
    actions = [a["action"] for a in staff.desk.audit_log()]
    assert {"login", "login.failed", "logout"} <= set(actions)


def test_a_session_expires(tmp_path):
    with make_client(tmp_path, staff_session_hours=0.001) as client:  # about 3.6 s
        client.app.state.staff.add_user("sam", PASSWORD)
        assert login(client).status_code == 303
        assert client.get("/staff/api/turns").status_code == 200
        time.sleep(4.0)
        assert client.get("/staff/api/turns").status_code == 401


def test_queue_turn_view_review_and_add_case(staff):
    seed(staff)
    staff.desk.add_user("sam", PASSWORD)
    login(staff)
    queue = staff.get("/staff/api/turns").json()
    assert [q["turn"] for q in queue][:1] == [1]  # the thumbs-down one comes first
    first = queue[0]
    assert first["thumbs_down"] == 1 and first["fallback"] and first["coverage"] == "full"
    assert first["faithfulness"] == 1.0  # every shown sentence is the guide's own
    only_down = staff.get("/staff/api/turns?thumbs_down=1").json()
    assert [q["id"] for q in only_down] == [first["id"]]
    assert staff.get("/staff/api/turns?q=nothing-like-this").json() == []
    assert staff.get("/staff/api/turns?status=urgent").json() == []

    page = staff.get(f"/staff/turns/{first['id']}")
    assert page.status_code == 200
    text = page.text
    assert "How to treat acne scars › Subcision" in text  # the source
    assert "the retriever&#39;s ranking" in text and "not JSON" in text  # why it fell back
    assert "Subcision costs $300." in text  # the model's reply, for staff only
    assert "it invented a price" in text  # the patient's feedback
    assert "prompt choose v1" in text and "retrieved" in text
    assert 'id="triage"' in text and "not routed" in text  # how triage read it

    token = csrf_of(text)
    r = staff.post(f"/staff/turns/{first['id']}/review",
                   data={"verdict": "incorrect", "note": "made up a price"})
    assert r.status_code == 403  # no CSRF token
    r = staff.post(f"/staff/turns/{first['id']}/review",
                   data={"csrf": token, "verdict": "incorrect", "note": "made up a price"})
    assert r.status_code == 200 and "incorrect" in r.text and "made up a price" in r.text

    before = len(load_cases(staff.cases))
    r = staff.post(f"/staff/turns/{first['id']}/add-case",
                   data={"csrf": token, "expected_status": "answered",
                         "facts": "scar tissue|scar bands"})
    assert r.status_code == 200 and "Added case" in r.text
    cases = load_cases(staff.cases)
    assert len(cases) == before + 1
    assert cases[-1].conversation == ["how does subcision work?"]
    assert cases[-1].required_facts == [["scar tissue", "scar bands"]]
    audit = staff.get("/staff/audit").text
    assert "review.incorrect" in audit and "eval.add_case" in audit


def test_bookings_follow_their_states_and_export(staff):
    sid = seed(staff)
    ref = staff.post("/api/bookings", json=booking(sid, name="=HYPERLINK(1)")).json()["reference"]
    staff.desk.add_user("sam", PASSWORD)
    login(staff)
    page = staff.get("/staff/bookings")
    assert ref in page.text
    for status in ("contacted", "booked", "closed"):
        staff.post(f"/staff/bookings/{ref}/status", data={"csrf": csrf_of(page.text),
                                                         "status": status})
        assert staff.get(f"/api/bookings/{ref}").json()["status"] == status
    bad = staff.post(f"/staff/bookings/{ref}/status",
                     data={"csrf": csrf_of(page.text), "status": "lost"})
    assert bad.status_code == 422
    export = staff.get("/staff/bookings.csv")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert rows[0]["reference"] == ref and rows[0]["status"] == "closed"
    assert rows[0]["name"] == "'=HYPERLINK(1)"  # no formula reaches a spreadsheet
    assert "booking.status" in staff.get("/staff/audit").text


def test_content_gaps_group_similar_questions(tmp_path):
    with make_client(tmp_path, coverage_threshold=0.99) as client:  # nothing is covered
        for q in ("how much does laser cost?", "how much does laser cost", "do you take insurance"):
            assert client.post("/api/chat", json={"message": q}).json()["status"] == "not_in_guide"
        client.app.state.staff.add_user("sam", PASSWORD)
        login(client)
        page = client.get("/staff/gaps")
        assert page.status_code == 200
        groups = client.app.state.staff.gaps(client.app.state.runtime.services.embeddings)
        assert [g["count"] for g in groups] == [2, 1]
        assert "how much does laser cost" in page.text


def test_staff_logins_are_rate_limited(tmp_path):
    with make_client(tmp_path, staff_login_rate_limit="3/minute") as client:
        client.app.state.staff.add_user("sam", PASSWORD)
        codes = [login(client, password="wrong password!").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
