"""The answer chain, top to bottom, one method per stage:

    check input → route (urgent, crisis, declined, closing) → condense a follow-up →
    retrieve → scope gate → generate → verify each sentence → compose the record

Nothing the patient sees is unverified: the model's sentences are released one at a
time, each only after the claim checker found it supported by a guide passage, and
everything else shown is quoted word for word from the guide (a comparison's opening
definitions, the fallback quote). Every reason to refuse is settled before the first
sentence is shown, so a streaming UI never has to retract text. If no sentence
survives, the answer falls back to quoting the guide sentence closest to the question,
or says the guide does not cover it.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.config import Settings
from assistant.corpus import Chunk, split_sentences
from assistant.errors import ModelError, ScarguideError
from assistant.handoff import build_handoff, summarise
from assistant.prompts import load_prompt
from assistant.records import AnswerRecord, Citation, SentenceVerdict
from assistant.replies import Replies, replies_for
from assistant.retrieve import HybridRetriever, RetrievalResult
from assistant.safety import as_data, clean_message, route
from assistant.sessions import Session, SessionStore, TurnSummary
from assistant.triage import Triage, TriageResult, build_triage
from assistant.verify import ClaimChecker, distinctive_heading_words, strip_markers
from assistant.words import (
    alike,
    content_stems,
    missing_aspects,
    stem,
    uncovered_words,
    words,
)

NOT_IN_GUIDE = "NOT_IN_GUIDE"
_MARKERS = re.compile(r"\[(\d+)\]")
# A sentence ends at . ! or ? (then optional [n] markers) before white space and
# a capital letter, a quote, a bracket or a digit: only then is it safe to release.
_BOUNDARY = re.compile(r"[.!?](?:\s*\[\d+\])*\s+(?=[A-Z0-9\"“(\[])")
_ECHO = re.compile(r"^(most relevant passages|passages?|guide passages|example)\b", re.I)
_FOLLOW_UP = re.compile(
    r"\b(they|them|their|theirs|it|its|it's|those|these|that|this|ones?|first|second|third|"
    r"last|former|latter|both|either|same|what about|how about|and for)\b",
    re.I,
)


_CLAIM_WORDS = re.compile(
    r"\b(is|are|was|were|can|cannot|can't|do|does|doesn't|don't|will|won't|not|no|never)\b", re.I
)
_PRONOUNS = r"these|they|this|it|those|that|such"
_DANGLING = re.compile(rf"^({_PRONOUNS})\b", re.I)
# A guide sentence that leans on the one before it ("The process initially causes…").
_LEANS_BACK = re.compile(
    rf"^({_PRONOUNS}|the (process|treatment|procedure|technique|device|result|final result))\b",
    re.I,
)
_COMPARISON = re.compile(
    r"\b(vs\.?|versus|differ\w*|compar\w*|or|and|between|apart|distinguish|same as)\b", re.I
)


def _same(a: str, b: str) -> bool:
    return re.sub(r"\W+", " ", a).strip().lower() == re.sub(r"\W+", " ", b).strip().lower()


@dataclass(frozen=True)
class Event:
    """What ``Assistant.stream`` yields: verified sentences, then the record."""

    kind: str  # "notice" (a fixed urgent or crisis reply first), "sentence" or "record"
    text: str = ""
    record: AnswerRecord | None = None


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
    ) -> None:
        self.settings = settings
        # urgent and crisis messages, however written: patterns, the model, the screen
        self.triage = triage or build_triage(settings, None, None)
        # every finished record goes here (the database: staff review, eval replay)
        self.journal = journal
        self.retriever = retriever
        # the same text is searched by condense() and then by the answer: search it once
        self.search = lru_cache(maxsize=256)(retriever.search)
        self.chat = chat
        self.checker = checker
        self.sessions = sessions
        self.model_name = model_name
        self.prefix_source = "cold"
        self._warm_lock = threading.Lock()
        self._locks_guard = threading.Lock()
        self._session_locks: dict[str, threading.Lock] = {}
        self.chunks = chunks
        self.by_id = {c.chunk_id: c for c in chunks}
        self.number_of = {c.chunk_id: i for i, c in enumerate(chunks, start=1)}
        self._distinctive = distinctive_heading_words([c.section for c in chunks])
        self.system_prompt = load_prompt("system", settings.prompts_dir)
        self.answer_prompt = load_prompt("answer", settings.prompts_dir)
        self.condense_prompt = load_prompt("condense", settings.prompts_dir)
        self.system_text = self.system_prompt.render(
            passages="\n".join(
                f"[{self.number_of[c.chunk_id]}] ({c.section}) {' '.join(c.text.split())}"
                for c in chunks
            ),
            example_citation=self._number_of_passage("Rolling scars are"),
            laser_citation=self._number_of_passage("Laser therapy uses"),
        )

    def _number_of_passage(self, start: str) -> int:
        """The number of the passage starting with ``start`` (for the prompt's examples)."""
        return next(
            (self.number_of[c.chunk_id] for c in self.chunks if c.text.startswith(start)), 1
        )

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
            [SystemMessage(self.system_text), HumanMessage("<question>hello</question>")],
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
            f"{self.chat.model_path}\n{self.chat.n_ctx}\n{self.system_text}".encode()
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
        with self._lock_for(session_id):
            yield from self._turn(message, session_id, triaged)

    def assess(self, text: str, session: Session | None) -> TriageResult:
        """Triage of a cleaned message, read with the last turns of its conversation."""
        history = [t.question for t in session.turns] if session is not None else []
        return self.triage.assess(text, history)

    def _lock_for(self, session_id: str | None) -> threading.Lock:
        if session_id is None:
            return threading.Lock()  # a new conversation: nobody else can hold it
        with self._locks_guard:
            return self._session_locks.setdefault(session_id, threading.Lock())

    def _turn(
        self, message: str, session_id: str | None, triaged: TriageResult | None
    ) -> Iterator[Event]:
        clock = _Clock()
        text = clean_message(message, self.settings.max_message_chars)
        session = self.sessions.get(session_id) if session_id else self.sessions.create()
        triage = triaged or self.assess(text, session)
        clock.lap("triage")
        where = triage.route if triage.routed and triage.firm else route(text)
        notice = None
        if triage.routed and not triage.firm:  # unsure: the fixed reply first, then the answer
            notice = self._fixed_reply(triage.route == "crisis", triage.language)[0]
            yield Event("notice", text=notice)
        if where in ("urgent", "crisis"):
            record = self._urgent(session, text, where == "crisis", triage.language)
        elif where == "declined":
            record = self._declined(session, text)
        elif where == "closing":
            record = self._closing(session, text)
        else:
            record = None
            for event in self._answer(session, text, clock):
                if event.record is None:
                    yield event
                record = event.record or record
        assert record is not None
        record.triage = triage.to_dict()
        record.notice = notice
        clock.since_start("total")
        record.timings_ms = {**clock.marks, **record.timings_ms}
        self._remember(session, record)
        yield Event("record", record=record)

    def end(self, session_id: str) -> AnswerRecord:
        """The explicit end of a conversation: a handoff with the summary."""
        with self._lock_for(session_id):
            session = self.sessions.get(session_id)
            record = self._closing(session, "[end of conversation]")
            self._remember(session, record)
        return record

    # -- stages ---------------------------------------------------------------------

    def _answer(self, session: Session, text: str, clock: _Clock) -> Iterator[Event]:
        standalone = self.condense(text, session)
        clock.lap("condense")
        result = self.search(standalone)
        clock.lap("retrieve")
        base = self._record(session, "answered", "", question=text, standalone=standalone)
        base.retrieved = [
            {k: v for k, v in h.to_dict().items() if k != "text"} for h in result.hits
        ]
        base.top_similarity = round(result.top_similarity, 4)
        if not result.covered:  # scope gate: no model call for what the guide does not cover
            yield Event("record", record=self._not_in_guide(base, None, session))
            return

        citations: list[Citation] = []
        shown: list[str] = []
        verdicts: list[SentenceVerdict] = []
        draft = ""
        previous_kept = True
        named = self.named_sections(standalone, result)
        subjects = {c.chunk_id for c in named} | {h.chunk_id for h in result.hits[:1]}
        # The question names guide topics and the guide has every word it asks about.
        covered = bool(named) and self._covers(standalone, named, result)
        if not covered:
            # Relevance gate, before anything is shown: the question asks about an aspect
            # patients often ask about (cost, pain, recovery, sessions, risks…) that the top
            # passages never mention: the guide does not answer it, however true the
            # sentences the model would write about the treatment.
            context = self._context(h.chunk_id for h in result.hits[:3])
            base.gaps = missing_aspects(standalone, context)
            if base.gaps:
                yield Event("record", record=self._not_in_guide(base, None, session, named))
                return
        if covered and len(named) >= 2 and _COMPARISON.search(standalone):
            # "X vs Y": each side opens with the guide's own definition of it, so the
            # comparison rests on both; the model's sentences follow when they add to it.
            for chunk in self._in_order_asked(standalone, named):
                lead = self.definition(chunk)
                if len(shown) + len(lead) > self.settings.max_answer_sentences:
                    lead = lead[:1]  # every side gets its opening sentence at least
                for sentence in lead:
                    yield self._show(shown, citations, sentence, chunk.chunk_id, sentence, clock)
        definitions = len(shown)
        limit = self.settings.max_answer_sentences
        drafts = self._sentences(standalone, result) if len(shown) < limit else iter(())
        for sentence, draft in drafts:
            if draft.lstrip().startswith(NOT_IN_GUIDE) or len(shown) >= limit:
                break
            if len(verdicts) >= 2 * self.settings.max_answer_sentences:
                break  # a rambling draft: stop reading (and generating) it
            verdict, chunk_id, quote = self.verify(sentence, result)
            if (
                verdict.supported
                and chunk_id not in subjects
                and (
                    (not previous_kept and _DANGLING.match(verdict.sentence))
                    or (
                        _LEANS_BACK.match(quote)
                        and not self._introduced(chunk_id, sentence, citations)
                    )
                )
            ):
                # "They…" after a dropped sentence may mean what that sentence was about: it
                # stays only when its passage is what the question is about. A guide sentence
                # that leans on the one before it ("The process…" of TCA CROSS) means that
                # passage's topic: it stays when the question or the answer so far is about it.
                verdict.supported, chunk_id = False, None
                verdict.reasons.append("refers back to something the answer has not introduced")
            verdicts.append(verdict)
            previous_kept = verdict.supported
            if not verdict.supported or chunk_id is None:
                continue
            if any(c.chunk_id == chunk_id and c.quote == quote for c in citations):
                continue  # rests on a sentence already shown: it would only repeat it
            if not shown and _DANGLING.match(verdict.sentence):
                # An answer does not open with "These…": lead with what the passage is about.
                _, lead = self._closest_sentence(standalone, self.by_id[chunk_id], opening=True)
                if lead != quote:
                    yield self._show(shown, citations, lead, chunk_id, lead, clock)
            yield self._show(shown, citations, f"{strip_markers(sentence)}", chunk_id, quote, clock)
            if len(shown) >= self.settings.max_answer_sentences:
                break
        if not shown and draft.lstrip().startswith(NOT_IN_GUIDE):
            # "NOT_IN_GUIDE: <a claim>": the model refused and answered in one breath. The
            # claim stands only if the guide supports it and the passages it rests on
            # (with the top hits) have every word the question asks about.
            claim = (draft.strip()[len(NOT_IN_GUIDE) :].lstrip(": ").splitlines() or [""])[0]
            if re.search(r"[.!?]$", strip_markers(claim)):
                verdict, chunk_id, quote = self.verify(claim, result)
                verdict.reasons.append("stated after the model's NOT_IN_GUIDE")
                rests_on = [chunk_id] if chunk_id else []
                context = self._context(rests_on + [h.chunk_id for h in result.hits[:3]])
                if (
                    chunk_id is not None
                    and not uncovered_words(standalone, context)
                    and not missing_aspects(standalone, context)
                    and not _DANGLING.match(verdict.sentence)
                    and not (
                        _LEANS_BACK.match(quote) and not self._introduced(chunk_id, claim, [])
                    )
                ):
                    verdicts.append(verdict)
                    yield self._show(shown, citations, strip_markers(claim), chunk_id, quote, clock)
                    covered = True
        clock.lap("generate_verify")
        base.draft, base.verdicts = draft, verdicts

        refused = draft.lstrip().startswith(NOT_IN_GUIDE) and not covered and not shown
        if refused:
            yield Event("record", record=self._not_in_guide(base, draft, session))
            return
        if definitions and not any(v.supported for v in verdicts):
            # the model said nothing the guide backs: the definitions carry the answer alone
            base.extractive_fallback = True
        if not shown:
            fallback = self.extractive(standalone, result)
            if fallback is None and not covered:
                yield Event("record", record=self._not_in_guide(base, None, session))
                return
            if fallback is not None:
                chunk_id, sentence = fallback
                if _DANGLING.match(sentence):  # lead with what "They…" refers to
                    _, lead = self._closest_sentence(standalone, self.by_id[chunk_id], True)
                    if lead != sentence:
                        yield self._show(shown, citations, lead, chunk_id, lead, clock)
                yield self._show(shown, citations, sentence, chunk_id, sentence, clock)
            base.extractive_fallback = True
        # Every topic the question names gets its own guide sentence ("X vs Y").
        cited = {c.chunk_id for c in citations}
        for chunk in named:
            if chunk.chunk_id not in cited and len(shown) < self.settings.max_answer_sentences:
                _, quote = self._closest_sentence(standalone, chunk)
                yield self._show(shown, citations, quote, chunk.chunk_id, quote, clock)
                base.extractive_fallback = True
        base.answer = " ".join(shown)
        base.citations = citations
        yield Event("record", record=base)

    def _introduced(self, chunk_id: str | None, sentence: str, citations) -> bool:
        """The answer has introduced this passage's topic: the sentence names it, or a
        sentence already shown rests on the same passage."""
        chunk = self.by_id.get(chunk_id or "")
        if chunk is None:
            return False
        topic = self.checker.topics.get(chunk.section)
        if not topic:  # "They'll work with you…" of "How to treat acne scars": its own subject
            return True
        return bool(topic & content_stems(sentence)) or chunk_id in {c.chunk_id for c in citations}

    def definition(self, chunk: Chunk) -> list[str]:
        """A passage's opening sentence, with the next one when it goes on about the same
        thing ("Atrophic scars are the most common type… They look like depressions…")."""
        sentences, _ = self.checker.passage_sentences(chunk.text)
        opening = next((i for i, s in enumerate(sentences) if not _DANGLING.match(s)), 0)
        lead = sentences[opening : opening + 1]
        if opening + 1 < len(sentences) and re.match(r"(they|it)\b", sentences[opening + 1], re.I):
            lead.append(sentences[opening + 1])
        return lead

    def _show(self, shown, citations, sentence, chunk_id, quote, clock) -> Event:
        n = self._cite(citations, chunk_id, quote)
        shown.append(f"{sentence} [{n}]")
        if len(shown) == 1:
            clock.since_start("first_sentence")
        return Event("sentence", text=shown[-1])

    def named_sections(self, question: str, result: RetrievalResult) -> list[Chunk]:
        """Retrieved sections whose own name the question uses ("fillers", "pie", "keloyd").

        Only words that name one section count: "therapy" (laser and PRP) names none."""
        asked = content_stems(question)
        named: list[Chunk] = []
        for hit in result.hits[:3]:
            chunk = self.by_id[hit.chunk_id]
            if chunk.ordinal or chunk.chunk_id in {c.chunk_id for c in named}:
                continue
            words = self._distinctive.get(chunk.section, set())
            if any(alike(w, a) for w in words for a in asked):
                named.append(chunk)
        return named

    def _in_order_asked(self, question: str, named: list[Chunk]) -> list[Chunk]:
        """Named sections in the order the question names them ("subcision vs fillers")."""
        asked = [stem(w) for w in words(question)]

        def first_mention(chunk: Chunk) -> int:
            own = self._distinctive.get(chunk.section, set())
            return next(
                (i for i, a in enumerate(asked) if any(alike(w, a) for w in own)), len(asked)
            )

        return sorted(named, key=first_mention)

    def _names_a_topic(self, text: str) -> bool:
        asked = content_stems(text)
        return any(alike(w, a) for ws in self._distinctive.values() for w in ws for a in asked)

    def _covers(self, question: str, named: list[Chunk], result: RetrievalResult) -> bool:
        ids = [c.chunk_id for c in named] + [h.chunk_id for h in result.hits[:3]]
        return not uncovered_words(question, self._context(ids))

    def _context(self, chunk_ids) -> str:
        """The passages' headings and text, as one string to look words up in."""
        return " ".join(f"{self.by_id[c].section} {self.by_id[c].text}" for c in chunk_ids)

    def _closest_sentence(
        self, question: str, chunk: Chunk, opening: bool = False
    ) -> tuple[float, str]:
        """(similarity, sentence) of the passage sentence closest to the question;
        ``opening``: only sentences that can open an answer (not "These are…")."""
        q = self.checker.embeddings.embed_query(question)
        sentences, vectors = self.checker.passage_sentences(chunk.text)
        scores = [sum(a * b for a, b in zip(q, v, strict=True)) for v in vectors]
        allowed = [
            i for i in range(len(sentences)) if not (opening and _DANGLING.match(sentences[i]))
        ] or list(range(len(sentences)))
        best = max(allowed, key=scores.__getitem__)
        return scores[best], sentences[best]

    @staticmethod
    def _call(fn, *args, **kwargs):
        """Call the chat model; its failures become a ModelError (a clear, patient-safe error)."""
        try:
            return fn(*args, **kwargs)
        except ScarguideError:
            raise
        except Exception as exc:  # noqa: BLE001 - any backend failure
            raise ModelError(f"The chat model failed: {type(exc).__name__}: {exc}") from exc

    def _ready(self) -> None:
        """Warm the model (restoring a saved prefix) before its first call in this process."""
        with self._warm_lock:
            if self.prefix_source == "cold":
                self.warm()

    def condense(self, text: str, session: Session) -> str:
        """A follow-up becomes a standalone question, using the patient's earlier messages."""
        earlier = (
            session.turns[-self.settings.history_turns :] if self.settings.history_turns else []
        )
        if not earlier:
            return text
        if not _FOLLOW_UP.search(text):
            # no pronoun; still a follow-up if the guide barely matches it on its own
            if self.search(text).top_similarity >= self.settings.followup_similarity:
                return text
        history = "\n".join(
            f"- {as_data((t.standalone_question or t.question)[:300])}" for t in earlier
        )
        self._ready()
        reply = self._call(
            self.chat.invoke,
            [
                SystemMessage(self.system_text),
                HumanMessage(self.condense_prompt.render(history=history, question=as_data(text))),
            ],
            max_tokens=60,
        ).content
        line = str(reply).strip().splitlines()[0] if str(reply).strip() else ""
        line = re.sub(
            r"^(rewritten question|standalone question|question)\s*:\s*", "", line, flags=re.I
        )
        line = line.strip().strip('"“”').strip()
        if not line or NOT_IN_GUIDE in line or len(line) > 3 * len(text) + 200:
            line = text
        if _same(line, text) and not self._names_a_topic(text):
            # the model did not resolve it and the message names no topic: keep the earlier one
            previous = earlier[-1].standalone_question or earlier[-1].question
            previous = previous.split(" — ")[-1].rstrip(" ?.")
            return f"{previous} — {text}"
        return line

    def _sentences(self, question: str, result: RetrievalResult) -> Iterator[tuple[str, str]]:
        """Stream the model's reply as (sentence, reply so far) pairs."""
        values = {"question": as_data(question)}
        if "hints" in self.answer_prompt.variables:
            values["hints"] = ", ".join(f"[{self.number_of[h.chunk_id]}]" for h in result.hits[:3])
        messages = [
            SystemMessage(self.system_text),
            HumanMessage(self.answer_prompt.render(**values)),
        ]
        draft, buffer = "", ""
        self._ready()
        for chunk in self._stream(messages):
            piece = str(chunk.content)
            draft += piece
            buffer += piece
            if draft.lstrip().startswith(NOT_IN_GUIDE):
                # read the named topic, or one sentence the model may state with it
                if "\n" in draft.strip() or re.search(r"[.!?]\s", draft) or len(draft) > 200:
                    break
                continue
            while match := _BOUNDARY.search(buffer):
                sentence, buffer = buffer[: match.end()].strip(), buffer[match.end() :]
                yield sentence, draft
        if draft.lstrip().startswith(NOT_IN_GUIDE):
            yield "", draft
            return
        for sentence in split_sentences(buffer):
            yield sentence, draft

    def _stream(self, messages):
        try:
            yield from self.chat.stream(messages)
        except ScarguideError:
            raise
        except Exception as exc:  # noqa: BLE001 - any backend failure
            raise ModelError(f"The chat model failed: {type(exc).__name__}: {exc}") from exc

    def verify(
        self, sentence: str, result: RetrievalResult
    ) -> tuple[SentenceVerdict, str | None, str]:
        """Check a sentence against the passages it cites, then the retrieved ones;
        returns the verdict, the supporting chunk and the quote it rests on."""
        claim, question = strip_markers(sentence), result.query
        if not claim or not re.search(r"[A-Za-z]{3}", claim):
            return SentenceVerdict(sentence=claim, supported=False, reasons=["empty"]), None, ""
        if not re.match(r"[A-Z0-9“\"(]", claim) or _ECHO.match(claim):
            reason = "not a sentence of an answer"
            return SentenceVerdict(sentence=claim, supported=False, reasons=[reason]), None, ""
        cited = [
            self.chunks[int(n) - 1].chunk_id
            for n in _MARKERS.findall(sentence)
            if 1 <= int(n) <= len(self.chunks)
        ]
        candidates = list(dict.fromkeys(cited + [h.chunk_id for h in result.hits]))
        best = None
        for chunk_id in candidates:
            chunk = self.by_id[chunk_id]
            verdict = self.checker.check(
                claim, chunk.text, chunk.section, question, chunk_id == result.hits[0].chunk_id
            )
            if verdict.supported and chunk_id in cited:
                best = (verdict, chunk_id)
                break
            if best is None or (verdict.supported, verdict.similarity) > (
                best[0].supported,
                best[0].similarity,
            ):
                best = (verdict, chunk_id)
        assert best is not None
        verdict, chunk_id = best
        return (
            SentenceVerdict(
                sentence=claim,
                supported=verdict.supported,
                chunk_id=chunk_id,
                similarity=round(verdict.similarity, 4),
                reasons=list(verdict.reasons),
            ),
            chunk_id if verdict.supported else None,
            verdict.quote,
        )

    def extractive(self, question: str, result: RetrievalResult) -> tuple[str, str] | None:
        """The guide sentence most similar to the question, if similar enough and if its
        passage mentions everything the question asks about (else the guide likely does not
        answer it: "does microneedling hurt?" finds microneedling, but nothing on pain)."""
        scored = [
            (*self._closest_sentence(question, self.by_id[h.chunk_id]), h.chunk_id)
            for h in result.hits[:3]
        ]
        if not scored:
            return None
        similarity, sentence, chunk_id = max(scored, key=lambda item: item[0])
        if similarity < self.settings.extractive_min_similarity or uncovered_words(
            question, self._context([chunk_id])
        ):
            return None
        return chunk_id, sentence

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

    def _not_in_guide(
        self,
        base: AnswerRecord,
        draft: str | None,
        session: Session,
        about: list[Chunk] | None = None,
    ) -> AnswerRecord:
        """``about``: the guide topics the question names (said with its gaps)."""
        topic = None
        if draft and draft.lstrip().startswith(NOT_IN_GUIDE):
            named = (draft.strip()[len(NOT_IN_GUIDE) :].lstrip(":").strip().splitlines() or [""])[0]
            named = named[:100]
            asked = content_stems(base.standalone_question or base.question)
            # a topic, not a claim: only the patient's own words, no verb or negation
            a_sentence = bool(re.search(r"[.!?]$", named)) and len(named.split()) >= 3
            if (
                named
                and not a_sentence  # "Eating dairy makes scars worse." is a claim
                and content_stems(named)
                and content_stems(named) <= asked | {"cost", "price"}
                and not _CLAIM_WORDS.search(named)
            ):
                topic = named.rstrip(".")
        if topic is None and base.gaps:
            # "The guide says nothing about “cost” or “session” for laser therapy"
            missing = " or ".join(f"“{gap}”" for gap in base.gaps)
            if about:
                missing += " for " + " or ".join(c.section.split(" › ")[-1].lower() for c in about)
            opening = f"The guide says nothing about {missing}"
        else:
            opening = f"The guide doesn't cover {topic or 'that question'}"
        base.status = "not_in_guide"
        base.answer = (
            f"{opening}, so I can't answer it from the guide. "
            "A dermatologist can answer it at a consultation."
        )
        base.citations = []
        base.handoff = build_handoff(self.settings, session)
        return base

    def _fixed_reply(self, crisis: bool, language: str) -> tuple[str, Replies]:
        """The fixed reply (prompts/replies/), in the patient's language when offered."""
        s = self.settings
        offered = language if language in s.languages else "en"
        replies = replies_for(offered, s.prompts_dir)
        text = replies.render("crisis" if crisis else "urgent", s.emergency_number, s.crisis_line)
        return text, replies

    def _urgent(self, session: Session, text: str, crisis: bool, language: str) -> AnswerRecord:
        answer, replies = self._fixed_reply(crisis, language)
        record = self._record(session, "urgent", answer, question=text)
        record.prompt = {"name": f"replies/{replies.language}", "version": replies.version}
        record.handoff = build_handoff(self.settings, session, replies.follow_up)
        return record

    def _declined(self, session: Session, text: str) -> AnswerRecord:
        answer = (
            "I can't give doses, prescriptions or diagnoses: those need a dermatologist who can "
            "examine you. I can explain what the guide says about acne scars and their treatments."
        )
        record = self._record(session, "declined", answer, question=text)
        record.prompt = None
        record.handoff = build_handoff(self.settings, session)
        return record

    def _closing(self, session: Session, text: str) -> AnswerRecord:
        handoff = build_handoff(self.settings, session)
        record = self._record(
            session, "handoff", f"Thank you for your questions. {handoff.message}", question=text
        )
        record.prompt = None
        record.handoff = handoff
        return record

    def _remember(self, session: Session, record: AnswerRecord) -> None:
        session.turns.append(
            TurnSummary(
                question=record.question,
                standalone_question=record.standalone_question,
                status=record.status,
                sections=list(dict.fromkeys(c.section for c in record.citations)),
            )
        )
        if record.handoff is not None:  # the summary includes this turn
            record.handoff.summary = summarise(session)
        if self.journal is not None:
            self.journal(record)
        self.sessions.save(session)
