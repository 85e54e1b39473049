"""The patient's language in the answer chain, both ways.

* A question in another offered language is read in English (``assistant.translate``):
  one short call on the chat model after the guide prefix it already holds.
* Each cited guide sentence gets a checked translation (``assistant.localise``), on a
  model instance of its own, without the guide (see ``build_translation_model``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage

from assistant.config import Settings
from assistant.corpus import Chunk, guide_units
from assistant.localise import AnswerTexts, SentenceTranslator
from assistant.records import Citation, Translation
from assistant.translate import QuestionTranslator


class Interpreter:
    """``english``: a question read in English; ``sentence``: a cited sentence translated
    and checked; ``guide``: every sentence the guide can show, ahead of any patient."""

    def __init__(
        self, settings: Settings, chat: BaseChatModel, embeddings, model_name: str,
        prefix: Callable[[], list[BaseMessage]], ready: Callable[[], None],
        translation_chat: Callable[[], BaseChatModel] | None = None,
    ) -> None:
        self.settings = settings
        self.chat = chat
        self.prefix = prefix  # the messages the chat model already holds (the guide prefix)
        self.ready = ready  # warms the chat model once per process
        self.translator = QuestionTranslator(settings.prompts_dir)
        self.localiser = SentenceTranslator(
            embeddings, settings.prompts_dir, settings.translation_check_similarity,
            cache=settings.data_dir / "cache" / f"translations-{model_name}.json"
            if settings.translation_cache else None)
        self.translation_chat = translation_chat or (lambda: chat)

    def english(self, message: str, language: str) -> str | None:
        """The English of a question whose answer texts are in ``language`` (the door's
        ``Turn.language``: not English only for an offered language, in words that are not
        mostly English). None: read as written, also when the model's translation is not
        usable or the call fails."""
        if not self.settings.translate_questions or language == "en":
            return None
        self.ready()
        messages = self.translator.messages(self.prefix(), message, language)
        try:
            reply = self.chat.invoke(messages, max_tokens=self.translator.max_tokens)
        except Exception:  # noqa: BLE001 - the question is then read as written
            return None
        return self.translator.read(str(reply.content), message)

    def sentence(self, citation: Citation, language: str) -> Translation:
        """A cited sentence in the patient's language, checked (see assistant.localise)."""
        model = self.translation_chat()

        def ask(text: str):
            return model.invoke([HumanMessage(text)], max_tokens=self.localiser.max_tokens)

        return self.localiser.translate(ask, citation.n, citation.quote, language)

    def sentences(self, citations: list[Citation], language: str,
                  texts: AnswerTexts) -> Iterator[Translation]:
        """Each cited sentence's translation, with what is shown for it: the translation
        when it passed its check, else the one-line note in the patient's language."""
        for citation in citations:
            done = self.sentence(citation, language)
            done.shown = done.text if done.passed else texts.render("unchecked")
            yield done

    def guide(self, chunks: list[Chunk], language: str, progress=None) -> list[Translation]:
        """Every sentence the guide can show, translated into ``language`` and checked now
        (kept like any other), so no patient waits for one: what staff can also review."""
        units = [(c, u) for c in chunks for u in guide_units(c.text)]
        done = []
        for i, (chunk, unit) in enumerate(units, start=1):
            done.append(self.sentence(
                Citation(n=i, chunk_id=chunk.chunk_id, section=chunk.section, quote=unit),
                language))
            if progress is not None:
                progress(i, len(units))
        return done
