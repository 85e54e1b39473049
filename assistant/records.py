"""The answer record: what every stage produces and every adapter serialises as-is."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# "failed": stored only, never sent: the answer broke off (the patient got an error)
Status = Literal["answered", "not_in_guide", "urgent", "declined", "handoff", "failed"]


class Citation(BaseModel):
    n: int = Field(description="The [n] marker in the answer.")
    chunk_id: str
    section: str
    quote: str = Field(description="The exact supporting text from the guide.")


class Handoff(BaseModel):
    message: str
    summary: str
    booking_url: str


class SentenceVerdict(BaseModel):
    sentence: str
    supported: bool
    chunk_id: str | None = None
    similarity: float | None = None
    reasons: list[str] = Field(default_factory=list)


class GlossaryEntry(BaseModel):
    """A term the answer shows, with the guide sentence that defines it."""

    term: str
    definition: str = Field(description="The guide's own sentence that defines the term.")
    chunk_id: str
    section: str
    also: list[str] = Field(default_factory=list, description="Other names of the term.")


class Translation(BaseModel):
    """A cited guide sentence in the patient's language: an automatic translation, shown
    beside the guide's English sentence only when it passed its check."""

    n: int = Field(description="The [n] marker of the guide sentence it translates.")
    language: str
    text: str = Field(description="The automatic translation ('' when the model gave none).")
    back: str = Field("", description="The translation put back into English, for the check.")
    similarity: float | None = Field(
        None, description="Cosine similarity of the English back-translation and the guide's "
        "sentence (MiniLM).")
    passed: bool = Field(description="Shown to the patient only when true.")
    problems: list[str] = Field(default_factory=list, description="Why the check failed.")
    shown: str = Field("", description="What the patient reads beside the sentence: the "
                       "translation when it passed, else a note that only the English is shown.")


class AnswerRecord(BaseModel):
    """One exchange: what the patient sees, and what staff and the eval harness check."""

    status: Status
    answer: str
    citations: list[Citation] = Field(default_factory=list)
    handoff: Handoff | None = None
    glossary: list[GlossaryEntry] = Field(
        default_factory=list, description="The guide's definitions of terms the answer "
        "shows (none for a term whose defining sentence the answer already shows).")
    session_id: str
    turn: int
    question: str
    standalone_question: str | None = None
    # a question in another language, as the model put it into English for the search and
    # the choice (never shown to the patient as a fact; staff see it)
    question_english: str | None = None
    language: str = Field(
        "en", description="The language of the answer's own texts (refusals, openings, the "
        "handoff) and of its translations; the guide's sentences stay English.")
    translations: list[Translation] = Field(
        default_factory=list, description="Each cited sentence's automatic translation into "
        "the patient's language, with its check (only those that passed are shown).")
    translation_label: str | None = Field(
        None, description="The label over the translations, in the patient's language.")
    retrieved: list[dict[str, Any]] = Field(default_factory=list)
    top_similarity: float | None = None
    verdicts: list[SentenceVerdict] = Field(default_factory=list)
    draft: str | None = Field(None, description="Unused since answers are chosen, not "
                              "written (kept so older records still read).")
    extractive_fallback: bool = False
    coverage: Literal["full", "partial", "none"] | None = Field(
        None, description="How far the guide answers the question: full; partial (the topic "
        "is covered, what is asked about it is not: status not_in_guide, the guide's text on "
        "the topic follows); none (status not_in_guide, nothing shown from the guide).",
    )
    choice: dict[str, Any] | None = Field(
        None, description="The answer call: candidates, the passages chosen (numbers) and "
        "whether the model or the retriever's ranking (prior) chose them.",
    )
    gaps: list[str] = Field(
        default_factory=list, description="Words the question asks about that the guide lacks."
    )
    model: str | None = None
    prompt: dict[str, str] | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    notice: str | None = Field(
        None, description="A fixed urgent or crisis reply shown before the answer, when "
        "triage leaned to a risk without being sure (the answer follows it).",
    )
    triage: dict[str, Any] | None = Field(
        None, description="How triage read the message: route, layer, language, check, scores."
    )
    error: str | None = Field(
        None, description="Status failed: the kind of fault that broke the answer off."
    )
