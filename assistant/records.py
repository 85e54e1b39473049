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


class ShownSentence(BaseModel):
    """One piece of what the answer shows, in order: a guide sentence, verbatim, with its
    ``[n]`` markers, or one of the answer's own reviewed texts (a refusal, an opening, the
    consultation offer) with none."""

    text: str = Field(description="The sentence as shown, without its markers.")
    citations: list[int] = Field(
        default_factory=list, description="Its [n] markers (the citations' n); empty for "
        "the answer's own texts.")
    source: str | None = Field(
        None, description="The guide sentence it is: '<chunk id>#<i>', the i-th sentence "
        "of that chunk (0-based); None for the answer's own texts.")

    @property
    def rendered(self) -> str:
        """As the answer string shows it: the text, then its markers."""
        return " ".join([self.text, *(f"[{n}]" for n in self.citations)])


def shown(items: list[ShownSentence]) -> str:
    """The answer string of ``items``: each rendered, one space between them."""
    return " ".join(item.rendered for item in items)


class Handoff(BaseModel):
    message: str
    summary: str
    booking_url: str


class SentenceVerdict(BaseModel):
    """Whether a sentence is supported by a passage of the guide, and why not. The answer
    chain records one per cited quote; the claim checker (``assistant.verify``) gives one
    for any sentence and passage."""

    sentence: str
    supported: bool
    chunk_id: str | None = None
    similarity: float | None = Field(
        None, description="Cosine similarity (MiniLM) to the passage sentence it rests on.")
    novelty: float | None = Field(
        None, description="The share of the sentence's content words new to the passage.")
    quote: str | None = Field(None, description="The passage sentence it rests on.")
    reasons: list[str] = Field(default_factory=list)


class RetrievedPassage(BaseModel):
    """A passage the search found for the question, with the scores that ranked it (the
    record keeps its id, not its text: the text is the guide's)."""

    chunk_id: str
    section: str = ""
    doc_title: str = ""
    fused_score: float | None = None
    dense_score: float | None = None
    dense_rank: int | None = None
    lexical_score: float | None = None
    lexical_rank: int | None = None


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
    answer: str = Field(description="What the patient reads, as one string: ``sentences`` "
                        "rendered, each guide sentence followed by its [n].")
    sentences: list[ShownSentence] = Field(
        default_factory=list, description="What the answer shows, piece by piece.")
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
    retrieved: list[RetrievedPassage] = Field(
        default_factory=list, description="The search's candidates, best first.")
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
