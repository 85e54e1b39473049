"""Retrieval evaluation: labelled questions -> hit@1, hit@3, MRR.

Cases live in ``eval/retrieval.jsonl`` (one JSON object a line: ``id``,
``question``, ``sections`` (breadcrumbs that answer it), ``kind``). Every
system is measured in the same run on the same cases:

- ``hybrid``: this assistant's retriever with the current settings;
- ``dense only`` / ``lexical only`` / ``hybrid (rrf)``: its parts and the other fusion;
- ``naive``: RecursiveCharacterTextSplitter(500, 50) over the guide files' raw
  text, dense only, same embedding model. A naive chunk counts as relevant
  when it contains a whole sentence of an expected section.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from assistant.app import Services
from assistant.corpus import GUIDE_SUFFIXES, load_corpus, split_sentences
from assistant.errors import ConfigError
from assistant.evals import load_jsonl
from assistant.evals.outcome import Case, Outcome
from assistant.retrieve import HybridRetriever

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "eval" / "retrieval.jsonl"
RANK_DEPTH = 10


class RetrievalCase(BaseModel):
    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    sections: list[str] = Field(min_length=1)
    kind: str = "plain"


def load_cases(path: Path, known_sections: set[str] | None = None) -> list[RetrievalCase]:
    """Read and check cases; a label naming a section the corpus lacks is an error."""
    cases = load_jsonl(path, RetrievalCase)
    for case in cases:
        unknown = set(case.sections) - known_sections if known_sections is not None else set()
        if unknown:
            raise ConfigError(f"{path}: case {case.id}: unknown section(s) {sorted(unknown)}")
    return cases


def first_relevant_rank(relevant: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant item, or None."""
    return next((i + 1 for i, ok in enumerate(relevant) if ok), None)


def ndcg_at_k(matches: Sequence[set[str]], relevant: int, k: int = 5) -> float:
    """nDCG@k with binary gains: a hit gains 1 when it brings an expected section not seen
    higher up; the ideal ranking puts all ``relevant`` sections first."""
    seen: set[str] = set()
    dcg = 0.0
    for i, found in enumerate(matches[:k], start=1):
        new = set(found) - seen
        if new:
            dcg += 1 / math.log2(i + 1)
            seen |= new
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(relevant, k) + 1))
    return dcg / ideal if ideal else 0.0


@dataclass(frozen=True)
class Scores:
    system: str
    hit_at_1: float
    hit_at_3: float
    mrr: float
    n: int
    ndcg_at_5: float = 0.0
    misses_at_1: tuple[str, ...] = ()

    def row(self) -> str:
        cells = [self.system, f"{self.hit_at_1:.3f}", f"{self.hit_at_3:.3f}", f"{self.mrr:.3f}",
                 f"{self.ndcg_at_5:.3f}"]
        return "| " + " | ".join([*cells, str(self.n)]) + " |"


def score(
    system: str, ranks: dict[str, int | None], ndcg: dict[str, float] | None = None
) -> Scores:
    """hit@k: share of cases whose first relevant rank is <= k.
    MRR: mean of 1/rank of the first relevant hit (0 when none is in the top 10).
    nDCG@5: mean of each case's nDCG@5 (see ``ndcg_at_k``)."""
    n = len(ranks)
    if n == 0:
        raise ConfigError("No retrieval cases to score")
    return Scores(
        system=system,
        hit_at_1=sum(1 for r in ranks.values() if r == 1) / n,
        hit_at_3=sum(1 for r in ranks.values() if r is not None and r <= 3) / n,
        mrr=sum(1 / r for r in ranks.values() if r) / n,
        n=n,
        ndcg_at_5=sum(ndcg.values()) / n if ndcg else 0.0,
        misses_at_1=tuple(cid for cid, r in ranks.items() if r != 1),
    )


# A ranker gives, for each rank, the expected sections that hit matches.
Ranker = Callable[[RetrievalCase], list[set[str]]]


def score_ranker(system: str, rank: Ranker, cases: list[RetrievalCase]) -> Scores:
    matches = {c.id: rank(c) for c in cases}
    return score(
        system,
        {cid: first_relevant_rank([bool(m) for m in ms]) for cid, ms in matches.items()},
        {c.id: ndcg_at_k(matches[c.id], len(set(c.sections))) for c in cases},
    )


