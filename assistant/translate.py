"""A question in another language, read in English.

The guide is English, and so are its index, its BM25 words and the model's worked
examples: a question in Spanish or German found the right passage too rarely and was
refused as not covered. A question triage found to be in another offered language is put
into English by the chat model, after the guide prefix it already holds (one short call),
and the English question is what retrieval, the model's choice and the rules read. The
patient still reads the guide's own sentences, cited; the translation only decides which.

A message whose words are mostly English words is read as it is, whatever the language
detector says of a short question; a translation that comes back empty or far
longer than the question is not used (the question is read as written).
"""

from __future__ import annotations

import re

from langchain_core.messages import BaseMessage, HumanMessage

from assistant.prompts import PROMPTS_DIR, load_prompt
from assistant.safety import as_data
from assistant.words import english_words

NAMES = {"es": "Spanish", "fr": "French", "pt": "Portuguese", "de": "German",
         "it": "Italian", "zh": "Chinese", "en": "English"}
# a word's letters (any script), and a Chinese character: what the language checks read
LETTERS = re.compile(r"[^\W\d_]+")
HAN = re.compile(r"[\u4e00-\u9fff]")
# a letter of a script other than Latin (the guide's): a reading that keeps one is no
# English question
_OTHER_SCRIPT = re.compile(r"[^\W\d_a-zA-Z\u00c0-\u024f]")


def mostly_english(text: str, share: float = 0.6) -> bool:
    """Are most of the message's words English words? Short words are not counted: an
    English word list holds many words of other languages' (``que``, ``con``, ``la``), so
    only words of four letters or more tell; with none, any ASCII text is taken as English."""
    words = [w.lower() for w in LETTERS.findall(text) if len(w) >= 4]
    if not words:
        return not re.search(r"[^\x00-\x7f]", text)
    english = english_words()
    return sum(w in english for w in words) / len(words) >= share


class QuestionTranslator:
    """The chat model asked for the English of one question (``prefix``: the messages the
    model already holds, so the call costs only the question)."""

    def __init__(self, prompts_dir=PROMPTS_DIR, max_tokens: int = 80) -> None:
        self.prompt = load_prompt("translate_question", prompts_dir)
        self.max_tokens = max_tokens

    def messages(self, prefix: list[BaseMessage], text: str, language: str) -> list[BaseMessage]:
        return [*prefix, HumanMessage(self.prompt.render(
            language=NAMES.get(language, language), question=as_data(text)))]

    def read(self, reply: str, text: str) -> str | None:
        """The English question from the model's reply, or None when it is not usable."""
        line = next((ln.strip() for ln in str(reply).splitlines() if ln.strip()), "")
        line = re.sub(r"^(?:english|translation)\s*:\s*", "", line, flags=re.I)
        line = line.strip(" \"'“”«»")
        if not line or len(line) > 3 * len(text) + 40 or not mostly_english(line, 0.5):
            return None
        if _OTHER_SCRIPT.search(line):  # a word left in the question's own script
            return None
        return line
