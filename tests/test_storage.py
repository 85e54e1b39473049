"""Storage: migrations, and a booking acknowledged with 201 survives ``kill -9``."""

from __future__ import annotations

import sqlite3

import httpx
from sqlalchemy import inspect

from assistant.store import Store
from tests.server import Server


def test_migrations_create_the_schema_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).migrate()
    Store(url).migrate()  # a second run changes nothing
    tables = set(inspect(Store(url).engine).get_table_names())
    assert {"sessions", "turns", "feedback", "bookings", "rate_hits", "eval_cases",
            "alembic_version"} <= tables
    with sqlite3.connect(tmp_path / "x.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0003"


def test_a_booking_acknowledged_with_201_survives_kill_9(tmp_path):
    db_path = tmp_path / "bookings.db"
    env = {
        "SCARGUIDE_PROFILE": "test",
        "SCARGUIDE_DATA_DIR": str(tmp_path / "data"),
        "SCARGUIDE_DATABASE_URL": f"sqlite:///{db_path}",
    }
    server = Server(env, tmp_path / "server.log").start()
    try:
        r = httpx.post(
            f"{server.url}/api/bookings",
            json={
                "name": "Kim Lee",
                "phone": "+1 555 0100",
                "preferred_times": "Friday afternoon",
                "concern": "ice pick scars",
                "consent": True,
            },
            timeout=30,
        )
        assert r.status_code == 201
        reference = r.json()["reference"]
    finally:
        server.kill()  # SIGKILL, right after the acknowledgement
    assert server.process.returncode == -9

    with sqlite3.connect(db_path) as db:
        row = db.execute(
            "SELECT name, status FROM bookings WHERE reference = ?", (reference,)
        ).fetchone()
    assert row == ("Kim Lee", "new")

    restarted = Server(env, tmp_path / "server2.log").start()
    try:
        state = httpx.get(f"{restarted.url}/api/bookings/{reference}", timeout=30)
        assert state.status_code == 200 and state.json()["status"] == "new"
    finally:
        restarted.kill()
