"""Builds the assistant's parts from settings, once, and hands them out.

Nothing is built at import time: adapters (CLI, later the web app) create one
``Services`` and pass it around.
"""

from __future__ import annotations

from functools import cached_property

from langchain_core.embeddings import Embeddings

from assistant.config import Settings
from assistant.embeddings import build_embeddings
from assistant.index import GuideIndex, IngestReport, ingest
from assistant.retrieve import GuideRetriever, HybridRetriever


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

    def langchain_retriever(self, k: int | None = None) -> GuideRetriever:
        return GuideRetriever(hybrid=self.retriever, k=k)

    def ingest(self, progress: bool = False) -> IngestReport:
        report = ingest(self.index, progress=progress)
        self.__dict__.pop("retriever", None)  # the lexical index must see the new chunks
        return report

    def ensure_index(self, progress: bool = False) -> IngestReport | None:
        """Build the index if it is empty; leave a built one alone."""
        if self.index.count() == 0:
            return self.ingest(progress=progress)
        return None
