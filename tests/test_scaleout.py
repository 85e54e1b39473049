"""Scale-out on existing engines, all started on loopback by this test: Chroma as a server
(`chroma run`), the packaged model behind llama.cpp's OpenAI-compatible server
(`llama_cpp.server`), PostgreSQL (Debian's package), and two API workers sharing them.
The REST contract is then checked against that deployment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from assistant.stack import Processes, scaled
from tests.test_api import CHAT_FIELDS

pytestmark = pytest.mark.real

@pytest.fixture(scope="module")
def deployment(real_services, tmp_path_factory):
    root = tmp_path_factory.mktemp("scaleout")
    os.chmod(root, 0o755)
    procs = Processes(root)
    try:
        # One llama.cpp server with one slot serves the answers here; triage's model
        # check wants a slot of its own (docs/deploy.md), so this contract test runs
        # triage's patterns and screen only.
        started = scaled(procs, root / "data", triage_server=False,
                         model_dir=real_services.settings.data_dir, rate_limit="")
        yield {"url": started["url"], "database": started["database"],
               "chroma_port": int(started["chroma"].rsplit(":", 1)[1]),
               "api_log": Path(started["api_log"])}
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
        assert set(body) == CHAT_FIELDS  # the same contract as one process
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
