"""Chunks -> embeddings -> Chroma.

The index is one Chroma collection (cosine space). Each record's metadata keeps
the chunk's fields, its content hash and the embedding model's name, so
:func:`ingest` embeds only what is new or changed and deletes what is gone.
Chroma's own default embedding function is never used: embeddings are always
computed here and passed in.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from assistant.config import Settings
from assistant.corpus import Chunk, build_chunks
from assistant.embeddings import embedding_name
from assistant.errors import ConfigError, IndexNotReadyError

if TYPE_CHECKING:
    from chromadb.api.collection_configuration import CreateCollectionConfiguration

COSINE: CreateCollectionConfiguration = {"hnsw": {"space": "cosine"}}


def build_chroma_client(settings: Settings) -> Any:
    """A Chroma client for ``settings.chroma_mode``, telemetry off."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_mode == "embedded":
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
    if settings.chroma_mode == "memory":
        return chromadb.EphemeralClient(settings=chroma_settings)
    from urllib.parse import urlparse

    url = urlparse(settings.chroma_url)
    if not url.hostname:
        raise ConfigError(f"SCARGUIDE_CHROMA_URL={settings.chroma_url!r} is not a URL")
    return chromadb.HttpClient(
        host=url.hostname,
        port=url.port or (443 if url.scheme == "https" else 8000),
        ssl=url.scheme == "https",
        settings=chroma_settings,
    )


class GuideIndex:
    """The guide's Chroma collection plus a LangChain vector store over it."""

    def __init__(self, settings: Settings, embeddings: Embeddings, client: Any | None = None):
        self.settings = settings
        self.embeddings = embeddings
        self.model = embedding_name(embeddings)
        self.client = client if client is not None else build_chroma_client(settings)
        self.collection = self._open_collection()
        self.vectorstore = self._open_vectorstore()

    def _open_collection(self) -> Any:
        # embedding_function=None: Chroma must never fall back to its own (downloading) model.
        return self.client.get_or_create_collection(
            self.settings.chroma_collection, embedding_function=None, configuration=COSINE
        )

    def _open_vectorstore(self) -> Any:
        """LangChain's view of the same collection (dense search, LangChain integrations)."""
        from langchain_chroma import Chroma

        return Chroma(
            client=self.client,
            collection_name=self.settings.chroma_collection,
            embedding_function=self.embeddings,
            collection_configuration=COSINE,
        )

    def reset(self) -> None:
        """Drop and recreate the collection (another embedding model needs other vectors)."""
        self.client.delete_collection(self.settings.chroma_collection)
        self.collection = self._open_collection()
        self.vectorstore = self._open_vectorstore()

    def count(self) -> int:
        return self.collection.count()

    def stored(self) -> dict[str, dict[str, Any]]:
        """Every stored record's metadata, by chunk id."""
        got = self.collection.get(include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"], strict=True))

    def records(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, indexed text, metadata) for every record, ordered by id."""
        got = self.collection.get(include=["documents", "metadatas"])
        rows = zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        return sorted(rows, key=lambda row: row[0])

    def require_ready(self) -> None:
        if self.count() == 0:
            raise IndexNotReadyError(
                f"The index (collection {self.settings.chroma_collection!r}) is empty: run "
                "`scarguide ingest` first."
            )
        models = {m.get("embedding_model") for m in self.stored().values()}
        if models != {self.model}:
            raise IndexNotReadyError(
                f"The index was built with {sorted(map(str, models))} but the assistant uses "
                f"{self.model!r}: run `scarguide ingest` to rebuild it."
            )


@dataclass(frozen=True)
class IngestReport:
    added: int
    updated: int
    unchanged: int
    deleted: int
    total: int
    seconds: float

    @property
    def embedded(self) -> int:
        return self.added + self.updated

    def summary(self) -> str:
        return (
            f"Embedded {self.embedded} chunk(s) ({self.added} new, {self.updated} changed); "
            f"{self.unchanged} unchanged; {self.deleted} deleted; {self.total} in the index "
            f"({self.seconds:.1f}s)."
        )


def ingest(
    index: GuideIndex, chunks: list[Chunk] | None = None, progress: bool = False
) -> IngestReport:
    """Bring the index in line with the corpus, embedding only new or changed chunks."""
    started = time.perf_counter()
    if chunks is None:
        chunks = build_chunks(index.settings.corpus_dir, index.settings.chunk_max_words)
    stored = index.stored()
    previously = set(stored)
    if any(m.get("embedding_model") != index.model for m in stored.values()):
        index.reset()  # vectors of another model cannot be mixed with (or sized like) ours
        stored = {}

    def current(chunk: Chunk) -> bool:
        meta = stored.get(chunk.chunk_id) or {}
        return (
            bool(meta)
            and meta.get("content_hash") == chunk.content_hash
            and (meta.get("embedding_model") == index.model)
        )

    todo = [c for c in chunks if not current(c)]
    added = sum(1 for c in todo if c.chunk_id not in previously)
    batch = index.settings.embedding_batch_size
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="Embedding chunks", unit="chunk", file=sys.stderr)
    for start in range(0, len(todo), batch):
        part = todo[start : start + batch]
        vectors = index.embeddings.embed_documents([c.embed_text for c in part])
        index.collection.upsert(
            ids=[c.chunk_id for c in part],
            embeddings=vectors,
            documents=[c.embed_text for c in part],
            metadatas=[{**c.metadata(), "embedding_model": index.model} for c in part],
        )
        if bar:
            bar.update(len(part))
    if bar:
        bar.close()

    wanted = {c.chunk_id for c in chunks}
    gone = sorted(previously - wanted)
    if set(stored) & set(gone):
        index.collection.delete(ids=[cid for cid in gone if cid in stored])
    return IngestReport(
        added=added,
        updated=len(todo) - added,
        unchanged=len(chunks) - len(todo),
        deleted=len(gone),
        total=index.count(),
        seconds=time.perf_counter() - started,
    )
