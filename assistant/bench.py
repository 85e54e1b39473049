"""Retrieval benchmark: prints a table and JSON of what it measured.

- model load: building the embedding model;
- ingest: embedding every chunk into a fresh on-disk index (cold);
- query embedding and hybrid retrieval p50/p95 over N warm queries
  (the eval questions, cycled), after a short warm-up;
- peak RSS of this process.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

from assistant.app import Services
from assistant.config import Settings
from assistant.evals.retrieval import DEFAULT_CASES


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def _questions(n: int) -> list[str]:
    lines = [
        json.loads(line)["question"] for line in DEFAULT_CASES.read_text().splitlines() if line
    ]
    return [lines[i % len(lines)] for i in range(n)]


def measure(settings: Settings, queries: int = 240) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory(prefix="scarguide-bench-") as tmp:
        settings = settings.model_copy(update={"data_dir": Path(tmp), "chroma_mode": "embedded"})
        services = Services(settings)
        t0 = time.perf_counter()
        embeddings = services.embeddings
        embeddings.embed_query("warm up")
        t1 = time.perf_counter()
        report = services.ingest()
        t2 = time.perf_counter()
        retriever = services.retriever
        questions = _questions(queries)
        for q in questions[:20]:  # warm-up, not timed
            retriever.search(q)
        embed_ms, search_ms = [], []
        for q in questions:
            s = time.perf_counter()
            embeddings.embed_query(q)
            embed_ms.append((time.perf_counter() - s) * 1000)
        for q in questions:
            s = time.perf_counter()
            retriever.search(q)
            search_ms.append((time.perf_counter() - s) * 1000)

    import torch

    return {
        "embedding_model": settings.embedding_model,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": __import__("os").cpu_count() or 0,
        "python": platform.python_version(),
        "model_load_s": round(t1 - t0, 2),
        "ingest_s": round(t2 - t1, 2),
        "chunks_embedded": report.embedded,
        "warm_queries": len(questions),
        "query_embedding_p50_ms": round(statistics.median(embed_ms), 2),
        "query_embedding_p95_ms": round(_percentile(embed_ms, 95), 2),
        "retrieval_p50_ms": round(statistics.median(search_ms), 2),
        "retrieval_p95_ms": round(_percentile(search_ms, 95), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure_answers(settings: Settings, questions: int = 20) -> dict[str, float | int | str]:
    """Cold start (model load + cached-prefix warm-up), then time to first verified
    sentence and to the full answer over warm questions (single-turn answerable cases)."""
    from assistant.evals.answers import load_cases

    settings = settings.model_copy(update={"session_store": "memory", "database_url": "sqlite://"})
    started = time.perf_counter()
    services = Services(settings)
    assistant = services.assistant
    built = time.perf_counter()
    warm_s = assistant.warm()
    pool = [
        c.conversation[0]
        for c in load_cases()
        if c.expected_status == "answered" and len(c.conversation) == 1
    ]
    first_ms, total_ms, statuses = [], [], []
    for question in [pool[i % len(pool)] for i in range(questions)]:
        t0 = time.perf_counter()
        first = None
        for event in assistant.stream(question):
            if event.kind == "sentence" and first is None:
                first = (time.perf_counter() - t0) * 1000
        total_ms.append((time.perf_counter() - t0) * 1000)
        statuses.append(event.record.status if event.record else "?")
        if first is not None:
            first_ms.append(first)
    return {
        "chat_model": assistant.model_name,
        "llm_threads": settings.llm_threads,
        "assistant_build_s": round(built - started, 2),
        "prefix_warmup_s": round(warm_s, 2),
        "questions": questions,
        "answered": statuses.count("answered"),
        "first_verified_sentence_p50_s": round(statistics.median(first_ms) / 1000, 2)
        if first_ms
        else None,
        "first_verified_sentence_p95_s": round(_percentile(first_ms, 95) / 1000, 2)
        if first_ms
        else None,
        "full_answer_p50_s": round(statistics.median(total_ms) / 1000, 2),
        "full_answer_p95_s": round(_percentile(total_ms, 95) / 1000, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def render(results: dict[str, float | int | str]) -> str:
    width = max(len(k) for k in results)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in results.items())


def run(settings: Settings, queries: int = 240, answers: int = 0, out: Path | None = None) -> dict:
    results: dict = {"retrieval": measure(settings, queries)}
    print("Retrieval benchmark")
    print(render(results["retrieval"]))
    if answers:
        results["answers"] = measure_answers(settings, answers)
        print("\nAnswer benchmark")
        print(render(results["answers"]))
    text = json.dumps(results, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    return results
