"""Staff see the whole case: the conversation view, bookings linked to their conversation
and searchable, the queue's text filter showing why a row matched, readable statuses and
local times (TestClient, the fake model, SQLite in a temp folder)."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime

import pytest
from markupsafe import Markup

from assistant.records import AnswerRecord
from assistant.staff import STATUS_LABELS
from assistant.store import SessionRow, TurnRow
from assistant.web.staff import excerpt, highlight, when
from tests.test_answer import SUBCISION_CHOICE
from tests.test_api import booking, make_client
from tests.test_staff import PASSWORD, csrf_of, login, seed

SECTION = "How to treat acne scars › Subcision"


@pytest.fixture
def staff(tmp_path):
    with make_client(tmp_path, "Subcision costs $300.", SUBCISION_CHOICE,
                     rate_limit="") as client:
        client.desk = client.app.state.staff
        client.store = client.app.state.runtime.services.store
        client.desk.add_user("sam", PASSWORD)
        yield client


def failed_turn(store, sid: str, question: str) -> None:
    """A turn that broke off, as the assistant stores it (nothing shown, the fault's kind)."""
    store.record_turn(AnswerRecord(status="failed", answer="", session_id=sid, turn=1,
                                   question=question, error="ModelError (TimeoutError)"))


def rows_of(page: str, table: str) -> list[str]:
    body = page.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr id=\"[^\"]+\".*?</tr>", body, re.S)


# -- login first -----------------------------------------------------------------------

