"""One turn of a conversation at a time: in a process, across processes on one host
(flock), across workers on PostgreSQL (advisory locks); every wait bounded."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from assistant.errors import BusyError
from assistant.locks import FileLocks, PostgresLocks, ProcessLocks


def overlap(locks, n: int = 6) -> list[tuple[str, str]]:
    """Run ``n`` threads that each hold conversation "a" briefly; return the order of
    entries and exits (strictly alternating when the lock works)."""
    order, guard = [], threading.Lock()

    def turn(i):
        with locks.hold("conversation-a", 10):
            with guard:
                order.append(("in", i))
            time.sleep(0.02)
            with guard:
                order.append(("out", i))

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return order


def alternate(order) -> bool:
    return all(order[k][0] == "in" and order[k + 1] == ("out", order[k][1])
               for k in range(0, len(order), 2))


@pytest.mark.parametrize("make", [ProcessLocks, lambda: FileLocks(_tmp())])
def test_turns_of_one_conversation_never_overlap(make):
    locks = make()
    order = overlap(locks)
    assert len(order) == 12 and alternate(order)


def _tmp():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp()) / "locks"


def test_process_locks_forget_conversations_nobody_holds():
    locks = ProcessLocks()
    for i in range(100):
        with locks.hold(f"c{i}", 1):
            assert len(locks) == 1
    assert len(locks) == 0


def test_a_wait_past_the_timeout_is_busy_and_other_conversations_go_on(tmp_path):
    for locks in (ProcessLocks(), FileLocks(tmp_path / "locks", buckets=1 << 16)):
        with locks.hold("a-conversation", 1):
            started = time.monotonic()
            result = []
            t = threading.Thread(target=lambda held=locks, out=result: out.append(
                _try(held, "a-conversation")))
            t.start()
            t.join(5)
            assert result == ["busy"] and 0.25 < time.monotonic() - started < 2
            assert _try(locks, "another-one") == "held"


def _try(locks, sid, timeout=0.3):
    try:
        with locks.hold(sid, timeout):
            return "held"
    except BusyError:
        return "busy"


def _hold_in_child(directory, ready, release):
    with FileLocks(directory).hold("shared-conversation", 5):
        ready.set()
        release.wait(10)


def test_file_locks_hold_across_processes(tmp_path):
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(tmp_path / "l", ready, release))
    child.start()
    try:
        assert ready.wait(30)
        assert _try(FileLocks(tmp_path / "l"), "shared-conversation") == "busy"
    finally:
        release.set()
        child.join(30)
    assert _try(FileLocks(tmp_path / "l"), "shared-conversation") == "held"


@pytest.mark.real
def test_postgres_advisory_locks_hold_across_connections_and_free_pooled_ones(tmp_path):
    from sqlalchemy import create_engine, text

    from assistant.stack import Processes, start_postgres

    procs = Processes(tmp_path)
    try:
        url = start_postgres(procs)
        one = PostgresLocks(create_engine(url, pool_size=2, max_overflow=0))
        other = PostgresLocks(create_engine(url, pool_size=2, max_overflow=0))
        assert alternate(overlap(one)) and len(overlap(one)) == 12
        with one.hold("a-conversation", 1):
            assert _try(other, "a-conversation") == "busy"
            assert _try(other, "another-one") == "held"
            # waiters gave their connections back: the holder's engine still has one free
            with one.engine.connect() as c:
                assert c.execute(text("SELECT 1")).scalar() == 1
        assert _try(other, "a-conversation") == "held"
    finally:
        procs.stop()
