"""A bounded load test of a running server, on loopback only.

For each level (e.g. 1, 4, 16, 50 concurrent sessions) every simulated patient holds one
conversation of ``questions`` questions through ``POST /api/chat``, one after the other,
all patients at once. Every request ends in exactly one bucket: answered (200), busy
(503 ``busy``: the line was full; a clear refusal with Retry-After), rate limited (429),
other client errors (4xx), server errors (5xx other than busy), or lost (no response:
connection refused or reset, or the timeout). It stops by itself: each request has a
timeout and each level a deadline.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from assistant.errors import ConfigError
from assistant.evals import percentile

QUESTIONS = [
    "What is the difference between acne marks and acne scars?",
    "what are boxcar scars?",
    "how does subcision work?",
    "what is TCA CROSS?",
    "can lasers help with acne scars?",
    "what are keloids?",
    "how does microneedling help scars?",
    "what is PRP therapy?",
]
# Urgent and crisis messages sent while the ordinary patients wait: written to need the
# semantic triage (no reviewed pattern matches them), so they measure the model check
# under load, not the pattern layer.
URGENT = [
    "since the filler this morning the spot looks lacy and purple and it throbs",
    "i took the whole box of tablets an hour ago",
    "my lips are puffing up and i feel faint since the numbing cream went on",
    "i've said goodbye to my family, i won't need the follow-up",
    "the punch site keeps bleeding through every dressing",
    "i keep throwing up and my heart is pounding since the peel",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Level:
    sessions: int
    requests: int = 0
    answered: int = 0
    busy: int = 0
    rate_limited: int = 0
    client_errors: int = 0
    server_errors: int = 0
    lost: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    busy_ms: list[float] = field(default_factory=list, repr=False)
    urgent_ms: list[float] = field(default_factory=list, repr=False)
    urgent_sent: int = 0
    urgent_routed: int = 0
    seconds: float = 0.0
    server_peak_rss_mb: float | None = None
    # the turn number of every answered reply, by conversation (checked in the database)
    turns: dict[str, list[int]] = field(default_factory=dict, repr=False)
    stored_lost: int | None = None
    stored_duplicated: int | None = None
    stored_failed: int | None = None

    def summary(self) -> dict:
        def pct(q: float) -> float | None:
            value = percentile(self.latencies_ms, q)
            return None if value is None else round(value)

        lists = ("latencies_ms", "busy_ms", "urgent_ms", "turns")
        data = {k: v for k, v in asdict(self).items() if k not in lists}
        urgent_p50 = percentile(self.urgent_ms, 50)
        urgent_p95 = percentile(self.urgent_ms, 95)
        return data | {
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "urgent_p50_ms": None if urgent_p50 is None else round(urgent_p50),
            "urgent_p95_ms": None if urgent_p95 is None else round(urgent_p95),
            "busy_reply_p50_ms": round(statistics.median(self.busy_ms)) if self.busy_ms else None,
        }


def _tree(pid: int) -> list[int]:
    """The process and its descendants (the workers of ``serve --workers N``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return found


def _peak_rss_mb(pid: int | None) -> float | None:
    """Peak resident memory of the server: of its process and any worker processes."""
    if not pid:
        return None
    total = 0.0
    for each in _tree(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return round(total, 1) if total else None


def check_stored(database_url: str, levels: list[Level]) -> None:
    """Compare every answered reply with the turns the database holds for its
    conversation: a reply whose turn is not stored is lost; a turn number stored twice,
    or a stored answer no reply announced, is a duplicate; failed turns are counted."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            for level in levels:
                lost = duplicated = failed = 0
                for session_id, replied in level.turns.items():
                    rows = db.execute(text("SELECT turn, status FROM turns WHERE "
                                           "session_id = :s"), {"s": session_id}).all()
                    numbers = [turn for turn, _ in rows]
                    answered = {turn for turn, status in rows if status != "failed"}
                    failed += len(rows) - len(answered)
                    lost += len(set(replied) - answered)
                    duplicated += (len(numbers) - len(set(numbers))
                                   + len(answered - set(replied)))
                level.stored_lost, level.stored_duplicated = lost, duplicated
                level.stored_failed = failed
    finally:
        engine.dispose()


def run_level(url: str, sessions: int, questions: int, timeout: float,
              deadline_s: float, urgent: bool = True) -> Level:
    import httpx

    level = Level(sessions)
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline_s

    def patient(index: int) -> None:
        session_id = None
        with httpx.Client(base_url=url, timeout=timeout) as client:
            for q in range(questions):
                if time.monotonic() > stop_at:
                    return
                message = QUESTIONS[(index + q) % len(QUESTIONS)]
                started = time.perf_counter()
                try:
                    r = client.post("/api/chat",
                                    json={"message": message, "session_id": session_id})
                except httpx.HTTPError:
                    with lock:
                        level.requests += 1
                        level.lost += 1
                    continue
                ms = (time.perf_counter() - started) * 1000
                try:  # a proxy or the server itself may answer in plain text
                    code = (r.json().get("error", {}).get("code")
                            if r.status_code >= 400 else None)
                except ValueError:
                    code = None
                with lock:
                    level.requests += 1
                    if r.status_code == 200:
                        level.answered += 1
                        level.latencies_ms.append(ms)
                        session_id = r.json()["session_id"]
                        level.turns.setdefault(session_id, []).append(r.json()["turn"])
                    elif r.status_code == 503 and code == "busy":
                        level.busy += 1
                        level.busy_ms.append(ms)
                    elif r.status_code == 429:
                        level.rate_limited += 1
                    elif r.status_code < 500:
                        level.client_errors += 1
                    else:
                        level.server_errors += 1

    done = threading.Event()

    def urgent_patient() -> None:
        """One urgent message every few seconds, each in a new conversation, while the
        ordinary patients are being answered: the time to the urgent reply under load."""
        with httpx.Client(base_url=url, timeout=timeout) as client:
            index = 0
            while not done.wait(3.0) and time.monotonic() < stop_at:
                message = URGENT[index % len(URGENT)]
                index += 1
                started = time.perf_counter()
                try:
                    r = client.post("/api/chat", json={"message": message})
                except httpx.HTTPError:
                    continue
                ms = (time.perf_counter() - started) * 1000
                with lock:
                    level.urgent_sent += 1
                    if r.status_code == 200:
                        level.urgent_ms.append(ms)
                        level.urgent_routed += r.json().get("status") == "urgent"

    started = time.perf_counter()
    probe = threading.Thread(target=urgent_patient, daemon=True) if urgent else None
    if probe is not None:
        probe.start()
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        list(pool.map(patient, range(sessions)))
    done.set()
    if probe is not None:
        probe.join(timeout)
    level.seconds = round(time.perf_counter() - started, 1)
    return level


def run(url: str, levels: list[int], questions: int = 2, timeout: float = 600.0,
        deadline_s: float = 1200.0, pid: int | None = None) -> list[Level]:
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise ConfigError(f"The load test only runs against loopback, not {host!r}.")
    results = []
    for sessions in levels:
        level = run_level(url, sessions, questions, timeout, deadline_s)
        level.server_peak_rss_mb = _peak_rss_mb(pid)
        results.append(level)
    return results


def render(results: list[Level]) -> str:
    head = ("| sessions | requests | answered | busy (503) | 429 | other 4xx | 5xx | lost | "
            "p50 | p95 | busy reply p50 | urgent routed | urgent p50 | urgent p95 | seconds | "
            "server peak RSS | stored: lost / duplicated / failed |")
    lines = [head, "|" + "---|" * 17]
    for level in results:
        s = level.summary()

        def sec(ms: float | None) -> str:
            return "–" if ms is None else f"{ms / 1000:.1f} s"

        lines.append(
            f"| {s['sessions']} | {s['requests']} | {s['answered']} | {s['busy']} | "
            f"{s['rate_limited']} | {s['client_errors']} | {s['server_errors']} | {s['lost']} | "
            f"{sec(s['p50_ms'])} | {sec(s['p95_ms'])} | "
            f"{'–' if s['busy_reply_p50_ms'] is None else str(s['busy_reply_p50_ms']) + ' ms'} | "
            f"{s['urgent_routed']}/{s['urgent_sent']} | {sec(s['urgent_p50_ms'])} | "
            f"{sec(s['urgent_p95_ms'])} | {s['seconds']} | "
            f"{'–' if s['server_peak_rss_mb'] is None else str(s['server_peak_rss_mb']) + ' MB'} | "
            + ("not checked |" if s["stored_lost"] is None else
               f"{s['stored_lost']} / {s['stored_duplicated']} / {s['stored_failed']} |")
        )
    return "\n".join(lines)


def to_json(results: list[Level]) -> str:
    return json.dumps([r.summary() for r in results], indent=2)
