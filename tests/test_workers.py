"""Two API workers on one PostgreSQL database (started on loopback by these tests), with
the deterministic stand-in model: the invariants a single process never tests.

- Concurrent messages to one conversation, landing on both workers, are all stored,
  numbered without gaps or duplicates (the conversation's advisory lock and the
  database's turn numbering).
- A rate limit of N/min holds for the deployment, not N per worker."""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from assistant.stack import Processes, start_postgres, wait_for
from tests.server import free_port

pytestmark = pytest.mark.real

BIN = Path(sys.executable).parent


def deploy(procs: Processes, root: Path, database: str, **settings: str) -> tuple[str, Path]:
    env = {
        "SCARGUIDE_PROFILE": "test",
        "SCARGUIDE_DATA_DIR": str(root / "data"),
        "SCARGUIDE_DATABASE_URL": database,
        "SCARGUIDE_SESSION_STORE": "database",
        "SCARGUIDE_LLM_BACKEND": "quote",
        "SCARGUIDE_COVERAGE_THRESHOLD": "-1",
        "SCARGUIDE_FOLLOWUP_SIMILARITY": "-1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "ANONYMIZED_TELEMETRY": "False",
        "HF_HUB_OFFLINE": "1",
        **{f"SCARGUIDE_{k.upper()}": v for k, v in settings.items()},
    }
    port = free_port()
    api, log = procs.start(f"api-{port}", [str(BIN / "scarguide"), "serve", "--port",
                                           str(port), "--workers", "2"], env=env)
    wait_for(f"http://127.0.0.1:{port}/healthz", 300, api, log, workers=2)
    return f"http://127.0.0.1:{port}", log


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    root = tmp_path_factory.mktemp("workers")
    os.chmod(root, 0o755)
    procs = Processes(root)
    try:
        yield procs, root, start_postgres(procs)
    finally:
        procs.stop()


def fresh(method: str, url: str, **kw) -> httpx.Response:
    """One request on a connection of its own, so the kernel may hand it to either worker."""
    with httpx.Client(timeout=120, headers={"connection": "close"}) as c:
        return c.request(method, url, **kw)


def test_concurrent_messages_to_one_conversation_across_two_workers_are_all_stored(postgres):
    import psycopg

    procs, root, database = postgres
    url, log = deploy(procs, root / "a", database, rate_limit="", fake_delay_s="0.2")
    opening = fresh("POST", f"{url}/api/chat", json={"message": "What is subcision?"}).json()
    sid = opening["session_id"]

    def send(i: int) -> tuple[int, int | None]:
        body = {"message": f"What is subcision, part {i}?", "session_id": sid}
        if i % 2:  # half streamed, half plain
            r = fresh("POST", f"{url}/api/chat/stream", json=body)
            blocks = [b for b in r.text.strip().split("\n\n") if b.startswith("event: record")]
            turn = json.loads(blocks[0].split("data: ", 1)[1])["turn"] if blocks else None
            return r.status_code, turn
        r = fresh("POST", f"{url}/api/chat", json=body)
        return r.status_code, r.json().get("turn")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(send, range(20)))
    assert all(status == 200 for status, _ in results), results
    turns = sorted(turn for _, turn in results)
    assert turns == list(range(2, 22))  # each reply names its own, distinct turn

    with psycopg.connect(database.replace("+psycopg", "")) as db:
        stored = db.execute("SELECT turn, status, question FROM turns WHERE session_id = %s "
                            "ORDER BY turn", (sid,)).fetchall()
    assert [t for t, _, _ in stored] == list(range(1, 22))  # no gap, no duplicate
    assert all(status == "answered" for _, status, _ in stored)
    assert len({q for _, _, q in stored}) == 21  # every message stored once
    answered_by = {json.loads(line).get("pid") for line in log.read_text().splitlines()
                   if '"message": "turn"' in line}
    assert len(answered_by) == 2  # both workers answered this conversation


def test_a_rate_limit_holds_across_two_workers(postgres):
    procs, root, database = postgres
    url, _ = deploy(procs, root / "b", database, rate_limit="6/minute")
    statuses = [fresh("GET", f"{url}/api/bookings/SG-NOSUCH00").status_code
                for _ in range(16)]
    assert statuses.count(404) == 6 and statuses.count(429) == 10, statuses
    limited = fresh("GET", f"{url}/api/bookings/SG-NOSUCH00")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
