"""The records a turn ends in, and keeping them.

The fixed outcomes (urgent and crisis replies, declined, closing, not in the guide, a
failed turn), the citations of the guide sentences an answer shows (each ``[n]`` once per
sentence, its quote that sentence) with their verdicts and the glossary terms they
mention, and what a finished turn leaves: a summary in the conversation, the record in
the journal (the database), the conversation saved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from assistant.config import Settings
from assistant.corpus import Chunk
from assistant.glossary import Glossary
from assistant.handoff import build_handoff, summarise
from assistant.localise import answer_texts
from assistant.records import (
    AnswerRecord,
    Citation,
    GlossaryEntry,
    SentenceVerdict,
    ShownSentence,
    Status,
    shown,
)
from assistant.replies import Replies, replies_for
from assistant.sessions import Session, SessionStore, TurnSummary


def _flat(text: str) -> str:
    return " ".join(text.split())


class Recorder:
    def __init__(
        self, settings: Settings, by_id: dict[str, Chunk], glossary: Glossary, model_name: str,
        prompt: dict[str, str], sessions: SessionStore,
        journal: Callable[[AnswerRecord], None] | None = None,
    ) -> None:
        self.settings = settings
        self.by_id = by_id  # the guide's passages by chunk id
        self.glossary = glossary  # the terms the guide defines
        self.model_name = model_name
        self.prompt = prompt  # the answer prompt's name and version
        self.sessions = sessions
        self.journal = journal

    def record(self, session: Session, status: Status, answer: str | list[ShownSentence],
               **extra) -> AnswerRecord:
        """A record of this turn; ``answer``: what it shows, as pieces or one text (a fixed
        reply: one piece)."""
        question = extra.pop("question")
        if isinstance(answer, str):
            answer = [ShownSentence(text=answer)] if answer else []
        return AnswerRecord(
            status=status,
            answer=shown(answer),
            sentences=answer,
            session_id=session.session_id,
            turn=len(session.turns) + 1,
            question=question,
            standalone_question=extra.pop("standalone", None),
            model=self.model_name,
            prompt=self.prompt,
            **extra,
        )

    # -- citations ------------------------------------------------------------------

    def cite(self, citations: list[Citation], chunk_id: str, quote: str) -> int:
        """The marker number of (chunk, quote), adding a citation the first time."""
        for c in citations:
            if c.chunk_id == chunk_id and c.quote == quote:
                return c.n
        section = self.by_id[chunk_id].section
        citations.append(
            Citation(n=len(citations) + 1, chunk_id=chunk_id, section=section, quote=quote)
        )
        return citations[-1].n

    def verdicts(self, citations: list[Citation]) -> list[SentenceVerdict]:
        """Each cited quote checked against its passage: the guide's own words."""
        return [
            SentenceVerdict(
                sentence=c.quote,
                supported=_flat(c.quote) in _flat(self.by_id[c.chunk_id].text),
                chunk_id=c.chunk_id,
                reasons=["the guide's own words"],
            )
            for c in citations
        ]

    def glossary_entries(self, citations: list[Citation]) -> list[GlossaryEntry]:
        """The terms the cited sentences mention, with the guide's definition."""
        return [
            GlossaryEntry(term=e.term, definition=e.definition, chunk_id=e.chunk_id,
                          section=e.section, also=list(e.also))
            for e in self.glossary.terms_in(" ".join(c.quote for c in citations),
                                            [c.quote for c in citations])
        ]

    # -- fixed outcomes -------------------------------------------------------------

    def not_in_guide(self, base: AnswerRecord, session: Session,
                     language: str = "en") -> AnswerRecord:
        """The guide does not cover the question at all: say so, offer the consultation."""
        texts = answer_texts(language, self.settings.prompts_dir)
        base.status, base.coverage = "not_in_guide", "none"
        base.sentences = [ShownSentence(text=texts.render("none")),
                          ShownSentence(text=texts.render("offer"))]
        base.answer = shown(base.sentences)
        base.citations = []
        base.handoff = build_handoff(self.settings, session, texts.render("handoff"))
        return base

    def fixed_reply(self, kinds: Sequence[str], language: str) -> tuple[str, Replies]:
        """The fixed replies (prompts/replies/) of ``kinds`` (urgent, crisis; both when
        triage was split between them), in the patient's language when offered."""
        s = self.settings
        offered = language if language in s.languages else "en"
        replies = replies_for(offered, s.prompts_dir)
        text = "\n\n".join(
            replies.render(kind, s.emergency_number, s.crisis_line) for kind in kinds
        )
        return text, replies

    def urgent(
        self, session: Session, text: str, kinds: Sequence[str], language: str
    ) -> AnswerRecord:
        answer, replies = self.fixed_reply(kinds, language)
        record = self.record(session, "urgent", answer, question=text)
        record.prompt = {"name": f"replies/{replies.language}", "version": replies.version}
        record.language = replies.language
        record.handoff = build_handoff(self.settings, session, replies.follow_up)
        return record

    def declined(self, session: Session, text: str, language: str = "en") -> AnswerRecord:
        texts = answer_texts(language, self.settings.prompts_dir)
        record = self.record(session, "declined", texts.render("declined"), question=text)
        record.prompt = None
        record.handoff = build_handoff(self.settings, session, texts.render("handoff"))
        return record

    def closing(self, session: Session, text: str, language: str = "en") -> AnswerRecord:
        texts = answer_texts(language, self.settings.prompts_dir)
        handoff = build_handoff(self.settings, session, texts.render("handoff"))
        record = self.record(
            session, "handoff",
            [ShownSentence(text=texts.render("closing")), ShownSentence(text=handoff.message)],
            question=text,
        )
        record.prompt = None
        record.handoff = handoff
        return record

    def failed(self, session: Session, text: str, exc: Exception) -> None:
        """Record a turn that could not be answered (status ``failed``, nothing shown as
        an answer), so staff see it; the patient got an error instead."""
        if self.journal is None:
            return
        record = self.record(session, "failed", "", question=text)
        record.prompt = None
        cause = exc.__cause__
        # kinds only: a message may carry the patient's words
        record.error = type(exc).__name__ + (f" ({type(cause).__name__})" if cause else "")
        try:
            self.journal(record)
        except Exception:  # the database may be what failed: the original error wins
            pass

    # -- a finished turn ------------------------------------------------------------

    def remember(self, session: Session, record: AnswerRecord) -> None:
        session.turns.append(
            TurnSummary(
                question=record.question,
                standalone_question=record.standalone_question,
                question_english=record.question_english,
                language=record.language,
                status=record.status,
                sections=list(dict.fromkeys(c.section for c in record.citations)),
            )
        )
        if record.handoff is not None:  # the summary includes this turn
            record.handoff.summary = summarise(session)
        if self.journal is not None:
            self.journal(record)
        self.sessions.save(session)
