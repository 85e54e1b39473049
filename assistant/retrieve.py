"""Question -> ranked hits from the guide.

Hybrid retrieval: dense (MiniLM embeddings in Chroma, cosine) and lexical (BM25
over words and character trigrams, so "icepick scarz" still meets "Ice pick
scars"), fused by a weighted blend of scores (measured best on
eval/retrieval.jsonl; reciprocal rank fusion is a setting). The top dense similarity is
the relevance signal later stages use to decide that the guide does not cover
a question. ``GuideRetriever`` exposes the same search as a LangChain retriever.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import bm25s
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.config import Settings
from assistant.index import GuideIndex
from assistant.words import STOP, stem, trigrams

_WORD = re.compile(r"[a-z0-9]+")


def word_tokens(text: str) -> list[str]:
    """Lower-cased, lightly stemmed content words."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOP]


def lexical_tokens(text: str) -> list[str]:
    """Each word, then its character trigrams, for typo-tolerant matching: indexed text
    and a query alike, so "scarz" or "icepick" still shares trigrams with the guide's
    "scars" and "ice pick"."""
    tokens: list[str] = []
    for word in word_tokens(text):
        tokens.append(word)
        tokens.extend(f"#{t}" for t in trigrams(word))
    return tokens


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with every score that ranked it."""

    chunk_id: str
    section: str
    doc_title: str
    text: str
    fused_score: float
    dense_score: float | None = None
    dense_rank: int | None = None
    lexical_score: float | None = None
    lexical_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RetrievalResult:
    """Ranked hits plus the signal for "the guide does not cover this"."""

    query: str
    hits: list[Hit]
    top_similarity: float
    covered: bool
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "covered": self.covered,
            "top_similarity": round(self.top_similarity, 4),
            "hits": [h.to_dict() for h in self.hits],
            "timings_ms": self.timings_ms,
        }


class HybridRetriever:
    """Dense + BM25 retrieval over the guide's index, fused by weighted RRF."""

    def __init__(self, index: GuideIndex, settings: Settings):
        index.require_ready()
        self.index = index
        self.settings = settings
        self._ids: list[str] = []
        self._meta: dict[str, dict[str, Any]] = {}
        corpus_tokens = []
        for chunk_id, document, meta in index.records():
            self._ids.append(chunk_id)
            self._meta[chunk_id] = meta
            corpus_tokens.append(lexical_tokens(document))
        self._bm25 = bm25s.BM25()
        self._bm25.index(corpus_tokens, show_progress=False)

    def _dense(self, query: str, n: int) -> list[tuple[str, float]]:
        vector = self.index.embeddings.embed_query(query)
        found = self.index.vectorstore.similarity_search_by_vector_with_relevance_scores(
            vector, k=min(n, len(self._ids))
        )
        return [
            (doc.id, 1.0 - distance) for doc, distance in found
        ]  # cosine distance -> similarity

    def _lexical(self, query: str, n: int) -> list[tuple[str, float]]:
        tokens = lexical_tokens(query)
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:n]
        return [(self._ids[i], float(scores[i])) for i in order if scores[i] > 0]

    def search(self, query: str, k: int | None = None) -> RetrievalResult:
        s = self.settings
        k = k or s.k
        n = min(s.candidates, len(self._ids))
        t0 = time.perf_counter()
        dense = self._dense(query, n)
        t1 = time.perf_counter()
        lexical = self._lexical(query, n)
        t2 = time.perf_counter()

        fused = self._fuse(dense, lexical)
        ranks: dict[str, dict[str, tuple[int, float]]] = {}
        for name, ranking in (("dense", dense), ("lexical", lexical)):
            for rank, (cid, score) in enumerate(ranking, start=1):
                ranks.setdefault(cid, {})[name] = (rank, score)
        hits = []
        for cid in sorted(fused, key=lambda c: (-fused[c], c))[:k]:
            meta = self._meta[cid]
            d_rank, d_score = ranks[cid].get("dense", (None, None))
            l_rank, l_score = ranks[cid].get("lexical", (None, None))
            hits.append(
                Hit(
                    chunk_id=cid,
                    section=str(meta["section"]),
                    doc_title=str(meta["doc_title"]),
                    text=str(meta["text"]),
                    fused_score=round(fused[cid], 6),
                    dense_score=None if d_score is None else round(d_score, 4),
                    dense_rank=d_rank,
                    lexical_score=None if l_score is None else round(l_score, 4),
                    lexical_rank=l_rank,
                )
            )
        top = dense[0][1] if dense else 0.0
        t3 = time.perf_counter()
        return RetrievalResult(
            query=query,
            hits=hits,
            top_similarity=top,
            covered=top >= s.coverage_threshold,
            timings_ms={
                "dense": round((t1 - t0) * 1000, 2),
                "lexical": round((t2 - t1) * 1000, 2),
                "total": round((t3 - t0) * 1000, 2),
            },
        )

    def _fuse(
        self, dense: list[tuple[str, float]], lexical: list[tuple[str, float]]
    ) -> dict[str, float]:
        """``blend``: w_d * cosine + w_l * BM25 / max BM25 (a convex combination of scores);
        ``rrf``: sum of w / (rrf_k + rank) over both rankings."""
        s = self.settings
        fused: dict[str, float] = {}
        if s.fusion == "rrf":
            for ranking, weight in ((dense, s.dense_weight), (lexical, s.lexical_weight)):
                for rank, (cid, _) in enumerate(ranking, start=1):
                    fused[cid] = fused.get(cid, 0.0) + weight / (s.rrf_k + rank)
            return fused
        top_lexical = lexical[0][1] if lexical else 0.0
        for cid, score in dense:
            fused[cid] = s.dense_weight * score
        for cid, score in lexical:
            fused[cid] = fused.get(cid, 0.0) + s.lexical_weight * score / top_lexical
        return fused


class GuideRetriever(BaseRetriever):
    """The hybrid search as a LangChain retriever (Documents carry every score)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    hybrid: HybridRetriever
    k: int | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        result = self.hybrid.search(query, self.k)
        return [
            Document(
                page_content=hit.text,
                id=hit.chunk_id,
                metadata={**hit.to_dict(), "covered": result.covered},
            )
            for hit in result.hits
        ]
