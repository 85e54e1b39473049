"""The staff console on a real server (``scarguide serve``, the quote stand-in model, a
SQLite file): a staff write stuck on a database lock does not hold up a patient's chat,
and no query string or body reaches the server's log."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time

import httpx
import pytest

from assistant.staff import StaffDesk
from assistant.store import Store
from tests.server import Server

PASSWORD = "correct horse battery staple"
LOCK_S = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("staff-server")
    database = root / "db.sqlite"
    store = Store(f"sqlite:///{database}")
    StaffDesk(store).add_user("sam", PASSWORD)
    store.engine.dispose()
    env = {"SCARGUIDE_PROFILE": "test", "SCARGUIDE_LLM_BACKEND": "quote",
           "SCARGUIDE_COVERAGE_THRESHOLD": "-1", "SCARGUIDE_FOLLOWUP_SIMILARITY": "-1",
           "SCARGUIDE_DATA_DIR": str(root / "data"), "SCARGUIDE_RATE_LIMIT": "",
           "SCARGUIDE_DATABASE_URL": f"sqlite:///{database}"}
    srv = Server(env, root / "server.log").start()
    srv.database = database
    try:
        yield srv
    finally:
        srv.kill()


def staff_client(server) -> tuple[httpx.Client, str]:
    """A logged-in staff client and its session's CSRF token."""
    client = httpx.Client(base_url=server.url, timeout=60)
    page = client.get("/staff/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/staff/login", data={"csrf": token, "username": "sam",
                                          "password": PASSWORD})
    assert r.status_code == 303, r.text
    page = client.get("/staff/audit")
    return client, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def first_turn(server) -> int:
    r = httpx.post(f"{server.url}/api/chat", json={"message": "what is subcision?"}, timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "answered", r.text
    with sqlite3.connect(server.database) as db:
        return db.execute("SELECT max(id) FROM turns").fetchone()[0]


def test_a_chat_streams_while_a_staff_write_waits_for_a_database_lock(server):
    turn_id = first_turn(server)
    client, csrf = staff_client(server)
    lock = sqlite3.connect(server.database, isolation_level=None, check_same_thread=False)
    lock.execute("BEGIN IMMEDIATE")  # another writer holds the database
    held = time.monotonic()
    staff: dict = {}
    chat: list[tuple[str, dict, float]] = []

    def write() -> None:
        r = client.post(f"/staff/turns/{turn_id}/review",
                        data={"csrf": csrf, "verdict": "correct", "note": "fine"})
        staff.update(status=r.status_code, at=time.monotonic())

    def stream() -> None:
        with httpx.stream("POST", f"{server.url}/api/chat/stream", timeout=60,
                          json={"message": "how does subcision work?"}) as r:
            assert r.status_code == 200
            for block in r.iter_text():
                for event in re.findall(r"event: (\w+)\ndata: (.*)\n", block):
                    chat.append((event[0], json.loads(event[1]), time.monotonic()))

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.5)  # the review is now waiting on the lock (busy timeout: 10 s)
    reader = threading.Thread(target=stream)
    reader.start()
    time.sleep(max(0.0, held + LOCK_S - time.monotonic()))
    released = time.monotonic()
    lock.execute("ROLLBACK")
    lock.close()
    reader.join(60)
    writer.join(60)

    assert staff["status"] == 303 and staff["at"] >= released  # it did wait for the lock
    kinds = [kind for kind, _, _ in chat]
    assert kinds[-1] == "record" and chat[-1][1]["status"] == "answered", kinds
    sentences = [at for kind, _, at in chat if kind == "sentence"]
    assert sentences, kinds
    # the answer streamed while the write waited; only its last event, which follows the
    # turn's own write to the same database, had to wait for the lock too
    assert all(at < released for at in sentences), [round(at - held, 2) for at in sentences]
    assert sentences[0] - held < LOCK_S - 1.0
    with sqlite3.connect(server.database) as db:
        assert db.execute("SELECT verdict FROM reviews WHERE turn_id = ?",
                          (turn_id,)).fetchall() == [("correct",)]
    client.close()


def test_no_query_string_or_body_reaches_the_log(server):
    secret = "Quillfeatherqs"
    client, csrf = staff_client(server)
    turn_id = first_turn(server)
    assert client.get(f"/staff/queue?q={secret}&order=newest").status_code == 200
    assert client.get(f"/staff/api/turns?q={secret}").json() == []
    client.post(f"/staff/turns/{turn_id}/review",
                data={"csrf": csrf, "verdict": "incorrect", "note": f"ask {secret}"})
    httpx.get(f"{server.url}/api/bookings/SG-NONE?who={secret}", timeout=30)
    httpx.post(f"{server.url}/api/chat", json={"message": f"I am {secret}"}, timeout=60)
    client.close()
    time.sleep(0.5)
    text = server.log.read_text()
    assert "/staff/queue" in text and "/staff/api/turns" in text  # requests are logged ...
    assert secret not in text and "?q=" not in text and "who=" not in text  # ... bare
