"""The staff console over HTTP (TestClient, fake models, SQLite in a temp folder)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest

from assistant.cases import stored_cases
from assistant.config import PACKAGE_ROOT
from assistant.evals.answers import load_cases
from assistant.staff import StaffDesk, _problems
from assistant.store import FeedbackRow, SessionRow, Store, TurnRow
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
    with make_client(tmp_path, *replies) as client:
        client.cases = cases
        client.desk = client.app.state.staff
        client.store = client.app.state.runtime.services.store
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
                 "/staff/bookings?q=sam", "/staff/conversations/abc", "/staff/bookings.csv",
                 "/staff/gaps", "/staff/audit"):
        r = staff.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/staff/login", path
    for path in ("/staff/api/turns", "/staff/api/turns/1", "/staff/api/bookings",
                 "/staff/api/conversations/abc"):
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
    # about 10.8 s: room for a slow password hash on a busy machine before the first check
    with make_client(tmp_path, staff_session_hours=0.003) as client:
        client.app.state.staff.add_user("sam", PASSWORD)
        assert login(client).status_code == 303
        logged_in = time.monotonic()
        assert client.get("/staff/api/turns").status_code == 200
        time.sleep(max(0.0, logged_in + 11.5 - time.monotonic()))
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

    before = staff.cases.read_bytes()
    r = staff.post(f"/staff/turns/{first['id']}/add-case",
                   data={"csrf": token, "expected_status": "answered",
                         "facts": "scar tissue|scar bands"})
    assert r.status_code == 200
    assert f"Added case turn-{first['id']} to the database table eval_cases" in r.text
    assert "export-cases" in r.text
    cases = stored_cases(staff.store)  # in the database ...
    assert [c.conversation for c in cases] == [["how does subcision work?"]]
    assert cases[0].required_facts == [["scar tissue", "scar bands"]]
    assert staff.cases.read_bytes() == before  # ... and in no file
    again = staff.post(f"/staff/turns/{first['id']}/add-case", data={"csrf": token})
    assert "Not added" in again.text and "already" in again.text
    assert len(stored_cases(staff.store)) == 1
    audit = staff.get("/staff/audit").text
    assert "review.incorrect" in audit and "eval.add_case" in audit
    assert f"turn-{first['id']} → the database table eval_cases, redacted (answered)" in audit


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


def test_an_eval_case_is_redacted_kept_in_the_database_exported_and_purged(tmp_path,
                                                                           monkeypatch):
    from typer.testing import CliRunner

    from assistant import cli

    name, email, phone = "Rosalind Okonkwo-Vance", "rosa.ov@example.net", "+44 7700 900456"
    message = (f"I'm Rosalind, write to {email} or call {phone} (or rosalind@work.example); "
               "I live at 14 Elm Grove, Leeds LS6 2AB, photos at "
               "https://pics.example.com/rosa?id=1 and my patient number is 485777. "
               "How does subcision work?")
    with make_client(tmp_path, SUBCISION_CHOICE) as client:
        sid = client.post("/api/chat", json={"message": message}).json()["session_id"]
        assert client.post("/api/bookings", json=booking(sid, name=name, email=email,
                                                         phone=phone)).status_code == 201
        desk = client.app.state.staff
        store = client.app.state.runtime.services.store
        desk.add_user("sam", PASSWORD)
        login(client)
        turn_id = client.get("/staff/api/turns").json()[0]["id"]
        page = client.get(f"/staff/turns/{turn_id}")
        assert "eval_cases" in page.text and "export-cases" in page.text
        r = client.post(f"/staff/turns/{turn_id}/add-case",
                        data={"csrf": csrf_of(page.text), "facts": f"subcision|{name}"})
        assert "Added case" in r.text
    [case] = stored_cases(store)
    text = " ".join(case.conversation)
    for secret in ("Rosalind", "Okonkwo", email, phone, "900456", "rosalind@work", "Elm Grove",
                   "LS6 2AB", "pics.example.com", "485777"):
        assert secret not in text and secret not in str(case.required_facts), secret
    assert text.endswith("How does subcision work?")
    assert {"[name]", "[url]", "[address]", "[postcode]", "[number]"} <= set(
        re.findall(r"\[\w+\]", text))
    assert case.required_facts == [["subcision", "[name]"]]

    # only the explicit command writes the cases to a file, in the eval set's format
    monkeypatch.setenv("SCARGUIDE_PROFILE", "test")
    monkeypatch.setenv("SCARGUIDE_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("SCARGUIDE_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    out = tmp_path / "export" / "cases.jsonl"
    result = CliRunner().invoke(cli.app, ["eval", "export-cases", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 1 case(s)" in result.output
    assert load_cases(out) == [case]
    tracked = json.loads((PACKAGE_ROOT / "eval" / "answers.jsonl").open().readline())
    assert set(tracked) <= set(json.loads(out.read_text().splitlines()[0]))

    # the case goes with its conversation
    with store.transaction() as db:
        db.get(SessionRow, sid).updated_at = datetime.now(UTC) - timedelta(days=100)
    assert store.purge(90)["eval_cases"] == 1
    assert stored_cases(store) == []


# -- the queue filters in the database, then pages -----------------------------------

OLD_MATCHES = 12


def seed_queue(store: Store, newer: int) -> list[int]:
    """``OLD_MATCHES`` old turns with thumbs down, dropped sentences and low faithfulness
    (their question says "zebra"), then ``newer`` newer, unremarkable ones; the old ids."""
    from assistant.records import AnswerRecord

    def record(session: str, turn: int, question: str, supported: list[bool],
               status: str = "answered") -> dict:
        verdicts = [{"sentence": f"s{i}", "supported": ok} for i, ok in enumerate(supported)]
        return AnswerRecord(status=status, answer="a", session_id=session, turn=turn,
                            question=question, verdicts=verdicts, coverage="full",
                            choice={"source": "model", "numbers": [1]}).model_dump(mode="json")

    start = datetime(2025, 1, 1, tzinfo=UTC)
    old_ids = []
    with store.transaction() as db:
        db.add_all([SessionRow(id="old"), SessionRow(id="new")])
        for i in range(1, OLD_MATCHES + 1):
            status = "not_in_guide" if i % 4 == 0 else "answered"
            row = TurnRow(session_id="old", turn=i, status=status, question=f"zebra {i}?",
                          answer="a", created_at=start + timedelta(minutes=i),
                          record=record("old", i, f"zebra {i}?", [False, False, True], status))
            db.add(row)
            db.flush()
            old_ids.append(row.id)
            db.add_all([FeedbackRow(session_id="old", turn=i, rating="down")
                        for _ in range(i % 3 + 1)])
        db.add_all([TurnRow(session_id="new", turn=i, status="answered",
                            question=f"what is subcision {i}?", answer="a",
                            record=record("new", i, "q", [True, True]))
                    for i in range(1, newer + 1)])
    return old_ids


def check_queue(desk: StaffDesk, old_ids: list[int], newer: int) -> None:
    """Every filter finds the old rows behind the newer ones; pages walk them all once."""
    def walk(**filters) -> list[dict]:
        seen, offset = [], 0
        while True:
            page = desk.queue(limit=5, offset=offset, **filters)
            assert len(page) <= 5
            seen += page
            if len(page) < 5:
                return seen
            offset += 5

    for filters in ({"thumbs_down": True}, {"dropped": True}, {"low_faithfulness": True},
                    {"text": "ZEBRA"}, {"thumbs_down": True, "order": "newest"},
                    {"dropped": True, "text": "zebra", "since": "2024-12-31"}):
        found = walk(**filters)
        assert sorted(i["id"] for i in found) == old_ids, filters
        if filters.get("order") == "newest":
            assert [i["id"] for i in found] == sorted(old_ids, reverse=True)
        else:  # most problematic first, in the database's order as in the rows' own scores
            keys = [(-i["problems"], -i["id"]) for i in found]
            assert keys == sorted(keys), filters
            for i in found:
                assert i["problems"] == _problems(i["thumbs_down"], i["review"], i["dropped"],
                                                  i["fallback"], i["status"])
    assert {i["id"] for i in walk(status="not_in_guide", thumbs_down=True)} == {
        old_ids[3], old_ids[7], old_ids[11]}
    assert walk(thumbs_down=True, since=datetime.now(UTC).date().isoformat()) == []
    assert walk(text="50%") == [] and walk(text="_") == []  # wildcards are literal
    # unfiltered, the old problem rows lead the whole table, not only its newest part
    first = desk.queue(limit=OLD_MATCHES)
    assert sorted(i["id"] for i in first) == old_ids
    assert len(desk.queue(limit=5, offset=OLD_MATCHES + newer - 3)) == 3


def test_the_queue_filters_in_the_database_then_pages(tmp_path):
    newer = 2100  # more than the 2000 rows the queue once read before filtering
    with make_client(tmp_path) as client:
        desk = client.app.state.staff
        old_ids = seed_queue(client.app.state.runtime.services.store, newer)
        check_queue(desk, old_ids, newer)

        desk.add_user("sam", PASSWORD)
        login(client)
        seen, url, pages = [], "/staff/queue?thumbs_down=1&q=zebra&per_page=5", 0
        while url:
            page = client.get(url)
            assert page.status_code == 200
            pages += 1
            seen += [int(n) for n in re.findall(r'href="/staff/turns/(\d+)"', page.text)]
            assert ('rel="prev"' in page.text) == (pages > 1)
            link = re.search(r'<a href="([^"]+)" rel="next">', page.text)
            url = html.unescape(link.group(1)) if link else None
            if url:
                assert "thumbs_down=1" in url and "q=zebra" in url and "per_page=5" in url
        assert pages == 3 and sorted(seen) == old_ids and len(set(seen)) == len(seen)
        assert "page 3: answers 11–12" in page.text

        api = [client.get(f"/staff/api/turns?low=1&per_page=5&page={n}").json()
               for n in (1, 2, 3, 4)]
        assert [len(p) for p in api] == [5, 5, 2, 0]
        assert sorted(i["id"] for p in api for i in p) == old_ids
        assert len(client.get("/staff/api/turns").json()) == 50  # the default page size
        assert len(client.get("/staff/api/turns?per_page=100000").json()) == 200
        assert client.get("/staff/queue?page=x&per_page=y").status_code == 200


@pytest.mark.real
def test_the_queue_filters_the_same_on_postgresql(tmp_path):
    """The same filters and pages on PostgreSQL (Debian's package, started here)."""
    from assistant.stack import Processes, start_postgres

    procs = Processes(tmp_path)
    try:
        store = Store(start_postgres(procs))
        store.migrate()
        old_ids = seed_queue(store, 30)
        check_queue(StaffDesk(store), old_ids, 30)
        store.engine.dispose()
    finally:
        procs.stop()