def test_the_new_pages_need_a_login_and_take_only_session_ids(staff):
    sid = seed(staff)
    for path in (f"/staff/conversations/{sid}", "/staff/bookings?q=sam"):
        r = staff.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/staff/login", path
    for path in (f"/staff/api/conversations/{sid}", "/staff/api/bookings?q=sam"):
        r = staff.get(path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", path
    login(staff)
    assert staff.get(f"/staff/conversations/{sid}").status_code == 200
    assert staff.get("/staff/conversations/NoSuchOne").status_code == 404
    r = staff.get("/staff/api/conversations/NoSuchOne")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for bad in ("a%20b", "x" * 65, "..%2F..%2Fetc", "%3Cscript%3E", "%ED%A0%80", "a.b"):
        for prefix in ("/staff/conversations/", "/staff/api/conversations/"):
            r = staff.get(prefix + bad)
            assert 400 <= r.status_code < 500, (bad, r.status_code)
            assert "<script>" not in r.text


# -- the conversation view -------------------------------------------------------------

def test_the_conversation_shows_every_turn_in_order_with_feedback_reviews_and_bookings(staff):
    sid = seed(staff)  # turn 1 thumbs down "it invented a price", turn 2 answered
    failed_turn(staff.store, sid, "and does it hurt?")
    other = staff.store.create().session_id  # another conversation, with its own booking
    ref = staff.post("/api/bookings", json=booking(sid, name="Ada Lovelace")).json()["reference"]
    elsewhere = staff.post("/api/bookings", json=booking(other)).json()["reference"]
    staff.post("/api/feedback", json={"session_id": sid, "turn": 2, "rating": "up",
                                      "comment": "clear, thanks"})
    login(staff)
    turn_ids = {t["turn"]: t["id"] for t in staff.get(
        f"/staff/api/conversations/{sid}").json()["turns"]}
    staff.desk.review("sam", turn_ids[1], "incorrect", "made up a price")

    page = staff.get(f"/staff/conversations/{sid}")
    assert page.status_code == 200
    text = page.text
    rows = rows_of(text, "turns")
    assert [re.search(r'id="turn-(\d+)"', r).group(1) for r in rows] == ["1", "2", "3"]
    first, second, third = rows
    assert "how does subcision work?" in first and "what is subcision?" in second
    assert "it invented a price" in first and "thumbs down" in first
    assert "clear, thanks" in second and "thumbs up" in second
    assert "made up a price" in first and "incorrect" in first and "sam" in first
    assert "not reviewed" in second
    assert SECTION in first and "Subcision is a type of treatment" in first
    for n, row in zip((1, 2, 3), rows, strict=True):
        assert f'href="/staff/turns/{turn_ids[n]}"' in row
        assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"', row)
    # the broken-off answer is shown as such
    assert "and does it hurt?" in third and 'data-status="failed"' in third
    assert "Failed (error)" in third and "The answer broke off" in third
    assert "ModelError (TimeoutError)" in third
    # its booking, and no other conversation's
    [booked] = rows_of(text, "conversation-bookings")
    assert ref in booked and "Ada Lovelace" in booked and "New" in booked
    assert elsewhere not in text
    link = re.search(r'<a class="booking" href="([^"]+)"', text).group(1)
    assert html.unescape(link).startswith(f"/staff/bookings?q={ref}")

    # the JSON twin
    data = staff.get(f"/staff/api/conversations/{sid}").json()
    assert data["session_id"] == sid
    assert [t["turn"] for t in data["turns"]] == [1, 2, 3]
    assert [t["status"] for t in data["turns"]] == ["answered", "answered", "failed"]
    assert data["turns"][2]["label"] == "Failed (error)"
    assert data["turns"][0]["feedback"][0]["comment"] == "it invented a price"
    assert data["turns"][0]["review"]["verdict"] == "incorrect"
    assert data["turns"][1]["review"] is None
    assert data["turns"][0]["sections"] == [SECTION]
    assert [b["reference"] for b in data["bookings"]] == [ref]


def test_the_turn_view_links_to_its_conversation_and_shows_a_failed_answer(staff):
    sid = seed(staff)
    failed_turn(staff.store, sid, "and does it hurt?")
    login(staff)
    turns = staff.get(f"/staff/api/conversations/{sid}").json()["turns"]
    page = staff.get(f"/staff/turns/{turns[0]['id']}").text
    assert f'href="/staff/conversations/{sid}#turn-1"' in page
    assert "Answered" in page and 'data-status="answered"' in page
    broken = staff.get(f"/staff/turns/{turns[2]['id']}").text
    assert 'id="failed"' in broken and "ModelError (TimeoutError)" in broken
    assert "Failed (error)" in broken and f'href="/staff/conversations/{sid}#turn-3"' in broken
    # the answer view keeps its quotes, verdicts and retrieval scores
    assert 'aria-label="Citations"' in page and 'id="verdicts"' in page
    assert 'id="retrieved"' in page and SECTION in page
    # and the queue links each row to its conversation
    queue = staff.get("/staff/queue").text
    assert f'href="/staff/conversations/{sid}#turn-3"' in queue
    assert "Nothing shown: the answer broke off." in queue


# -- bookings: linked and searched -----------------------------------------------------

def add_bookings(store, sid: str) -> dict[str, dict]:
    people = {
        "ada": dict(name="Ada Lovelace", email="ada@analytical.example", phone="+44 7700 900111",
                    concern="ice pick scars on the chin"),
        "grace": dict(name="Grace Hopper", email="grace@navy.example", phone=None,
                      concern="rolling scars, 50% better after peel"),
        "alan": dict(name="Alan Turing", email=None, phone="(0161) 496-0222",
                     concern="boxcar scars on the temple"),
        "katherine": dict(name="Katherine Johnson", email="kj@orbit.example", phone=None,
                          concern="raised scars"),
    }
    return {key: store.add_booking(session_id=sid if key == "ada" else None,
                                   preferred_times="mornings", consent=True, **fields)
            for key, fields in people.items()}


def listed(client, url: str) -> list[str]:
    page = client.get(url)
    assert page.status_code == 200
    return re.findall(r'<tr id="booking-([^"]+)"', page.text)


def test_bookings_link_to_their_conversation_and_back(staff):
    sid = seed(staff)
    made = add_bookings(staff.store, sid)
    login(staff)
    page = staff.get("/staff/bookings").text
    [row] = [r for r in rows_of(page, "bookings") if made["ada"]["reference"] in r]
    link = re.search(r'<a class="conversation" href="([^"]+)"', row).group(1)
    assert link == f"/staff/conversations/{sid}"
    conversation = staff.get(link).text
    back = html.unescape(re.search(r'<a class="booking" href="([^"#]+)', conversation).group(1))
    assert listed(staff, back) == [made["ada"]["reference"]]  # back to exactly that booking
    # a booking made without a conversation says so
    [alan] = [r for r in rows_of(page, "bookings") if made["alan"]["reference"] in r]
    assert "/staff/conversations/" not in alan and "none" in alan


def test_bookings_are_searched_in_the_database_with_the_status_filter_and_paged(staff):
    made = add_bookings(staff.store, seed(staff))
    ref = {k: b["reference"] for k, b in made.items()}
    login(staff)
    for query, expected in (
        ("lovelace", ["ada"]), ("LoVeLaCe", ["ada"]),  # name, any case
        ("grace@navy.example", ["grace"]), ("orbit.example", ["katherine"]),  # email
        (ref["alan"], ["alan"]), (ref["grace"].lower(), ["grace"]),  # reference
        ("boxcar", ["alan"]), ("scars", ["katherine", "alan", "grace", "ada"]),  # concern
        ("900111", ["ada"]), ("07700 900 111", []), ("7700-900-111", ["ada"]),  # phone
        ("0161 4960222", ["alan"]), ("496-0222", ["alan"]),
        ("50%", ["grace"]), ("%", ["grace"]), ("_", []), ("nobody-like-this", []),
    ):
        found = listed(staff, f"/staff/bookings?q={query.replace('%', '%25')}")
        assert found == [ref[k] for k in expected], query
        api = staff.get("/staff/api/bookings", params={"q": query}).json()
        assert [b["reference"] for b in api] == [ref[k] for k in expected], query
    staff.desk.set_booking_status("sam", ref["alan"], "contacted")
    assert listed(staff, "/staff/bookings?q=scars&status=contacted") == [ref["alan"]]
    assert listed(staff, "/staff/bookings?q=lovelace&status=contacted") == []
    assert listed(staff, "/staff/bookings?status=new") == [ref[k] for k in (
        "katherine", "grace", "ada")]

    # pages, like the queue's: one booking a page, the search kept on every link
    seen, url, pages = [], "/staff/bookings?q=scars&per_page=1", 0
    while url:
        page = staff.get(url).text
        pages += 1
        seen += re.findall(r'<tr id="booking-([^"]+)"', page)
        assert ('rel="prev"' in page) == (pages > 1)
        link = re.search(r'<a href="([^"]+)" rel="next">', page)
        url = html.unescape(link.group(1)) if link else None
        if url:
            assert "q=scars" in url and "per_page=1" in url
    assert pages == 4 and seen == [ref[k] for k in ("katherine", "alan", "grace", "ada")]
    assert "page 4: bookings 4–4" in page
    api = [staff.get(f"/staff/api/bookings?q=scars&per_page=3&page={n}").json()
           for n in (1, 2, 3)]
    assert [len(p) for p in api] == [3, 1, 0]

    # a status change returns to the list as it was searched
    page = staff.get("/staff/bookings?q=lovelace").text
    assert '<mark>Lovelace</mark>' in page
    r = staff.post(f"/staff/bookings/{ref['ada']}/status", follow_redirects=False,
                   data={"csrf": csrf_of(page), "status": "booked", "list": "q=lovelace"})
    assert r.status_code == 303
    assert r.headers["location"].startswith("/staff/bookings?q=lovelace&flash=")
    # the list field cannot send anyone elsewhere
    r = staff.post(f"/staff/bookings/{ref['ada']}/status", follow_redirects=False,
                   data={"csrf": csrf_of(page), "status": "booked",
                         "list": "https://evil.example/?q=x"})
    assert r.headers["location"].startswith("/staff/bookings?")
    # no CSRF token, no change
    r = staff.post(f"/staff/bookings/{ref['ada']}/status", data={"status": "closed"})
    assert r.status_code == 403
    assert staff.store.booking(ref["ada"])["status"] == "booked"


# -- the queue shows why a row matched ---------------------------------------------------

def queue_turns(store) -> None:
    def add(db, turn: int, question: str, rewrite: str | None, answer: str) -> None:
        record = AnswerRecord(status="answered", answer=answer, session_id="hl", turn=turn,
                              question=question, standalone_question=rewrite)
        db.add(TurnRow(session_id="hl", turn=turn, status="answered", question=question,
                       standalone_question=rewrite, answer=answer,
                       record=record.model_dump(mode="json")))

    with store.transaction() as db:
        db.add(SessionRow(id="hl"))
        db.flush()
        add(db, 1, "does it hurt?", "Does SUBCISION hurt?", "It can be sore for a day.")
        add(db, 2, "<script>alert(1)</script> is subcision safe?", None,
            "Generally, yes. &lt;b&gt;")
        add(db, 3, "what about lasers?", None, "x" * 300 + " then subcision " + "y" * 200)
        add(db, 4, "unrelated question", None, "unrelated answer")


def test_the_queue_filter_highlights_the_match_and_shows_the_rewrite_that_matched(staff):
    queue_turns(staff.store)
    login(staff)
    page = staff.get("/staff/queue", params={"q": "subcision", "order": "newest"}).text
    rows = re.findall(r'<tr class="answered">.*?</tr>', page, re.S)
    assert len(rows) == 3 and "unrelated" not in page
    lasers, script, hurt = rows
    # matched only in the rewrite the list did not show: the rewrite is shown, marked
    assert "does it hurt?" in hurt and "matched-rewrite" in hurt
    assert "Does <mark>SUBCISION</mark> hurt?" in hurt
    # markup in the patient's text stays text, inside a <mark> and outside it
    assert "&lt;script&gt;alert(1)&lt;/script&gt; is <mark>subcision</mark> safe?" in script
    assert "matched-rewrite" not in script
    assert "<script>alert" not in page
    assert "&amp;lt;b&amp;gt;" in script  # the answer's own "&lt;" is text too
    # a match deep in a long answer: the excerpt around it, marked
    assert "then <mark>subcision</mark>" in lasers and lasers.count("…") == 2
    api = {t["turn"]: t for t in staff.get("/staff/api/turns?q=subcision").json()}
    assert api[1]["matched"] == ["rewrite"] and api[1]["standalone_question"]
    assert api[2]["matched"] == ["question"] and api[3]["matched"] == ["answer"]

    marked = staff.get("/staff/queue", params={"q": "<script>"}).text
    assert "<mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt; is subcision safe?" in marked
    assert "<script>alert" not in marked
    # a search never matches inside the escaping
    lt = staff.get("/staff/queue", params={"q": "lt;"}).text
    assert "&<mark>" not in lt and "&amp;<mark>lt;</mark>b&amp;gt;" in lt
    # without a filter: no marks, no rewrite line
    plain = staff.get("/staff/queue").text
    assert "<mark>" not in plain and "matched-rewrite" not in plain


def test_highlight_excerpt_and_when():
    assert highlight("<b>Scar</b> scar", "SCAR") == Markup(
        "&lt;b&gt;<mark>Scar</mark>&lt;/b&gt; <mark>scar</mark>")
    assert highlight("a < b", None) == Markup("a &lt; b")
    assert highlight(None, "x") == Markup("")
    assert highlight("100% _x_", "%") == Markup("100<mark>%</mark> _x_")
    assert highlight("<mark>", "mark") == Markup("&lt;<mark>mark</mark>&gt;")
    assert excerpt("short", "x") == "short"
    long = "a" * 200 + "needle" + "b" * 200
    cut = excerpt(long, "NEEDLE")
    assert "needle" in cut and cut.startswith("…") and cut.endswith("…")
    assert excerpt(long, None) == "a" * 160 + "…"
    moment = datetime(2026, 12, 2, 14, 5, 9, tzinfo=UTC)
    assert when(moment) == Markup('<time datetime="2026-12-02T14:05:09+00:00" '
                                  'title="2026-12-02T14:05:09+00:00">2 Dec 2026, 14:05 UTC</time>')
    assert "2 Dec 2026, 14:05 UTC" in when("2026-12-02T14:05:09.123456")  # naive is UTC
    assert "15:05" not in when("2026-12-02T15:05:00+01:00") and "14:05 UTC" in when(
        "2026-12-02T15:05:00+01:00")
    assert when("not a date <b>") == Markup("not a date &lt;b&gt;") and when(None) == "–"


# -- readable statuses and local times -------------------------------------------------

def test_statuses_and_times_are_readable_everywhere(staff):
    sid = seed(staff)
    failed_turn(staff.store, sid, "and does it hurt?")
    ref = staff.post("/api/bookings", json=booking(sid)).json()["reference"]
    login(staff)
    queue = staff.get("/staff/queue")
    text = queue.text
    for code, label in STATUS_LABELS.items():  # the filter's options
        assert f'<option value="{code}" >{label}</option>' in text, code
    assert 'data-status="answered" title="status: answered">Answered</span>' in text
    assert 'data-status="failed" title="status: failed">Failed (error)</span>' in text
    assert re.search(r"<time datetime=\"[^\"]+\+00:00\"[^>]*>\d{1,2} [A-Z][a-z]{2} \d{4}, "
                     r"\d\d:\d\d UTC</time>", text)
    # the one script that makes them local runs by the response's nonce
    nonce = re.search(r"script-src 'nonce-([^']+)'", queue.headers["content-security-policy"])
    assert nonce and f'<script nonce="{nonce.group(1)}">' in text
    assert text.count("<script") == 1
    for path in (f"/staff/conversations/{sid}", "/staff/bookings", "/staff/audit",
                 f"/staff/turns/{staff.get('/staff/api/turns').json()[0]['id']}"):
        page = staff.get(path).text
        assert "<time datetime=" in page and " UTC</time>" in page, path
    assert 'title="status: new">New</span>' in staff.get("/staff/bookings").text
    # the CSV keeps ISO times
    [row] = list(csv.DictReader(io.StringIO(staff.get("/staff/bookings.csv").text)))
    assert row["reference"] == ref and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d", row["created_at"])


def test_the_turn_view_shows_each_translation_and_why_one_was_not_shown(staff):
    from assistant.records import Citation, Translation

    sid = "t" * 16
    staff.store.record_turn(AnswerRecord(
        status="answered", answer="Subcision is a treatment. [1] It is used. [2]",
        session_id=sid, turn=1, question="¿qué es la subcisión?", language="es",
        citations=[Citation(n=1, chunk_id="c1", section=SECTION, quote="Subcision is a treatment."),
                   Citation(n=2, chunk_id="c1", section=SECTION, quote="It is used.")],
        translations=[
            Translation(n=1, language="es", text="La subcisión es un tratamiento.",
                        back="Subcision is a treatment.", similarity=0.98, passed=True),
            Translation(n=2, language="es", text="Se usa Scarren.", back="Scars are used.",
                        similarity=0.5, passed=False,
                        problems=["not Spanish words: ['Scarren']"]),
        ]))
    login(staff)
    [turn] = staff.get(f"/staff/api/conversations/{sid}").json()["turns"]
    page = html.unescape(staff.get(f"/staff/turns/{turn['id']}").text)
    table = page.split('id="translations"', 1)[1].split("</table>", 1)[0]
    assert "La subcisión es un tratamiento." in table and "0.98" in table
    assert "no: not Spanish words: ['Scarren']" in table and 'class="dropped"' in table
