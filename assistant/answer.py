"""The answer chain, top to bottom:

    (the front door, ``assistant.door``: check input → triage → route: urgent, crisis,
    declined, closing, question) → retrieve candidates → scope gate → the model chooses
    passages → coverage rules → compose from the guide

What a patient reads as a fact is a sentence of the guide, verbatim, each with its own
``[n]`` citation whose quote is that sentence. The model never writes shown text: one call
over a cached prefix (instructions, the whole guide as numbered passages, worked
examples) chooses which of the retriever's candidates answer the question, under a JSON
schema that allows only those candidates (``assistant.choose``). Everything around the
guide's sentences comes from the fixed templates of ``prompts/answer_text.yaml``. The
few remaining rules (``assistant.rules``) are named and switchable. Every reason to refuse
is settled before the first sentence is shown, so a streaming UI never retracts text.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from assistant.choose import Chooser
from assistant.config import Settings
from assistant.corpus import Chunk, guide_units
from assistant.door import Clock, Door, Turn
from assistant.errors import ModelError, ScarguideError
from assistant.glossary import Glossary
from assistant.handoff import build_handoff
from assistant.interpret import Interpreter
from assistant.llm import LlamaCppChat
from assistant.localise import answer_texts
from assistant.locks import ConversationLocks, ProcessLocks
from assistant.models import model_identity
from assistant.prompts import load_texts
from assistant.recorder import Recorder
from assistant.records import (
    AnswerRecord,
    Citation,
    RetrievedPassage,
    ShownSentence,
    Translation,
    shown,
)
from assistant.retrieve import Hit, HybridRetriever, RetrievalResult
from assistant.rules import Rules
from assistant.sessions import Session, SessionStore
from assistant.triage import Triage, build_triage
from assistant.verify import ClaimChecker

TEMPLATES = ("partial", "none", "offer", "closing", "declined", "handoff")


@dataclass(frozen=True)
class Event:
    """What ``Assistant.stream`` yields: verified sentences, then the record."""

    # "notice" (a fixed urgent or crisis reply first), "sentence", "translation" (a cited
    # sentence's checked translation, after the sentences), "record"; the front desk adds
    # "queued" (the place in line, while waiting for the model)
    kind: Literal["notice", "sentence", "translation", "record", "queued"]
    text: str = ""
    record: AnswerRecord | None = None
    translation: Translation | None = None


@dataclass(frozen=True)
class Found:
    """What the retriever found for a question: the candidates the model chooses from."""

    earlier: list[str]  # the patient's earlier questions (in English), the last ones
    lead: RetrievalResult  # the reading that leads (alone, or joined to the last question)
    hits: list[Hit]  # the candidates, the leading reading's first
    standalone: str | None  # a follow-up, read with the previous question
    covered: bool  # the scope gate: does the guide cover the question at all?


def _prior(lead: RetrievalResult, hits: list[Hit]) -> list[float]:
    """Each candidate's fused score in the leading reading (a follow-up's candidates
    from the other reading get its lowest), so one ranking is the prior."""
    scores = {h.chunk_id: h.fused_score for h in lead.hits}
    floor = min(scores.values(), default=0.0)
    return [scores.get(h.chunk_id, floor) for h in hits]


def _prefix_cache_path(settings: Settings, chat: LlamaCppChat, prefix: str,
                       model_name: str) -> Path | None:
    """Where the local model's processed prefix is kept: one file per model (its
    ``model_identity``), context size and prefix text."""
    if not settings.prefix_cache:
        return None
    key = hashlib.sha256(
        f"{model_identity(chat.model_path)}\n{chat.n_ctx}\n{prefix}".encode()).hexdigest()[:16]
    return settings.data_dir / "cache" / f"prefix-{model_name}-{key}.npz"


def _call(fn, *args, **kwargs):
    """Call the chat model; its failures become a ModelError (a clear, patient-safe error)."""
    try:
        return fn(*args, **kwargs)
    except ScarguideError:
        raise
    except Exception as exc:  # noqa: BLE001 - any backend failure
        raise ModelError(f"The chat model failed: {type(exc).__name__}: {exc}") from exc


def _retrieve(
    s: Settings, search: Callable[[str], RetrievalResult], rules: Rules, session: Session,
    text: str,
) -> Found:
    """The candidates for ``text``. A follow-up is read with the patient's previous
    message; both readings give candidates, the one that matches the guide better leads."""
    earlier = [t.question_english or t.question for t in session.turns
               if t.status in ("answered", "not_in_guide")]
    earlier = earlier[-s.history_turns :] if s.history_turns else []
    alone = search(text)
    joined = search(f"{earlier[-1]} {text}") if earlier else None
    follow = (
        joined is not None
        and alone.top_similarity < s.followup_similarity
        and rules.refers_back(text)
    )
    lead, other = (joined, alone) if follow and joined else (alone, joined)
    hits = list({h.chunk_id: h for h in [
        *lead.hits[: s.answer_candidates],
        *(other.hits[: s.answer_candidates] if other else []),
    ]}.values())[: s.answer_candidates + (1 if other else 0)]
    return Found(
        earlier, lead, hits, f"{earlier[-1]} — {text}" if follow else None,
        alone.covered or (follow and joined is not None and joined.covered),
    )


class Assistant:
    """The answer chain every adapter (CLI, REST, UI, eval) reaches through the front
    door (``assistant.door``): ``answer(turn)``; ``ask`` and ``stream`` take a message
    through a plain ``Door``."""

    def __init__(
        self,
        settings: Settings,
        retriever: HybridRetriever,
        chat: BaseChatModel,
        checker: ClaimChecker,
        sessions: SessionStore,
        chunks: list[Chunk],
        model_name: str,
        journal: Callable[[AnswerRecord], None] | None = None,
        triage: Triage | None = None,
        translation_chat: Callable[[], BaseChatModel] | None = None,
    ) -> None:
        self.settings = settings
        # urgent and crisis messages, however written: patterns, the model, the screen
        self.triage = triage or build_triage(settings, None, None)
        # every finished record goes here (the database: staff review, eval replay)
        self.journal = journal
        self.retriever = retriever
        # a follow-up searches its previous message again: search each text once
        self.search = lru_cache(maxsize=256)(retriever.search)
        self.chat = chat
        self.checker = checker
        self.sessions = sessions
        self.model_name = model_name
        self.prefix_source = "cold"
        self._warm_lock = threading.Lock()
        # one turn of a conversation at a time: across workers when the store can do that
        self.locks: ConversationLocks = getattr(sessions, "locks", None) or ProcessLocks()
        self.chunks = chunks
        self.by_id = {c.chunk_id: c for c in chunks}
        self.number_of = {c.chunk_id: i for i, c in enumerate(chunks, start=1)}
        # the answer call: the model chooses guide passages, it never writes what is shown
        self.chooser = Chooser(chunks, settings.prompts_dir, settings.answer_second_probability,
                               settings.openai_response_format, settings.answer_prior_weight)
        self.glossary = Glossary.from_chunks(chunks)  # the terms the guide defines
        # a question in another language is searched and chosen for in English, and its
        # answer's guide sentences get a checked translation beside them
        self.interpreter = Interpreter(settings, chat, getattr(checker, "embeddings", None),
                                       model_name, self.chooser.prefix, self.ready,
                                       translation_chat)
        self.texts = load_texts("answer_text", settings.prompts_dir, TEMPLATES)
        self.rules = Rules(settings, getattr(checker, "embeddings", None))
        self._sections = list(dict.fromkeys(c.section for c in chunks))
        self.system_prompt = self.chooser.system_prompt  # its rules: the attack suite's leak check
        self.system_text = self.chooser.system_text
        self.answer_prompt = self.chooser.prompt
        # the records a turn ends in: fixed outcomes, citations, the journal
        self.recorder = Recorder(settings, self.by_id, self.glossary, model_name,
                                 self.answer_prompt.ref, sessions, journal)

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:  # the parts built from them read them too
        self._settings = value
        for part in ("recorder", "interpreter"):
            if part in self.__dict__:
                self.__dict__[part].settings = value

    # -- public API -----------------------------------------------------------------

    def warm(self) -> float:
        """Process the shared system prefix now, so the first patient does not wait for it.

        A local model restores the prefix saved by an earlier process when it matches
        (same model file, same system prompt), and saves it otherwise."""
        started = time.perf_counter()
        self.triage.warm()  # the triage model's own prefix (its instructions and examples)
        chat = self.chat
        if not isinstance(chat, LlamaCppChat):  # a server or a fake: nothing to warm here
            self.prefix_source = "not applicable"
            return 0.0
        cache = _prefix_cache_path(self.settings, chat, self.chooser.prefix_text, self.model_name)
        if cache is not None and cache.exists() and chat.load_prefix(cache):
            self.prefix_source = "restored"
            return time.perf_counter() - started
        chat.invoke(
            [*self.chooser.prefix(), HumanMessage(self.chooser.render([], "hello", [1]))],
            max_tokens=1,
        )
        if cache is not None:
            chat.save_prefix(cache)
        self.prefix_source = "computed"
        return time.perf_counter() - started

    def ask(self, message: str, session_id: str | None = None) -> AnswerRecord:
        """One message through a plain front door (no desk: no line, no limits)."""
        return Door(self).ask(message, session_id)

    def stream(self, message: str, session_id: str | None = None) -> Iterator[Event]:
        """Verified sentences as they pass, then the record (through a plain ``Door``)."""
        return Door(self).stream(message, session_id)

    def hold(self, session_id: str | None) -> AbstractContextManager[None]:
        """The conversation's turn: one at a time, across workers when the store can."""
        if session_id is None:
            return nullcontext()  # a new conversation: nobody else can hold it
        return self.locks.hold(session_id, self.settings.queue_timeout_s)

    def answer(self, turn: Turn) -> Iterator[Event]:
        """The events of one turn the front door has taken (under its conversation's
        lock): a notice first when triage is unsure, the answer, then the record."""
        session, text, triage, clock = turn.session, turn.text, turn.triage, turn.clock
        where, language, r = turn.route, turn.language, self.recorder
        notice = None
        if triage.routed and not triage.firm:  # unsure: the fixed reply first, then the answer
            notice = r.fixed_reply(triage.replies, triage.language)[0]
            yield Event("notice", text=notice)
        if where in ("urgent", "crisis"):
            kinds = triage.replies if triage.routed and triage.firm else (where,)
            record = r.urgent(session, text, kinds, triage.language)
        elif where == "declined":
            record = r.declined(session, text, language)
        elif where == "closing":
            record = r.closing(session, text, language)
        else:
            record = None
            try:
                for event in self._answer(session, text, clock, language):
                    if event.record is None:
                        yield event
                    record = event.record or record
            except Exception as exc:  # the model or a store failed mid-answer: staff see it
                r.failed(session, text, exc)
                raise
        assert record is not None
        record.triage = triage.to_dict()
        if record.status != "urgent":  # a fixed reply is in the language it was found in
            record.language = language
        record.notice = notice
        clock.since_start("total")
        record.timings_ms = {**clock.marks, **record.timings_ms}
        r.remember(session, record)
        yield Event("record", record=record)

    def end(self, session_id: str) -> AnswerRecord:
        """The explicit end of a conversation: a handoff with the summary (``Door.end``)."""
        return Door(self).end(session_id)

    # -- stages ---------------------------------------------------------------------

    def _answer(
        self, session: Session, message: str, clock: Clock, shown_in: str = "en"
    ) -> Iterator[Event]:
        """Retrieve candidates, settle coverage, let the model choose, show guide text."""
        s, r = self.settings, self.recorder
        texts = answer_texts(shown_in, s.prompts_dir)
        english = self.interpreter.english(message, shown_in)
        clock.lap("translate")
        text = english or message  # what the search, the choice and the rules read
        found = _retrieve(s, self.search, self.rules, session, text)
        clock.lap("retrieve")
        hits = found.hits
        base = r.record(session, "answered", "", question=message, standalone=found.standalone)
        base.question_english = english
        base.retrieved = [RetrievedPassage.model_validate(h.to_dict()) for h in hits]
        base.top_similarity = round(found.lead.top_similarity, 4)
        if not found.covered:  # scope gate: no model call for what the guide does not cover
            yield Event("record", record=r.not_in_guide(base, session, shown_in))
            return

        candidates = [self.number_of[h.chunk_id] for h in hits]
        self.ready()
        choice = _call(
            self.chooser.choose, self.chat, found.earlier[-2:], text, candidates, candidates[:1],
            _prior(found.lead, hits),
        )
        clock.lap("choose")
        if (
            choice.source == "model"
            and choice.p_none is not None
            and self.rules.on("model_says_none")
            and choice.p_none >= s.answer_none_probability
        ):
            choice.source, choice.problem = "model-empty", "the model leans to none"
        if choice.source == "model-empty":
            base.choice = choice.to_dict()
            yield Event("record", record=r.not_in_guide(base, session, shown_in))
            return
        base.choice = choice.to_dict()
        chosen = [self.chunks[n - 1] for n in choice.numbers]
        # the passages' headings and text, as one string to look words up in
        context = " ".join(f"{c.section} {c.text}" for c in chosen)
        gaps = self.rules.missing_aspects(text, context)
        if not gaps:
            gaps = [f"“{w}”" for w in self.rules.beyond_topic(
                text, chosen, self._sections, translated=english is not None)]
        base.gaps = gaps
        pieces: list[ShownSentence] = []
        citations: list[Citation] = []
        if gaps:  # the topic is covered, what is asked about it is not
            topics = " and ".join(dict.fromkeys(c.section.split(" › ")[-1] for c in chosen))
            pieces.append(ShownSentence(
                text=texts.render("partial", missing=" or ".join(gaps), topic=topics)))
            yield Event("sentence", text=pieces[-1].rendered)
        for chunk in chosen:
            for i, unit in enumerate(guide_units(chunk.text)):
                if sum(bool(x.citations) for x in pieces) >= s.max_answer_sentences:
                    break
                n = r.cite(citations, chunk.chunk_id, unit)
                pieces.append(ShownSentence(text=unit, citations=[n],
                                            source=f"{chunk.chunk_id}#{i}"))
                if len(citations) == 1 and n == 1:
                    clock.since_start("first_sentence")
                yield Event("sentence", text=pieces[-1].rendered)
        base.verdicts = r.verdicts(citations)
        clock.lap("compose")
        if gaps:
            pieces.append(ShownSentence(text=texts.render("offer")))
            base.status, base.coverage = "not_in_guide", "partial"
            base.handoff = build_handoff(self.settings, session, texts.render("handoff"))
        else:
            base.coverage = "full"
        if shown_in != "en" and s.translate_answers and citations:
            base.translation_label = texts.render("label")
            for done in self.interpreter.sentences(citations, shown_in, texts):
                base.translations.append(done)  # after the sentences: the English first
                yield Event("translation", translation=done)
            clock.lap("translate_answer")
        base.sentences, base.answer = pieces, shown(pieces)
        base.citations = citations
        base.glossary = r.glossary_entries(citations)
        yield Event("record", record=base)

    def translate_guide(self, language: str, progress=None) -> list[Translation]:
        """Every sentence the guide can show, translated into ``language`` and checked now
        (see ``Interpreter.guide``), so no patient waits for one."""
        return self.interpreter.guide(self.chunks, language, progress)

    def ready(self) -> None:
        """Warm the model (restoring a saved prefix) once per process, before its first
        call: the server's warm-up and a first patient share this lock."""
        with self._warm_lock:
            if self.prefix_source == "cold":
                self.warm()
