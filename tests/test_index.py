from pathlib import Path

import pytest

from assistant.app import Services
from assistant.errors import IndexNotReadyError
from tests.conftest import fake_settings


def edit_subcision(corpus: Path) -> None:
    guide = corpus / "acne-scars-guide.md"
    text = guide.read_text(encoding="utf-8")
    guide.write_text(
        text.replace("Subcision is used to treat", "Subcision is often used to treat"),
        encoding="utf-8",
    )


@pytest.fixture
def no_chroma_default_embedder(monkeypatch):
    """Chroma's own embedding function downloads a model: it must never run."""
    from chromadb.utils import embedding_functions

    def refuse(*args, **kwargs):
        raise AssertionError("Chroma's default embedding function was used")

    monkeypatch.setattr(embedding_functions.DefaultEmbeddingFunction, "__call__", refuse)


def test_ingest_is_idempotent_and_incremental(tmp_path, corpus_copy, no_chroma_default_embedder):
    services = Services(fake_settings(tmp_path, corpus_dir=corpus_copy))
    first = services.ingest()
    assert first.added == first.total == 22 and first.updated == 0
    again = services.ingest()
    assert again.embedded == 0 and again.unchanged == 22 and again.deleted == 0

    edit_subcision(corpus_copy)
    edited = services.ingest()
    assert (edited.added, edited.updated, edited.deleted) == (0, 1, 0)
    stored = services.index.stored()
    assert "often used" in stored["acne-scars-guide:how-to-treat-acne-scars/subcision:0"]["text"]


def test_removed_sections_are_deleted(tmp_path, corpus_copy):
    services = Services(fake_settings(tmp_path, corpus_dir=corpus_copy))
    services.ingest()
    guide = corpus_copy / "acne-scars-guide.md"
    text = guide.read_text(encoding="utf-8")
    start = text.index("## Bottom line")
    guide.write_text(text[:start], encoding="utf-8")
    report = services.ingest()
    assert report.deleted == 1 and report.embedded == 0 and report.total == 21


def test_changing_the_embedding_model_re_embeds_everything(tmp_path):
    settings = fake_settings(tmp_path, chroma_mode="embedded")
    Services(settings).ingest()
    other = Services(settings)
    other.__dict__["embeddings"] = type(other.embeddings)(dim=128)
    other.embeddings.model_name = "hash-other"
    with pytest.raises(IndexNotReadyError, match="rebuild"):
        other.index.require_ready()
    assert other.ingest().updated == 22


def test_an_empty_index_is_reported_not_searched(tmp_path):
    services = Services(fake_settings(tmp_path))
    with pytest.raises(IndexNotReadyError, match="scarguide ingest"):
        _ = services.retriever
