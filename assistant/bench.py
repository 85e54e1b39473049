"""Retrieval benchmark: prints a table and JSON of what it measured.

- model load: building the embedding model;
- ingest: embedding every chunk into a fresh on-disk index (cold);
- query embedding and hybrid retrieval p50/p95 over N warm queries
  (the eval questions, cycled), after a short warm-up;
- peak RSS of this process.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.app import Services
from assistant.config import Settings
from assistant.evals import percentile
from assistant.evals.retrieval import DEFAULT_CASES

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel


def _p95(values: list[float]) -> float:
    """The 95th percentile of measured values; like ``statistics.median``, an error for none
    (each caller takes the median of the same values first)."""
    value = percentile(values, 95)
    if value is None:
        raise statistics.StatisticsError("no values")
    return value


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
        "query_embedding_p95_ms": round(_p95(embed_ms), 2),
        "retrieval_p50_ms": round(statistics.median(search_ms), 2),
        "retrieval_p95_ms": round(_p95(search_ms), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def cold_start_s(question: str) -> float:
    """Wall time of a new process answering one question (`scarguide ask`): interpreter
    start, imports, model load, guide prefix (restored when saved), the answer."""
    import subprocess
    import sys

    env = {**os.environ, "SCARGUIDE_SESSION_STORE": "memory", "SCARGUIDE_DATABASE_URL": "sqlite://"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "assistant.cli", "ask", question], env=env,
                   check=True, capture_output=True)
    return round(time.perf_counter() - started, 2)


def _answer_questions(n: int) -> list[str]:
    from assistant.evals.answers import load_cases

    pool = [
        c.conversation[0]
        for c in load_cases()
        if c.expected_status == "answered" and len(c.conversation) == 1
    ]
    return [pool[i % len(pool)] for i in range(n)]


_SENTENCE_END = __import__("re").compile(r"[.!?](\s|$)")


def measure_naive(settings: Settings, chat: BaseChatModel, embeddings: Embeddings,
                  questions: int = 8) -> dict:
    """The naive LangChain recipe on the same model: RecursiveCharacterTextSplitter(500, 50)
    chunks of the raw guide, dense retrieval (k=4) from an in-memory Chroma, the retrieved
    passages put in front of the question in the prompt, the reply streamed unchecked.
    Its "first sentence" is the first sentence-ending mark in the stream."""
    from langchain_chroma import Chroma
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from assistant.corpus import GUIDE_SUFFIXES
    from assistant.index import build_chroma_client

    raw = [p.read_text(encoding="utf-8") for p in sorted(settings.corpus_dir.iterdir())
           if p.suffix in GUIDE_SUFFIXES]
    texts = [t for doc in raw
             for t in RecursiveCharacterTextSplitter(chunk_size=500,
                                                     chunk_overlap=50).split_text(doc)]
    memory = settings.model_copy(update={"chroma_mode": "memory"})
    store = Chroma(client=build_chroma_client(memory), collection_name="naive-bench",
                   embedding_function=embeddings,
                   collection_configuration={"hnsw": {"space": "cosine"}})
    store.add_texts(texts)
    retriever = store.as_retriever(search_kwargs={"k": 4})
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer the patient's question using only the context below.\n\n"
                   "Context:\n{context}"),
        ("human", "{question}"),
    ])
    chain = prompt | chat | StrOutputParser()
    first_ms, total_ms = [], []
    for question in _answer_questions(questions):
        t0 = time.perf_counter()
        context = "\n\n".join(d.page_content for d in retriever.invoke(question))
        text, first = "", None
        for piece in chain.stream({"context": context, "question": question}):
            text += piece
            if first is None and _SENTENCE_END.search(text):
                first = (time.perf_counter() - t0) * 1000
        total_ms.append((time.perf_counter() - t0) * 1000)
        first_ms.append(first if first is not None else total_ms[-1])
    store.delete_collection()
    return {
        "questions": questions,
        "first_sentence_p50_s": round(statistics.median(first_ms) / 1000, 2),
        "first_sentence_p95_s": round(_p95(first_ms) / 1000, 2),
        "full_answer_p50_s": round(statistics.median(total_ms) / 1000, 2),
        "full_answer_p95_s": round(_p95(total_ms) / 1000, 2),
    }


def measure_answers(settings: Settings, questions: int = 20,
                    naive: int = 8) -> dict[str, Any]:
    """Cold start (model load + cached-prefix warm-up), then time to the first shown
    sentence and to the full answer over warm questions (single-turn answerable cases),
    triage included, as a patient waits for them."""
    settings = settings.model_copy(update={"session_store": "memory", "database_url": "sqlite://"})
    started = time.perf_counter()
    services = Services(settings)
    assistant = services.assistant
    built = time.perf_counter()
    warm_s = assistant.warm()
    first_ms, total_ms, statuses, choose_ms = [], [], [], []
    for question in _answer_questions(questions):
        t0 = time.perf_counter()
        first = None
        for event in assistant.stream(question):
            if event.kind == "sentence" and first is None:
                first = (time.perf_counter() - t0) * 1000
        total_ms.append((time.perf_counter() - t0) * 1000)
        statuses.append(event.record.status if event.record else "?")
        if first is not None:
            first_ms.append(first)
        record = event.record
        if record is not None and "choose" in record.timings_ms:
            choose_ms.append(record.timings_ms["choose"])
    ours: dict[str, Any] = {
        "chat_model": assistant.model_name,
        "llm_threads": settings.llm_threads,
        "assistant_build_s": round(built - started, 2),
        "cold_start_to_first_answer_s": cold_start_s(_answer_questions(1)[0]),
        "prefix_warmup_s": round(warm_s, 2),
        "questions": questions,
        "answered": statuses.count("answered"),
        "first_shown_sentence_p50_s": round(statistics.median(first_ms) / 1000, 2)
        if first_ms
        else None,
        "first_shown_sentence_p95_s": round(_p95(first_ms) / 1000, 2)
        if first_ms
        else None,
        "full_answer_p50_s": round(statistics.median(total_ms) / 1000, 2),
        "full_answer_p95_s": round(_p95(total_ms) / 1000, 2),
        "answer_call_p50_s": round(statistics.median(choose_ms) / 1000, 2)
        if choose_ms
        else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if naive:
        # in a process of its own, so each side has its own peak memory
        recipe = naive_in_subprocess(naive)
        ours["naive_recipe"] = recipe
        if ours["first_shown_sentence_p50_s"]:
            ours["naive_over_ours_first_sentence_p50"] = round(
                recipe["first_sentence_p50_s"] / ours["first_shown_sentence_p50_s"], 2)
        ours["naive_over_ours_full_answer_p50"] = round(
            recipe["full_answer_p50_s"] / ours["full_answer_p50_s"], 2)
    return ours


def naive_in_subprocess(questions: int) -> dict:
    """The naive recipe measured by ``python -m assistant.bench naive N`` (same settings
    from the environment, same packaged model), with that process's peak RSS."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "assistant.bench", "naive", str(questions)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _naive_main(questions: int) -> None:
    from langchain_core.messages import HumanMessage

    from assistant.config import load_settings
    from assistant.embeddings import build_embeddings
    from assistant.llm import build_chat_model

    settings = load_settings()
    started = time.perf_counter()
    chat = build_chat_model(settings)
    embeddings = build_embeddings(settings)
    chat.invoke([HumanMessage("hello")], max_tokens=1)  # load the model before timing
    embeddings.embed_query("hello")
    setup_s = round(time.perf_counter() - started, 2)
    result = measure_naive(settings, chat, embeddings, questions)
    result["setup_s"] = setup_s
    # VmHWM, not ru_maxrss: after fork and exec, ru_maxrss still counts the parent's peak
    result["peak_rss_mb"] = next(
        round(int(line.split()[1]) / 1024, 1)
        for line in open("/proc/self/status").read().splitlines()
        if line.startswith("VmHWM:")
    )
    print(json.dumps(result))


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "naive":
        _naive_main(int(sys.argv[2]))


def render(results: dict[str, float | int | str]) -> str:
    width = max(len(k) for k in results)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in results.items())


def run(settings: Settings, queries: int = 240, answers: int = 0, out: Path | None = None,
        naive: int = 8) -> dict:
    results: dict = {"retrieval": measure(settings, queries)}
    print("Retrieval benchmark")
    print(render(results["retrieval"]))
    if answers:
        results["answers"] = measure_answers(settings, answers, naive)
        print("\nAnswer benchmark")
        print(render(results["answers"]))
    text = json.dumps(results, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    return results
