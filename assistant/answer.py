"""The answer chain, top to bottom:

    check input → route (urgent, crisis, declined, closing) → retrieve candidates →
    scope gate → the model chooses passages → coverage rules → compose from the guide

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from assistant.choose import Chooser
from assistant.config import Settings
from assistant.corpus import Chunk, guide_units
from assistant.errors import ModelError, ScarguideError
from assistant.glossary import Glossary
from assistant.handoff import build_handoff, summarise
from assistant.localise import SentenceTranslator, answer_texts
from assistant.locks import ConversationLocks, ProcessLocks
from assistant.prompts import load_texts
from assistant.records import AnswerRecord, Citation, GlossaryEntry, SentenceVerdict, Translation
from assistant.replies import Replies, replies_for
from assistant.retrieve import HybridRetriever
from assistant.rules import Rules
from assistant.safety import clean_message
from assistant.sessions import Session, SessionStore, TurnSummary
from assistant.translate import QuestionTranslator, mostly_english
from assistant.triage import Triage, TriageResult, build_triage
from assistant.verify import ClaimChecker

TEMPLATES = ("partial", "none", "offer", "closing", "declined", "handoff")


def _flat(text: str) -> str:
    return " ".join(text.split())


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


class _Clock:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}
        self._last = self.start

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = round((now - self._last) * 1000, 1)
        self._last = now

    def since_start(self, name: str) -> None:
        self.marks[name] = round((time.perf_counter() - self.start) * 1000, 1)


class Assistant:
    """The one object every adapter (CLI, REST, UI, eval) calls."""

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
        # a question in another language is searched and chosen for in English
        self.translator = QuestionTranslator(settings.prompts_dir)
        # ... and its answer's guide sentences get a checked translation beside them
        # (on a model instance of its own, without the guide: see build_translation_model)
        self.localiser = SentenceTranslator(
            getattr(checker, "embeddings", None), settings.prompts_dir,
            settings.translation_check_similarity,
            cache=settings.data_dir / "cache" / f"translations-{model_name}.json"
            if settings.translation_cache else None)
        self.translation_chat = translation_chat or (lambda: chat)
        self.texts = load_texts("answer_text", settings.prompts_dir, TEMPLATES)
        self.rules = Rules(settings, getattr(checker, "embeddings", None))
        self._sections = list(dict.fromkeys(c.section for c in chunks))
        self.system_prompt = self.chooser.system_prompt  # its rules: the attack suite's leak check
        self.system_text = self.chooser.system_text
        self.answer_prompt = self.chooser.prompt

    # -- public API -----------------------------------------------------------------

    def warm(self) -> float:
        """Process the shared system prefix now, so the first patient does not wait for it.

        A local model restores the prefix saved by an earlier process when it matches
        (same model file, same system prompt), and saves it otherwise."""
        started = time.perf_counter()
        self.triage.warm()  # the triage model's own prefix (its instructions and examples)
        if not hasattr(self.chat, "save_prefix"):  # a server or a fake: nothing to warm here
            self.prefix_source = "not applicable"
            return 0.0
        cache = self._prefix_cache_path()
        if cache is not None and cache.exists() and self.chat.load_prefix(cache):
            self.prefix_source = "restored"
            return time.perf_counter() - started
        self.chat.invoke(
            [*self.chooser.prefix(), HumanMessage(self.chooser.render([], "hello", [1]))],
            max_tokens=1,
        )
        if cache is not None:
            self.chat.save_prefix(cache)
        self.prefix_source = "computed"
        return time.perf_counter() - started

    def _prefix_cache_path(self):
        if not self.settings.prefix_cache:
            return None
        key = hashlib.sha256(
            f"{self.chat.model_path}\n{self.chat.n_ctx}\n{self.chooser.prefix_text}".encode()
        ).hexdigest()[:16]
        return self.settings.data_dir / "cache" / f"prefix-{self.model_name}-{key}.npz"

    def ask(
        self, message: str, session_id: str | None = None, triaged: TriageResult | None = None
    ) -> AnswerRecord:
        record = None
        for event in self.stream(message, session_id, triaged):
            record = event.record or record
        assert record is not None
        return record

    def stream(
        self, message: str, session_id: str | None = None, triaged: TriageResult | None = None
    ) -> Iterator[Event]:
        """Verified sentences as they pass, then the record. Turns of one conversation run
        one at a time, so none is lost when a patient sends twice. ``triaged``: the
        message's triage, when the front desk has done it already."""
        with self._hold(session_id):
            yield from self._turn(message, session_id, triaged)

    def assess(self, text: str, session: Session | None) -> TriageResult:
        """Triage of a cleaned message, read with the last turns of its conversation."""
        history = [t.question for t in session.turns] if session is not None else []
        return self.triage.assess(text, history)

    def _hold(self, session_id: str | None) -> AbstractContextManager[None]:
        if session_id is None:
            return nullcontext()  # a new conversation: nobody else can hold it
        return self.locks.hold(session_id, self.settings.queue_timeout_s)

    def _turn(
        self, message: str, session_id: str | None, triaged: TriageResult | None
    ) -> Iterator[Event]:
        clock = _Clock()
        text = clean_message(message, self.settings.max_message_chars)
        session = self.sessions.get(session_id) if session_id else self.sessions.create()
        triage = triaged or self.assess(text, session)
        clock.lap("triage")
        where = triage.route if triage.routed and triage.firm else self.rules.route(
            text, lambda t: self.search(t).top_similarity
        )
        language = self._language(text, triage.language)
        notice = None
        if triage.routed and not triage.firm:  # unsure: the fixed reply first, then the answer
            notice = self._fixed_reply(triage.replies, triage.language)[0]
            yield Event("notice", text=notice)
        if where in ("urgent", "crisis"):
            kinds = triage.replies if triage.routed and triage.firm else (where,)
            record = self._urgent(session, text, kinds, triage.language)
        elif where == "declined":
            record = self._declined(session, text, language)
        elif where == "closing":
            record = self._closing(session, text, language)
        else:
            record = None
            try:
                for event in self._answer(session, text, clock, triage.language, language):
                    if event.record is None:
                        yield event
                    record = event.record or record
            except Exception as exc:  # the model or a store failed mid-answer: staff see it
                self._failed(session, text, exc)
                raise
        assert record is not None
        record.triage = triage.to_dict()
        if record.status != "urgent":  # a fixed reply is in the language it was found in
            record.language = language
        record.notice = notice
        clock.since_start("total")
        record.timings_ms = {**clock.marks, **record.timings_ms}
        self._remember(session, record)
        yield Event("record", record=record)

    def end(self, session_id: str) -> AnswerRecord:
        """The explicit end of a conversation: a handoff with the summary."""
        with self._hold(session_id):
            session = self.sessions.get(session_id)
            language = session.turns[-1].language if session.turns else "en"
            record = self._closing(session, "[end of conversation]", language)
            record.language = language
            self._remember(session, record)
        return record

    # -- stages ---------------------------------------------------------------------

    def _language(self, text: str, detected: str) -> str:
        """The language of the answer's own texts: the message's, when it is offered and
        the message is not mostly English words; else English."""
        s = self.settings
        if detected == "en" or detected not in s.languages or mostly_english(text):
            return "en"
        return detected

    def _answer(
        self, session: Session, message: str, clock: _Clock, language: str = "en",
        shown_in: str = "en",
    ) -> Iterator[Event]:
        """Retrieve candidates, settle coverage, let the model choose, show guide text."""
        s = self.settings
        texts = answer_texts(shown_in, s.prompts_dir)
        english = self._english(message, language)
        clock.lap("translate")
        text = english or message  # what the search, the choice and the rules read
        earlier = [t.question_english or t.question for t in session.turns
                   if t.status in ("answered", "not_in_guide")]
        earlier = earlier[-s.history_turns :] if s.history_turns else []
        alone = self.search(text)
        # a follow-up is read with the patient's previous message; both readings give
        # candidates, the one that matches the guide better leads
        joined = self.search(f"{earlier[-1]} {text}") if earlier else None
        clock.lap("retrieve")
        follow = (
            joined is not None
            and alone.top_similarity < s.followup_similarity
            and self.rules.refers_back(text)
        )
        lead, other = (joined, alone) if follow and joined else (alone, joined)
        hits = list({h.chunk_id: h for h in [
            *lead.hits[: s.answer_candidates],
            *(other.hits[: s.answer_candidates] if other else []),
        ]}.values())[: s.answer_candidates + (1 if other else 0)]
        standalone = f"{earlier[-1]} — {text}" if follow else None
        base = self._record(session, "answered", "", question=message, standalone=standalone)
        base.question_english = english
        base.retrieved = [{k: v for k, v in h.to_dict().items() if k != "text"} for h in hits]
        base.top_similarity = round(lead.top_similarity, 4)
        if not (alone.covered or (follow and joined is not None and joined.covered)):
            # scope gate: no model call for what the guide does not cover at all
            yield Event("record", record=self._not_in_guide(base, session, shown_in))
            return

        candidates = [self.number_of[h.chunk_id] for h in hits]
        self.ready()
        choice = self._call(
            self.chooser.choose, self.chat, earlier[-2:], text, candidates, candidates[:1],
            self._prior(lead, hits),
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
            yield Event("record", record=self._not_in_guide(base, session, shown_in))
            return
        base.choice = choice.to_dict()
        chosen = [self.chunks[n - 1] for n in choice.numbers]
        gaps = self.rules.missing_aspects(text, self._context(c.chunk_id for c in chosen))
        # the words beyond a topic are the patient's own only when nothing translated them
        if not gaps and english is None:
            gaps = [f"“{w}”" for w in self.rules.beyond_topic(text, chosen, self._sections)]
        base.gaps = gaps
        shown: list[str] = []
        citations: list[Citation] = []
        if gaps:  # the topic is covered, what is asked about it is not
            topics = " and ".join(dict.fromkeys(c.section.split(" › ")[-1] for c in chosen))
            opening = texts.render("partial", missing=" or ".join(gaps), topic=topics)
            shown.append(opening)
            yield Event("sentence", text=opening)
        for chunk in chosen:
            for unit in guide_units(chunk.text):
                if len([x for x in shown if x.endswith("]")]) >= s.max_answer_sentences:
                    break
                yield self._show(shown, citations, unit, chunk.chunk_id, unit, clock)
        base.verdicts = [
            SentenceVerdict(
                sentence=c.quote,
                supported=_flat(c.quote) in _flat(self.by_id[c.chunk_id].text),
                chunk_id=c.chunk_id,
                reasons=["the guide's own words"],
            )
            for c in citations
        ]
        clock.lap("compose")
        if gaps:
            shown.append(texts.render("offer"))
            base.status, base.coverage = "not_in_guide", "partial"
            base.handoff = build_handoff(self.settings, session, texts.render("handoff"))
        else:
            base.coverage = "full"
        if shown_in != "en" and s.translate_answers and citations:
            base.translation_label = texts.render("label")
            for citation in citations:  # after the sentences: the English comes first
                done = self._translation(citation, shown_in)
                done.shown = done.text if done.passed else texts.render("unchecked")
                base.translations.append(done)
                yield Event("translation", translation=done)
            clock.lap("translate_answer")
        base.answer = " ".join(shown)
        base.citations = citations
        base.glossary = [
            GlossaryEntry(term=e.term, definition=e.definition, chunk_id=e.chunk_id,
                          section=e.section, also=list(e.also))
            for e in self.glossary.terms_in(" ".join(c.quote for c in citations),
                                            [c.quote for c in citations])
        ]
        yield Event("record", record=base)

    def _translation(self, citation: Citation, language: str) -> Translation:
        """A cited sentence in the patient's language, checked (see assistant.localise)."""
        model = self.translation_chat()

        def ask(text: str):
            return model.invoke([HumanMessage(text)], max_tokens=self.localiser.max_tokens)

        return self.localiser.translate(ask, citation.n, citation.quote, language)

    def translate_guide(self, language: str, progress=None) -> list[Translation]:
        """Every sentence the guide can show, translated into ``language`` and checked now
        (kept like any other), so no patient waits for one: what staff can also review."""
        units = [(c, u) for c in self.chunks for u in guide_units(c.text)]
        done = []
        for i, (chunk, unit) in enumerate(units, start=1):
            done.append(self._translation(
                Citation(n=i, chunk_id=chunk.chunk_id, section=chunk.section, quote=unit),
                language))
            if progress is not None:
                progress(i, len(units))
        return done

    def _english(self, message: str, language: str) -> str | None:
        """The English of a question in another offered language (None: read as written,
        also when the model's translation is not usable or the call fails)."""
        s = self.settings
        if not s.translate_questions or language not in s.languages:
            return None
        if not self.translator.needed(message, language):
            return None
        self.ready()
        messages = self.translator.messages(self.chooser.prefix(), message, language)
        try:
            reply = self.chat.invoke(messages, max_tokens=self.translator.max_tokens)
        except Exception:  # noqa: BLE001 - the question is then read as written
            return None
        return self.translator.read(getattr(reply, "content", reply), message)

    @staticmethod
    def _prior(lead, hits) -> list[float]:
        """Each candidate's fused score in the leading reading (a follow-up's candidates
        from the other reading get its lowest), so one ranking is the prior."""
        scores = {h.chunk_id: h.fused_score for h in lead.hits}
        floor = min(scores.values(), default=0.0)
        return [scores.get(h.chunk_id, floor) for h in hits]

    def _show(self, shown, citations, sentence, chunk_id, quote, clock) -> Event:
        n = self._cite(citations, chunk_id, quote)
        shown.append(f"{sentence} [{n}]")
        if len(citations) == 1 and n == 1:
            clock.since_start("first_sentence")
        return Event("sentence", text=shown[-1])

    def _context(self, chunk_ids) -> str:
        """The passages' headings and text, as one string to look words up in."""
        return " ".join(f"{self.by_id[c].section} {self.by_id[c].text}" for c in chunk_ids)

    @staticmethod
    def _call(fn, *args, **kwargs):
        """Call the chat model; its failures become a ModelError (a clear, patient-safe error)."""
        try:
            return fn(*args, **kwargs)
        except ScarguideError:
            raise
        except Exception as exc:  # noqa: BLE001 - any backend failure
            raise ModelError(f"The chat model failed: {type(exc).__name__}: {exc}") from exc

    def ready(self) -> None:
        """Warm the model (restoring a saved prefix) once per process, before its first
        call: the server's warm-up and a first patient share this lock."""
        with self._warm_lock:
            if self.prefix_source == "cold":
                self.warm()

    # -- records --------------------------------------------------------------------

    def _record(self, session: Session, status: str, answer: str, **extra) -> AnswerRecord:
        question = extra.pop("question")
        return AnswerRecord(
            status=status,
            answer=answer,
            session_id=session.session_id,
            turn=len(session.turns) + 1,
            question=question,
            standalone_question=extra.pop("standalone", None),
            model=self.model_name,
            prompt=self.answer_prompt.ref,
            **extra,
        )

    def _cite(self, citations: list[Citation], chunk_id: str, quote: str) -> int:
        """The marker number of (chunk, quote), adding a citation the first time."""
        for c in citations:
            if c.chunk_id == chunk_id and c.quote == quote:
                return c.n
        section = self.by_id[chunk_id].section
        citations.append(
            Citation(n=len(citations) + 1, chunk_id=chunk_id, section=section, quote=quote)
        )
        return citations[-1].n

    def _not_in_guide(self, base: AnswerRecord, session: Session,
                      language: str = "en") -> AnswerRecord:
        """The guide does not cover the question at all: say so, offer the consultation."""
        texts = answer_texts(language, self.settings.prompts_dir)
        base.status, base.coverage = "not_in_guide", "none"
        base.answer = f"{texts.render('none')} {texts.render('offer')}"
        base.citations = []
        base.handoff = build_handoff(self.settings, session, texts.render("handoff"))
        return base

    def _fixed_reply(self, kinds: Sequence[str], language: str) -> tuple[str, Replies]:
        """The fixed replies (prompts/replies/) of ``kinds`` (urgent, crisis; both when
        triage was split between them), in the patient's language when offered."""
        s = self.settings
        offered = language if language in s.languages else "en"
        replies = replies_for(offered, s.prompts_dir)
        text = "\n\n".join(
            replies.render(kind, s.emergency_number, s.crisis_line) for kind in kinds
        )
        return text, replies

    def _urgent(
        self, session: Session, text: str, kinds: Sequence[str], language: str
    ) -> AnswerRecord:
        answer, replies = self._fixed_reply(kinds, language)
        record = self._record(session, "urgent", answer, question=text)
        record.prompt = {"name": f"replies/{replies.language}", "version": replies.version}
        record.language = replies.language
        record.handoff = build_handoff(self.settings, session, replies.follow_up)
        return record

    def _declined(self, session: Session, text: str, language: str = "en") -> AnswerRecord:
        texts = answer_texts(language, self.settings.prompts_dir)
        record = self._record(session, "declined", texts.render("declined"), question=text)
        record.prompt = None
        record.handoff = build_handoff(self.settings, session, texts.render("handoff"))
        return record

    def _closing(self, session: Session, text: str, language: str = "en") -> AnswerRecord:
        texts = answer_texts(language, self.settings.prompts_dir)
        handoff = build_handoff(self.settings, session, texts.render("handoff"))
        record = self._record(
            session, "handoff", f"{texts.render('closing')} {handoff.message}", question=text
        )
        record.prompt = None
        record.handoff = handoff
        return record

    def _failed(self, session: Session, text: str, exc: Exception) -> None:
        """Record a turn that could not be answered (status ``failed``, nothing shown as
        an answer), so staff see it; the patient got an error instead."""
        if self.journal is None:
            return
        record = self._record(session, "failed", "", question=text)
        record.prompt = None
        cause = exc.__cause__
        # kinds only: a message may carry the patient's words
        record.error = type(exc).__name__ + (f" ({type(cause).__name__})" if cause else "")
        try:
            self.journal(record)
        except Exception:  # the database may be what failed: the original error wins
            pass

    def _remember(self, session: Session, record: AnswerRecord) -> None:
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
