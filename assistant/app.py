"""Builds the assistant's parts from settings, once, and hands them out.

Nothing is built at import time: adapters (CLI, web app, eval) create one
``Services`` and pass it around.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from assistant.config import Settings
from assistant.corpus import Chunk, build_chunks
from assistant.embeddings import build_embeddings
from assistant.index import GuideIndex, IngestReport, ingest
from assistant.retrieve import GuideRetriever, HybridRetriever
from assistant.store import Store
from assistant.verify import ClaimChecker, topic_words

if TYPE_CHECKING:
    from assistant.answer import Assistant
    from assistant.sessions import SessionStore
    from assistant.triage import Triage


class Services:
    """Lazily built, process-wide parts: embeddings, index, retriever."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def embeddings(self) -> Embeddings:
        return build_embeddings(self.settings)

    @cached_property
    def index(self) -> GuideIndex:
        return GuideIndex(self.settings, self.embeddings)

    @cached_property
    def retriever(self) -> HybridRetriever:
        return HybridRetriever(self.index, self.settings)

    @cached_property
    def chunks(self) -> list[Chunk]:
        """The corpus as chunks, read once (and again by ``ingest``)."""
        return build_chunks(self.settings.corpus_dir, self.settings.chunk_max_words)

    @cached_property
    def checker(self) -> ClaimChecker:
        """The claim checker, knowing which guide topic each section is about."""
        openings: dict[str, str] = {}
        for chunk in self.chunks:
            openings.setdefault(chunk.section, chunk.text)
        return ClaimChecker(self.embeddings, topics=topic_words(openings))

    @cached_property
    def chat(self) -> BaseChatModel:
        from assistant.llm import build_chat_model

        return build_chat_model(self.settings)

    @cached_property
    def triage(self) -> Triage:
        """Triage: patterns, the model check on its own instance, the screen."""
        from assistant.llm import build_triage_model
        from assistant.triage import build_triage

        return build_triage(self.settings, self.embeddings,
                            lambda: build_triage_model(self.settings))

    @cached_property
    def assistant(self) -> Assistant:
        """The answer chain over the current index; builds the index first if it is empty."""
        from assistant.answer import Assistant
        from assistant.errors import IndexNotReadyError
        from assistant.sessions import FileSessions, MemorySessions

        s = self.settings
        self.ensure_index()
        chunks = self.chunks
        if {c.chunk_id for c in chunks} != set(self.index.stored()):
            raise IndexNotReadyError("The index does not match the corpus: run `scarguide ingest`.")
        open_sessions: dict[str, Callable[[], SessionStore]] = {
            "database": lambda: self.store,
            "file": lambda: FileSessions(s.data_dir / "sessions"),
            "memory": MemorySessions,
        }
        sessions = open_sessions[s.session_store]()
        model_name = {"local": s.llm_model, "openai": s.openai_model}.get(
            s.llm_backend, s.llm_backend
        )
        return Assistant(
            s,
            self.retriever,
            self.chat,
            self.checker,
            sessions,
            chunks,
            model_name,
            journal=self.store.record_turn,
            triage=self.triage,
            translation_chat=self._translation_chat,
        )

    def _translation_chat(self) -> BaseChatModel:
        """Built the first time an answer is translated (most conversations are English)."""
        from assistant.llm import build_translation_model

        if "translation" not in self.__dict__:
            self.__dict__["translation"] = build_translation_model(self.settings)
        return self.__dict__["translation"]

    @cached_property
    def store(self) -> Store:
        """The database (conversations, answer records, feedback, bookings), migrated."""
        store = Store(self.settings.database)
        store.migrate()
        return store

    def langchain_retriever(self, k: int | None = None) -> GuideRetriever:
        return GuideRetriever(hybrid=self.retriever, k=k)

    def ingest(self, progress: bool = False) -> IngestReport:
        self.__dict__.pop("chunks", None)  # the corpus as it is now
        report = ingest(self.index, self.chunks, progress=progress)
        for stale in ("checker", "retriever", "assistant"):  # they must see the new chunks
            self.__dict__.pop(stale, None)
        return report

    def ensure_index(self, progress: bool = False) -> IngestReport | None:
        """Build the index if it is empty; leave a built one alone."""
        if self.index.count() == 0:
            return self.ingest(progress=progress)
        return None
