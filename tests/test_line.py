"""The bounded line in front of the model: order, places, capacity, and the API's answers."""

from __future__ import annotations

import json
import threading
import time

import pytest

from assistant.errors import BusyError
from assistant.line import Line
from tests.test_answer import SUBCISION_CHOICE
from tests.test_api import assert_error, make_client


def test_places_are_kept_in_order_and_a_full_line_turns_newcomers_away():
    line = Line(slots=1, capacity=2)
    first, second, third = line.join(), line.join(), line.join()
    assert [line.position(t) for t in (first, second, third)] == [0, 1, 2]
    with pytest.raises(BusyError) as busy:
        line.join()
    assert busy.value.waiting == 3 and busy.value.retry_after >= 1
    line.start(first)
    assert line.position(second) == 1 and line.position(third) == 2
    line.leave(third)  # gave up waiting
    line.leave()  # first is done
    assert line.position(second) == 0
    assert line.stats() | {"turned_away": 1} == {"serving": 0, "waiting": 1, "capacity": 2,
                                                  "served": 1, "turned_away": 1}


def test_turn_blocks_until_the_slot_is_free():
    line = Line(slots=1, capacity=5)
    order = []

    def worker(name):
        with line.turn(30):
            order.append(f"{name} in")
            time.sleep(0.05)
            order.append(f"{name} out")

    threads = [threading.Thread(target=worker, args=(n,)) for n in "abc"]
    for t in threads:
        t.start()
        time.sleep(0.01)
    for t in threads:
        t.join(5)
    assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]


def test_the_api_says_busy_and_streams_the_place_in_line(tmp_path):
    with make_client(tmp_path, *[SUBCISION_CHOICE] * 3, queue_size=1) as client:
        line = client.app.state.runtime.desk().line
        held = line.join()
        line.start(held)  # someone is being served
        waiting = line.join()  # and someone waits: the line is full
        r = client.post("/api/chat", json={"message": "what is subcision?"})
        assert_error(r, 503, "busy")
        assert int(r.headers["Retry-After"]) >= 1
        # urgent messages never wait in line
        urgent = client.post("/api/chat", json={"message": "I can't breathe after the peel"})
        assert urgent.status_code == 200 and urgent.json()["status"] == "urgent"
        line.leave(waiting)

        def release():
            time.sleep(0.5)
            line.leave()

        threading.Thread(target=release).start()
        with client.stream("POST", "/api/chat/stream",
                           json={"message": "what is subcision?"}) as s:
            raw = "".join(s.iter_text())
        events = [b.split("\n")[0].removeprefix("event: ") for b in raw.strip().split("\n\n")]
        assert events[0] == "queued" and events[-1] == "record"
        first = json.loads(raw.split("\n\n")[0].split("data: ")[1])
        assert first == {"position": 1}
        assert line.stats()["serving"] == 0 and line.stats()["waiting"] == 0


def test_the_load_test_against_a_server_with_a_stand_in_model(tmp_path):
    from assistant import loadtest
    from tests.server import running

    env = {"SCARGUIDE_PROFILE": "test", "SCARGUIDE_LLM_BACKEND": "quote",
           "SCARGUIDE_COVERAGE_THRESHOLD": "-1", "SCARGUIDE_DATA_DIR": str(tmp_path / "d"),
           "SCARGUIDE_RATE_LIMIT": "", "SCARGUIDE_QUEUE_SIZE": "4",
           "SCARGUIDE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
           "SCARGUIDE_SESSION_STORE": "database"}
    with running(env, tmp_path / "server.log") as server:
        levels = loadtest.run(server.url, [1, 16], questions=2, timeout=60, deadline_s=120,
                              pid=server.process.pid)
    loadtest.check_stored(env["SCARGUIDE_DATABASE_URL"], levels)
    for level in levels:
        assert level.requests == level.sessions * 2
        assert level.server_errors == 0 and level.lost == 0 and level.client_errors == 0
        assert level.answered + level.busy == level.requests  # nothing silently dropped
        assert sum(len(t) for t in level.turns.values()) == level.answered
        assert (level.stored_lost, level.stored_duplicated, level.stored_failed) == (0, 0, 0)
        assert level.server_peak_rss_mb and level.server_peak_rss_mb > 0
    assert "| 16 |" in loadtest.render(levels)
    with pytest.raises(Exception, match="loopback"):
        loadtest.run("http://example.org", [1])


def test_an_answer_closed_before_it_started_gives_its_place_back(tmp_path):
    with make_client(tmp_path, SUBCISION_CHOICE) as client:
        desk = client.app.state.runtime.desk()
        answer = desk.stream("what is subcision?")  # takes a place, never iterated
        assert desk.line.stats()["waiting"] == 1
        answer.close()
        assert desk.line.stats()["waiting"] == 0
        started = desk.stream("what is subcision?")
        assert next(iter(started)).kind == "sentence"  # being served now
        assert desk.line.stats()["serving"] == 1
        started.close()  # the patient left mid-answer
        assert desk.line.stats() | {"served": 0} == {"serving": 0, "waiting": 0, "capacity": 20,
                                                      "served": 0, "turned_away": 0}


def test_a_plain_chat_waiting_past_its_deadline_is_told_busy(tmp_path):
    with make_client(tmp_path, llm_backend="quote", fake_delay_s=2.0,
                     queue_timeout_s=0.5) as client:
        replies = {}

        def ask(name):
            replies[name] = client.post("/api/chat", json={"message": "what is subcision?"})

        first = threading.Thread(target=ask, args=("first",))
        first.start()
        line = client.app.state.runtime.desk().line
        while not line.stats()["serving"]:  # the first is being answered (2 s)
            time.sleep(0.01)
        started = time.monotonic()
        ask("late")  # waits 0.5 s at most
        waited = time.monotonic() - started
        first.join(30)
    assert_error(replies["late"], 503, "busy")
    assert int(replies["late"].headers["Retry-After"]) >= 1
    assert 0.4 < waited < 1.9  # the deadline, not the first answer's end
    assert replies["first"].status_code == 200


def test_the_lines_deadline_counts_from_joining():
    line = Line(slots=1, capacity=5)
    held = line.join()
    line.start(held)
    started = time.monotonic()
    with pytest.raises(BusyError) as busy:
        with line.turn(0.3):
            pass
    assert 0.25 < time.monotonic() - started < 1.5
    assert busy.value.waiting == 1 and line.stats()["waiting"] == 0
