"""Privacy and limits: redacted logs, retention, rate limits, conversation length."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import string
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assistant import logs
from assistant.config import PACKAGE_ROOT
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
    with store.transaction() as db:
        db.get(SessionRow, old.session_id).updated_at = datetime.now(UTC) - timedelta(days=100)
    assert store.purge(90) == {"sessions": 1, "turns": 1, "feedback": 1, "eval_cases": 0}
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


def test_personal_values_are_masked_as_whole_words(monkeypatch):
    registry = logs._Personal()
    monkeypatch.setattr(logs, "personal", registry)
    registry.add("Al", "Zoë", "Ana", "Аня", "+44 7700 900123")
    # the name, as a word, in any case
    assert logs.redact("Al booked; al.") == "[personal] booked; [personal]."
    assert logs.redact("ZOË wrote, then Zoë") == "[personal] wrote, then [personal]"
    assert logs.redact("Аня, Al-Zoë") == "[personal], [personal]-[personal]"
    assert logs.redact("call +44 7700 900123 now") == "call [personal] now"
    # other words that hold it are left alone, in any script
    for untouched in ("Alembic upgrade", "Alan, Halo, VAL_1, Al2", "Zoëlle", "Anaïs banana",
                      "Ana_b", "Аняня", "éAl"):
        assert logs.redact(untouched) == untouched


def test_no_query_string_reaches_a_log_line(captured):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    access = logging.getLogger("uvicorn.access")  # the server's own line, as it logs it
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                f"/staff/queue?q={NAME.replace(' ', '%20')}&order=newest", "1.1", 200)
    logging.getLogger("scarguide.test").info("see https://example.org/a/b?who=%s", "me")
    app = Starlette(routes=[Route("/staff/queue", lambda _r: PlainTextResponse("ok"),
                                  methods=["GET", "POST"])])
    with TestClient(logs.AccessLog(app)) as client:
        client.get("/staff/queue", params={"q": "Quillfeather"})
        client.post("/staff/queue?x=1", data={"note": "Quillfeather"})
        client.get("/nowhere?q=Quillfeather")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    text = captured.getvalue()
    assert "Quillfeather" not in text and "q=" not in text and "who=" not in text
    assert '"GET /staff/queue HTTP/1.1\\" 200' in text
    assert "https://example.org/a/b" in text
    ours = [line for line in lines if line["logger"] == "scarguide.access"]
    assert [(line["method"], line["path"], line["status"]) for line in ours] == [
        ("GET", "/staff/queue", 200), ("POST", "/staff/queue", 200), ("GET", "/nowhere", 404)]
    assert all(re.fullmatch(r"[A-Z]+ /\S* \d{3} in \d+ ms", line["message"]) for line in ours)
    assert ours[0]["message"].startswith("GET /staff/queue 200 in ") and ours[0]["ms"] >= 0
    assert logs.redact("GET /api/x 404 in 1139 ms") == "GET /api/x 404 in 1139 ms"


@pytest.fixture
def log_file(tmp_path):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    path = tmp_path / "everything.log"
    with path.open("w", encoding="utf-8") as stream:
        logs.configure("DEBUG", stream=stream)
        yield path
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=PACKAGE_ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    return [PACKAGE_ROOT / name for name in listed if name and (PACKAGE_ROOT / name).is_file()]


def eval_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--",
                           "eval"], cwd=PACKAGE_ROOT, capture_output=True, text=True,
                          check=True).stdout


def test_personal_data_stays_in_the_database(tmp_path, log_file):
    """A conversation full of personal data, a booking, and every staff action: nothing
    personal reaches a log line (DEBUG, every logger) or a file in the repository."""
    from fastapi.testclient import TestClient

    from assistant.app import Services
    from assistant.cases import stored_cases
    from assistant.web.server import create_app
    from tests.conftest import fake_settings
    from tests.test_staff import PASSWORD, csrf_of, login

    rng = random.Random()
    word = lambda n: "".join(rng.choices(string.ascii_lowercase, k=n)).title()  # noqa: E731
    first, surname, street = word(7), word(9), word(8)
    token = "".join(rng.choices(string.digits, k=5))
    name, email = f"{first} {surname}", f"{first.lower()}.{surname.lower()}@example.net"
    postcode = f"LS{rng.randint(10, 29)} {rng.randint(1, 9)}{word(2).upper()}"
    phone = f"+44 7700 9{token}"
    address = f"{rng.randint(10, 99)} {street} Road, Leeds {postcode}"
    url = f"https://{surname.lower()}.example.com/photos?album={token}"
    secrets_ = [first, surname, street, email, phone, f"9{token}", f"{surname.lower()}.example",
                postcode]
    eval_before = eval_status()

    settings = fake_settings(tmp_path, fake_replies=[SUBCISION_CHOICE] * 3,
                             session_store="database", coverage_threshold=-1.0,
                             followup_similarity=-1.0,
                             database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    services = Services(settings)
    services.ingest()
    app = create_app(services, ui=False)
    with TestClient(logs.AccessLog(app), raise_server_exceptions=False) as client:
        r = client.post("/api/chat", json={"message": (
            f"Hi, I'm {name}. Email {email}, phone {phone}. I live at {address}. My photos: "
            f"{url} - how does subcision work?")})
        assert r.status_code == 200, r.text
        sid = r.json()["session_id"]
        assert client.post("/api/chat", json={"session_id": sid, "message": (
            f"{first} again ({email}, {phone}): is subcision painful?")}).status_code == 200
        ref = client.post("/api/bookings", json=booking(
            sid, name=name, email=email, phone=phone, preferred_times=f"call {phone}",
            concern=f"scars; I live at {address}")).json()["reference"]
        client.post("/api/feedback", json={"session_id": sid, "turn": 1, "rating": "down",
                                           "comment": f"{name}, {url}"})

        app.state.staff.add_user("sam", PASSWORD)
        assert login(client).status_code == 303
        queue = client.get("/staff/queue", params={"q": surname, "per_page": 1})
        assert queue.status_code == 200 and 'rel="next"' in queue.text
        page_two = client.get("/staff/queue", params={"q": surname, "per_page": 1, "page": 2})
        assert 'rel="prev"' in page_two.text
        [turn_id] = [int(n) for n in re.findall(r'href="/staff/turns/(\d+)"', queue.text)]
        turn = client.get(f"/staff/turns/{turn_id}")
        assert surname in turn.text  # staff see the conversation ...
        csrf = csrf_of(turn.text)
        r = client.post(f"/staff/turns/{turn_id}/review",
                        data={"csrf": csrf, "verdict": "incorrect", "note": f"ask {first}"})
        assert r.status_code == 200
        r = client.post(f"/staff/turns/{turn_id}/add-case",
                        data={"csrf": csrf, "expected_status": "answered",
                              "facts": "subcision"})
        assert "Added case" in r.text
        r = client.post(f"/staff/bookings/{ref}/status",
                        data={"csrf": csrf, "status": "contacted"})
        assert r.status_code == 200
        export = client.get("/staff/bookings.csv")
        assert email in export.text  # ... and the bookings they follow up
        assert client.get("/staff/gaps").status_code == 200
        assert "eval_cases" in client.get("/staff/audit").text
        r = client.post("/staff/logout", data={"csrf": csrf})
        assert r.status_code == 200 and client.get("/staff/api/turns").status_code == 401
        logging.getLogger("scarguide.test").debug("by mistake: %s %s %s", name, email, phone)

    text = log_file.read_text(encoding="utf-8")
    assert '"path": "/staff/queue"' in text and '"path": "/staff/logout"' in text  # logged
    for secret in secrets_:
        assert secret not in text, secret
    for case in stored_cases(services.store):  # the eval case is redacted
        for secret in secrets_:
            assert secret not in json.dumps(case.model_dump(), ensure_ascii=False), secret
    for path in tracked_files():  # and no file in the repository holds any of it
        content = path.read_bytes().decode("utf-8", "replace")
        for secret in secrets_:
            assert secret not in content, (path, secret)
    for path in (PACKAGE_ROOT / "eval").rglob("*"):
        if path.is_file():
            assert not any(s in path.read_text("utf-8", "replace") for s in secrets_), path
    assert eval_status() == eval_before


def test_scrub_masks_what_a_patient_may_give_and_keeps_the_question():
    text = ("I'm Jordan, jordan.q@example.org or +44 7700 900123; 221B Baker Street, London "
            "NW1 6XE; see https://jq.example.com/me?x=1 or jq.example.org/p, ref 48577731. "
            "Quillfeather asks: is 3000 too much for 2 sessions?")
    assert logs.scrub(text, names=[NAME]) == (
        "I'm [name], [email] or [phone]; [address], London [postcode]; see [url] or [url], "
        "ref [phone]. [name] asks: is 3000 too much for 2 sessions?")
    assert logs.scrub("my name is Kim Lee and I'm worried about 12 Week Road", ["Lee"]) == (
        "my name is [name] [name] and I'm worried about [address]")
    assert logs.scrub("(www.example.com/a.) and example.net/.") == "([url].) and [url]."
    kept = "I'm worried: do rolling scars fade in 6 weeks, and/or with 1,000 IU of vitamin D?"
    assert logs.scrub(kept) == kept
    assert logs.scrub("code 123456 and 12345") == "code [number] and 12345"
