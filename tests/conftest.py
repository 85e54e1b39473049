"""Shared fixtures. Unit tests use the ``test`` profile (hash embedder, in-memory
Chroma); tests marked ``real`` use the packaged MiniLM and an on-disk Chroma."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.app import Services  # noqa: E402
from assistant.config import PACKAGE_ROOT, Settings, load_settings  # noqa: E402

CORPUS = PACKAGE_ROOT / "corpus"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No SCARGUIDE_* variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("SCARGUIDE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(PACKAGE_ROOT)


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


def fake_settings(tmp_path: Path, **overrides) -> Settings:
    """Test profile with its own collection, so tests never share state."""
    values = {
        "profile": "test",
        "data_dir": tmp_path / "data",
        "chroma_collection": f"t-{uuid.uuid4().hex[:10]}",
        **overrides,
    }
    return load_settings(**values)


@pytest.fixture(scope="session")
def real_embeddings():
    """The real packaged MiniLM, loaded once per test session."""
    from assistant.embeddings import build_embeddings

    return build_embeddings(load_settings())


@pytest.fixture(scope="session")
def real_services(tmp_path_factory, real_embeddings) -> Services:
    """Real MiniLM + a real on-disk Chroma index of the shipped corpus."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("real-data"))
    services = Services(settings)
    services.__dict__["embeddings"] = real_embeddings
    services.ingest()
    return services


@pytest.fixture(scope="session")
def real_assistant(real_services):
    """The real answer chain (default local model), warmed once per test session."""
    services = Services(real_services.settings.model_copy(update={"session_store": "memory"}))
    services.__dict__.update(embeddings=real_services.embeddings, index=real_services.index)
    assistant = services.assistant
    assistant.warm()
    return assistant