def _hybrid_ranker(retriever: HybridRetriever) -> Ranker:
    def rank(case: RetrievalCase) -> list[set[str]]:
        hits = retriever.search(case.question, k=RANK_DEPTH).hits
        return [{h.section} & set(case.sections) for h in hits]

    return rank


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[#*•]", " ", text).split()).lower()


def _naive_ranker(services: Services) -> tuple[Ranker, Callable[[], None]]:
    """The naive recipe, built in a throwaway in-memory collection."""
    from langchain_chroma import Chroma
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from assistant.index import build_chroma_client

    settings = services.settings
    raw = [
        p.read_text(encoding="utf-8")
        for p in sorted(settings.corpus_dir.iterdir())
        if p.suffix in GUIDE_SUFFIXES
    ]
    splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)
    texts = [t for doc in raw for t in splitter.split_text(doc)]
    store = Chroma(
        client=build_chroma_client(settings.model_copy(update={"chroma_mode": "memory"})),
        collection_name=f"naive-{uuid.uuid4().hex[:8]}",
        embedding_function=services.embeddings,
        collection_configuration={"hnsw": {"space": "cosine"}},
    )
    store.add_texts(texts)

    sentences: dict[str, list[str]] = {}
    for guide in load_corpus(settings.corpus_dir):
        for section in guide.sections:
            name = section.breadcrumb(guide.meta.title)
            sentences.setdefault(name, []).extend(
                _normalise(s) for p in section.paragraphs for s in split_sentences(p)
            )

    def rank(case: RetrievalCase) -> list[set[str]]:
        docs = store.similarity_search(case.question, k=RANK_DEPTH)
        return [
            {
                name
                for name in case.sections
                if any(s in _normalise(d.page_content) for s in sentences.get(name, []))
            }
            for d in docs
        ]

    return rank, store.delete_collection


def evaluate(services: Services, cases_path: Path = DEFAULT_CASES) -> list[Scores]:
    """Score this assistant's retriever, its parts, and the naive recipe on the same cases."""
    settings = services.settings
    services.ensure_index()
    known = {
        s.breadcrumb(g.meta.title) for g in load_corpus(settings.corpus_dir) for s in g.sections
    }
    cases = load_cases(cases_path, known)
    variants = [
        (f"hybrid ({settings.fusion}, this assistant)", settings),
        ("dense only (MiniLM + Chroma)", settings.model_copy(update={"lexical_weight": 0.0})),
        ("lexical only (BM25)", settings.model_copy(update={"dense_weight": 0.0})),
        (
            "hybrid (rrf)" if settings.fusion != "rrf" else "hybrid (blend)",
            settings.model_copy(
                update={
                    "fusion": "rrf" if settings.fusion != "rrf" else "blend",
                    "lexical_weight": 1.0 if settings.fusion != "rrf" else 0.2,
                }
            ),
        ),
    ]
    results = []
    for name, variant in variants:
        rank = _hybrid_ranker(HybridRetriever(services.index, variant))
        results.append(score_ranker(name, rank, cases))
    naive_rank, cleanup = _naive_ranker(services)
    try:
        results.append(score_ranker("naive (500/50 splitter, dense only)", naive_rank, cases))
    finally:
        cleanup()
    return results


def render(results: list[Scores]) -> str:
    lines = ["| system | hit@1 | hit@3 | MRR | nDCG@5 | cases |", "|---|---|---|---|---|---|"]
    lines += [r.row() for r in results]
    return "\n".join(lines)


def to_json(results: list[Scores]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2)


def suite(h) -> Outcome:
    """``scarguide eval``'s retrieval suite (in process only: a server does not return its
    ranking): ours and the naive recipe's hit@1, hit@3, MRR and nDCG@5."""
    out = Outcome()
    if h.services is None:
        out.details["retrieval"] = "skipped: needs the in-process assistant"
        return out
    rows = evaluate(h.services)
    ours, naive = rows[0], rows[-1]
    for key in ("hit_at_1", "hit_at_3", "mrr", "ndcg_at_5"):
        out.metrics[key] = round(getattr(ours, key), 4)
        out.metrics[f"naive_{key}"] = round(getattr(naive, key), 4)
    out.details["retrieval"] = [r.__dict__ | {"misses_at_1": list(r.misses_at_1)}
                                for r in rows]
    for case_id in ours.misses_at_1:
        out.cases.append(Case("retrieval", case_id, "", False, reasons=["not first"]))
    return out
