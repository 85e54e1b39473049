"""Faults a deployment meets, survived with nothing lost; every component real and on
loopback: llama.cpp's server, PostgreSQL, the app itself.

- The model server dies in the middle of an answer: the patient gets a clear error
  event, the turn is stored as failed (staff see it), and once the server is back the
  next message is answered.
- PostgreSQL stops for a few seconds during traffic: requests fail with 503, every
  booking acknowledged with 201 is in the database, and service comes back by itself.
- The app is killed (SIGKILL) in the middle of an answer: after a restart the
  conversation has no half turn, and goes on with the next number."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from assistant.models import model_path
from assistant.stack import Processes, start_postgres, wait_for
from tests.server import Server, free_port

pytestmark = pytest.mark.real

BIN = Path(sys.executable).parent
QUIET = {"GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False",
         "HF_HUB_OFFLINE": "1"}


def events(raw: str) -> list[tuple[str, dict]]:
    out = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines.get("data", "{}"))))
    return out


def stored_turns(database: str, sid: str) -> list[tuple[int, str]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database)
    try:
        with engine.connect() as db:
            return [tuple(r) for r in db.execute(
                text("SELECT turn, status FROM turns WHERE session_id = :s ORDER BY turn"),
                {"s": sid})]
    finally:
        engine.dispose()


def test_the_model_server_dies_mid_answer(real_services, tmp_path):
    root = tmp_path
    procs = Processes(root)
    try:
        model = model_path("qwen2.5-coder-1.5b", real_services.settings.data_dir)
        llm_port = free_port()
        llm, log = procs.start("llm", [sys.executable, "-m", "llama_cpp.server", "--model",
                                       str(model), "--model_alias", "qwen2.5-coder-1.5b",
                                       "--host", "127.0.0.1", "--port", str(llm_port),
                                       "--n_ctx", "4096", "--n_threads", "2"])
        wait_for(f"http://127.0.0.1:{llm_port}/v1/models", 300, llm, log)
        database = f"sqlite:///{root / 'app.sqlite'}"
        env = {**QUIET, "SCARGUIDE_DATA_DIR": str(real_services.settings.data_dir),
               "SCARGUIDE_DATABASE_URL": database, "SCARGUIDE_SESSION_STORE": "database",
               "SCARGUIDE_LLM_BACKEND": "openai",
               "SCARGUIDE_OPENAI_BASE_URL": f"http://127.0.0.1:{llm_port}/v1",
               "SCARGUIDE_OPENAI_MODEL": "qwen2.5-coder-1.5b",
               "SCARGUIDE_OPENAI_API_KEY": "not-needed-on-loopback",
               "SCARGUIDE_OPENAI_RESPONSE_FORMAT": "json_object",
               "SCARGUIDE_LLM_TIMEOUT_S": "60",
               "SCARGUIDE_TRIAGE_MODEL_CHECK": "false", "SCARGUIDE_RATE_LIMIT": ""}
        server = Server(env, root / "api.log").start()
        procs.running.append(server.process)
        with httpx.Client(base_url=server.url, timeout=300) as api:
            # the model's first call processes the whole prompt (seconds): kill it then
            killer = threading.Timer(1.5, procs.kill, args=("llm",))
            killer.start()
            with api.stream("POST", "/api/chat/stream",
                            json={"message": "What are boxcar scars?"}) as s:
                got = events("".join(s.iter_text()))
            killer.join()
            kinds = [kind for kind, _ in got]
            assert "record" not in kinds and kinds[-1] == "error", kinds
            assert got[-1][1]["error"]["code"] == "unavailable"
            assert got[-1][1]["error"]["message"]
            [(sid,)] = _sessions(database)
            assert stored_turns(database, sid) == [(1, "failed")]

            llm, log = procs.restart("llm")
            wait_for(f"http://127.0.0.1:{llm_port}/v1/models", 300, llm, log)
            again = api.post("/api/chat", json={"message": "What are boxcar scars?",
                                                "session_id": sid})
            assert again.status_code == 200, again.text
            assert again.json()["status"] == "answered" and again.json()["turn"] == 2
            assert stored_turns(database, sid) == [(1, "failed"), (2, "answered")]
    finally:
        procs.stop()


def _sessions(database: str) -> list[tuple[str]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database)
    try:
        with engine.connect() as db:
            return [tuple(r) for r in db.execute(text("SELECT id FROM sessions"))]
    finally:
        engine.dispose()


def test_postgres_stops_during_traffic(tmp_path):
    root = tmp_path
    os.chmod(root, 0o755)
    procs = Processes(root)
    try:
        database = start_postgres(procs)
        env = {**QUIET, "SCARGUIDE_PROFILE": "test", "SCARGUIDE_DATA_DIR": str(root / "data"),
               "SCARGUIDE_DATABASE_URL": database, "SCARGUIDE_SESSION_STORE": "database",
               "SCARGUIDE_LLM_BACKEND": "quote", "SCARGUIDE_COVERAGE_THRESHOLD": "-1",
               "SCARGUIDE_RATE_LIMIT": "100000/minute"}
        port = free_port()
        api, log = procs.start("api", [str(BIN / "scarguide"), "serve", "--port", str(port),
                                       "--workers", "2"], env=env)
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/healthz", 300, api, log)

        results: list[tuple[float, str, int, str | None]] = []
        stop = threading.Event()

        def traffic(kind: str) -> None:
            with httpx.Client(base_url=url, timeout=60) as client:
                while not stop.is_set():
                    at = time.monotonic()
                    try:
                        if kind == "book":
                            r = client.post("/api/bookings", json={
                                "name": "Test Patient", "email": "patient@example.org",
                                "preferred_times": "mornings", "consent": True})
                            ref = r.json().get("reference") if r.status_code == 201 else None
                        else:
                            r = client.post("/api/chat", json={"message": "What is subcision?"})
                            ref = None
                        results.append((at, kind, r.status_code, ref))
                    except httpx.HTTPError:
                        results.append((at, kind, -1, None))
                    time.sleep(0.05)

        threads = [threading.Thread(target=traffic, args=(k,)) for k in ("book", "chat")]
        for t in threads:
            t.start()
        time.sleep(3)
        down = time.monotonic()
        procs.kill("postgres", signal.SIGINT)  # a fast shutdown: clients are cut off
        time.sleep(4)
        pg, pg_log = procs.restart("postgres")
        up = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # back by itself: no restart of the app
            time.sleep(0.5)
            late = [r for r in results if r[0] > up + 1]
            if len([r for r in late if r[2] in (200, 201)]) >= 4:
                break
        stop.set()
        for t in threads:
            t.join(60)

        statuses = {status for _, _, status, _ in results}
        assert statuses <= {200, 201, 503}, sorted(statuses)  # never a 500 or a hang
        during = [r for r in results if down + 0.5 < r[0] < up]
        assert during and all(r[2] == 503 for r in during)
        after = [r for r in results if r[0] > up + 1]
        assert {r[2] for r in after[-4:]} <= {200, 201}, after[-6:]
        acknowledged = {ref for _, kind, status, ref in results if status == 201}
        assert len(acknowledged) >= 10
        import psycopg

        with psycopg.connect(database.replace("+psycopg", "")) as db:
            stored = {r[0] for r in db.execute("SELECT reference FROM bookings")}
        assert acknowledged <= stored  # no booking that got a 201 is lost
    finally:
        procs.stop()


def test_the_app_is_killed_mid_answer(tmp_path):
    database = f"sqlite:///{tmp_path / 'app.sqlite'}"
    env = {"SCARGUIDE_PROFILE": "test", "SCARGUIDE_DATA_DIR": str(tmp_path / "data"),
           "SCARGUIDE_DATABASE_URL": database, "SCARGUIDE_SESSION_STORE": "database",
           "SCARGUIDE_LLM_BACKEND": "quote", "SCARGUIDE_COVERAGE_THRESHOLD": "-1",
           "SCARGUIDE_FOLLOWUP_SIMILARITY": "-1", "SCARGUIDE_FAKE_DELAY_S": "2",
           "SCARGUIDE_RATE_LIMIT": ""}
    server = Server(env, tmp_path / "api.log").start()
    try:
        first = httpx.post(f"{server.url}/api/chat", timeout=60,
                           json={"message": "What is subcision?"}).json()
        sid = first["session_id"]
        killer = threading.Timer(1.0, server.kill)  # SIGKILL during the 2 s answer call
        killer.start()
        with pytest.raises(httpx.HTTPError):
            with httpx.stream("POST", f"{server.url}/api/chat/stream", timeout=60,
                              json={"message": "What is TCA CROSS?", "session_id": sid}) as s:
                for _ in s.iter_text():
                    pass
        killer.join()
        assert stored_turns(database, sid) == [(1, "answered")]  # no half turn

        server = Server(env, tmp_path / "api.log", port=server.port).start()
        history = httpx.post(f"{server.url}/api/chat", timeout=60,
                             json={"message": "What is TCA CROSS?", "session_id": sid})
        assert history.status_code == 200 and history.json()["turn"] == 2
        assert stored_turns(database, sid) == [(1, "answered"), (2, "answered")]
    finally:
        server.kill(signal.SIGTERM)
