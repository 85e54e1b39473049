"""Scale-out on existing engines, all started on loopback by this test: Chroma as a server
(`chroma run`), the packaged model behind llama.cpp's OpenAI-compatible server
(`llama_cpp.server`), PostgreSQL (Debian's package), and two API workers sharing them.
The REST contract is then checked against that deployment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from assistant.config import PACKAGE_ROOT
from assistant.models import model_path
from tests.server import free_port

pytestmark = pytest.mark.real

BIN = Path(sys.executable).parent
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


def wait_for(url: str, timeout: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=3).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not up in {timeout} s\n{log.read_text()[-3000:]}")


class Processes:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: list[subprocess.Popen] = []
        self.cleanup: list[Path] = []

    def start(self, name: str, args: list[str], env: dict | None = None,
              user: str | None = None) -> tuple[subprocess.Popen, Path]:
        log = self.root / f"{name}.log"
        if user:
            args = ["runuser", "-u", user, "--", *args]
        process = subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})},
                                   cwd="/" if user else PACKAGE_ROOT, start_new_session=True)
        self.running.append(process)
        return process, log

    def stop(self) -> None:
        for process in reversed(self.running):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for folder in self.cleanup:
            shutil.rmtree(folder, ignore_errors=True)


def start_postgres(procs: Processes) -> str:
    if PG_BIN is None:
        pytest.fail("PostgreSQL is not installed: `make postgres` installs Debian's package")
    # a folder the server's own user can reach (pytest's are private to root)
    root = Path(tempfile.mkdtemp(prefix="scarguide-pg-"))
    procs.cleanup.append(root)
    data = root / "pg"
    user = "postgres" if os.geteuid() == 0 else None  # the server refuses to run as root
    if user:
        os.chmod(root, 0o755)
        shutil.chown(root, user)
    init = ["runuser", "-u", user, "--"] if user else []
    done = subprocess.run([*init, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U",
                           "scarguide", "--no-sync"], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr
    port = free_port()
    process, log = procs.start(
        "postgres",
        [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        user=user,
    )
    url = f"postgresql+psycopg://scarguide@127.0.0.1:{port}/postgres"
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(f"postgresql://scarguide@127.0.0.1:{port}/postgres").close()
            return url
        except psycopg.OperationalError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:]) from None
            time.sleep(0.3)


@pytest.fixture(scope="module")
def deployment(real_services, tmp_path_factory):
    root = tmp_path_factory.mktemp("scaleout")
    os.chmod(root, 0o755)
    procs = Processes(root)
    try:
        database = start_postgres(procs)

        chroma_port = free_port()
        chroma, log = procs.start("chroma", [str(BIN / "chroma"), "run", "--path",
                                             str(root / "chroma"), "--host", "127.0.0.1",
                                             "--port", str(chroma_port)])
        wait_for(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", 120, chroma, log)

        model = model_path("qwen2.5-coder-1.5b", real_services.settings.data_dir)
        llm_port = free_port()
        llm, log = procs.start("llm", [sys.executable, "-m", "llama_cpp.server", "--model",
                                       str(model), "--model_alias", "qwen2.5-coder-1.5b",
                                       "--host", "127.0.0.1", "--port", str(llm_port),
                                       "--n_ctx", "4096", "--n_threads", "2"])
        wait_for(f"http://127.0.0.1:{llm_port}/v1/models", 300, llm, log)

        env = {
            "SCARGUIDE_DATA_DIR": str(root / "data"),
            "SCARGUIDE_DATABASE_URL": database,
            "SCARGUIDE_CHROMA_MODE": "http",
            "SCARGUIDE_CHROMA_URL": f"http://127.0.0.1:{chroma_port}",
            "SCARGUIDE_LLM_BACKEND": "openai",
            "SCARGUIDE_OPENAI_BASE_URL": f"http://127.0.0.1:{llm_port}/v1",
            "SCARGUIDE_OPENAI_MODEL": "qwen2.5-coder-1.5b",
            "SCARGUIDE_OPENAI_API_KEY": "not-needed-on-loopback",
            # llama-cpp-python's server takes the schema the older way
            "SCARGUIDE_OPENAI_RESPONSE_FORMAT": "json_object",
            "SCARGUIDE_RATE_LIMIT": "",
            # One llama.cpp server with one slot serves the answers here; triage's model
            # check wants a slot of its own (SCARGUIDE_TRIAGE_OPENAI_BASE_URL, docs/deploy.md),
            # so this contract test runs triage's patterns and screen only.
            "SCARGUIDE_TRIAGE_MODEL_CHECK": "false",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "ANONYMIZED_TELEMETRY": "False",
            "HF_HUB_OFFLINE": "1",
        }
        subprocess.run([str(BIN / "scarguide"), "ingest", "--quiet"], env={**os.environ, **env},
                       cwd=PACKAGE_ROOT, check=True, capture_output=True)
        api_port = free_port()
        api, log = procs.start("api", [str(BIN / "scarguide"), "serve", "--port", str(api_port),
                                       "--workers", "2"], env=env)
        wait_for(f"http://127.0.0.1:{api_port}/healthz", 300, api, log)
        yield {"url": f"http://127.0.0.1:{api_port}", "database": database,
               "chroma_port": chroma_port, "api_log": log, "api": api}
    finally:
        procs.stop()


def test_the_rest_contract_holds_on_the_scaled_out_deployment(deployment):
    import psycopg

    with httpx.Client(base_url=deployment["url"], timeout=600) as api:
        health = api.get("/healthz").json()
        assert health == {"status": "ok", "model_loaded": True, "index_ready": True,
                          "database": True, "model": "openai"}
        r = api.post("/api/chat", json={"message": "What are boxcar scars?"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"session_id", "status", "coverage", "answer", "citations",
                             "handoff", "turn", "notice"}
        assert body["status"] == "answered" and body["citations"]
        assert set(body["citations"][0]) == {"n", "chunk_id", "section", "quote"}
        sid = body["session_id"]

        with api.stream("POST", "/api/chat/stream",
                        json={"message": "How much does laser treatment cost?",
                              "session_id": sid}) as s:
            raw = "".join(s.iter_text())
        blocks = [b for b in raw.strip().split("\n\n") if b]
        assert blocks[-1].startswith("event: record")
        record = json.loads(blocks[-1].split("data: ", 1)[1])
        assert record["status"] == "not_in_guide" and record["turn"] == 2

        end = api.post(f"/api/sessions/{sid}/end").json()
        assert end["status"] == "handoff" and set(end["handoff"]) == {"message", "summary",
                                                                     "booking_url"}
        created = api.post("/api/bookings", json={
            "session_id": sid, "name": "Ada Lovelace", "email": "ada@example.org",
            "preferred_times": "mornings", "concern": "boxcar scars", "consent": True})
        assert created.status_code == 201
        reference = created.json()["reference"]
        assert api.get(f"/api/bookings/{reference}").json()["status"] == "new"
        assert api.post("/api/feedback", json={"session_id": sid, "turn": 1,
                                               "rating": "up"}).status_code == 201

        for method, path, body, status in [
            ("post", "/api/chat", {"message": ""}, 422),
            ("post", "/api/chat", {"message": "hi", "session_id": "AAAAAAAAAAAA"}, 404),
            ("post", "/api/bookings", {"name": "x", "email": "x@example.org",
                                       "preferred_times": "any", "consent": False}, 422),
            ("post", "/api/bookings", {"name": "x", "email": "not-an-email",
                                       "preferred_times": "any", "consent": True}, 422),
            ("get", "/api/chat", None, 405),
        ]:
            r = api.request(method.upper(), path, json=body)
            assert r.status_code == status, (path, r.text)
            assert set(r.json()["error"]) == {"code", "message"}
        r = api.post("/api/chat", content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 400

    # the state lives in the shared engines, not in a worker
    dsn = deployment["database"].replace("+psycopg", "")
    with psycopg.connect(dsn) as db:
        assert db.execute("SELECT status FROM bookings WHERE reference = %s",
                          (reference,)).fetchone() == ("new",)
        assert db.execute("SELECT count(*) FROM turns WHERE session_id = %s",
                          (sid,)).fetchone() == (3,)
    import chromadb

    chroma = chromadb.HttpClient(host="127.0.0.1", port=deployment["chroma_port"])
    assert chroma.get_collection("guide").count() == 22
    # two workers served
    assert deployment["api_log"].read_text().count("Started server process") >= 2
