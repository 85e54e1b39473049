"""The patient's language around the guide's English sentences.

Two things, both for a question triage found to be in another offered language:

* **The answer's own texts** (not covered, the partial opening, the offer, the closing,
  the decline, the handoff) come from the reviewed ``answer`` texts of
  ``prompts/replies/<language>.yaml``; English keeps ``prompts/answer_text.yaml``. They
  are never written by a model.
* **Each cited guide sentence gets an automatic translation**, shown beside the English
  sentence and labelled as such, only when it passes a check: the chat model translates
  the sentence, then translates its translation back into English, and the translation is
  shown only if the back-translation means what the guide's sentence says (MiniLM cosine
  similarity at least ``translation_check_similarity``), keeps the sentence's numbers and
  its negation, and is in the patient's language at all, with no word that language does
  not have (``wordfreq``'s lists; a word of the English sentence, a name, may stay). The
  back-translation alone misses the small model's invented words ("Scarren", "tissura"):
  it reads them back as what it meant. A translation that fails is not shown: the patient
  reads the English sentence with a one-line note in their language. The English
  sentence, cited, is always what the answer states.

A guide sentence's checked translation is kept (in memory and, with a ``cache`` path, on
disk: guide text only, never a patient's), so each sentence is translated once per
language and model.
"""

from __future__ import annotations

import json
import re
import string
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml
from langchain_core.embeddings import Embeddings

from assistant.errors import ConfigError
from assistant.prompts import PROMPTS_DIR, load_prompt, load_texts
from assistant.records import Translation
from assistant.safety import as_data
from assistant.terms import terms_hint
from assistant.translate import HAN, LETTERS, NAMES, mostly_english

# the answer's own texts; English has them in prompts/answer_text.yaml
ANSWER_KEYS = ("none", "offer", "partial", "closing", "declined", "handoff")
# shown only beside translations, so English needs none
LABEL_KEYS = ("label", "unchecked")

CHECK_VERSION = "2"  # a kept translation was checked by this version of ``check``
COGNATE_RATIO = 0.8  # how alike a word must be to an English one to pass as its cognate
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nor|neither|cannot|without|nothing)\b|n't\b", re.I
)
_LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


@dataclass(frozen=True)
class AnswerTexts:
    """One language's answer texts (``render`` as the English ``Texts`` does)."""

    language: str
    version: str
    texts: dict[str, str]

    def render(self, key: str, **values: object) -> str:
        return self.texts[key].format(**values) if values else self.texts[key]


def _english(directory: Path) -> AnswerTexts:
    texts = load_texts("answer_text", directory, ANSWER_KEYS)
    return AnswerTexts("en", texts.version, {k: p.template for k, p in texts.templates.items()})


def _load(path: Path) -> AnswerTexts | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not readable ({exc})") from None
    answer = data.get("answer") if isinstance(data, dict) else None
    if answer is None:
        return None  # the fixed replies only: answers in this language use English texts
    missing = [k for k in (*ANSWER_KEYS, *LABEL_KEYS) if not str(answer.get(k) or "").strip()]
    if missing:
        raise ConfigError(f"{path}: answer texts missing {missing}")
    for key, text in answer.items():
        if any(field for _, field, _, _ in string.Formatter().parse(str(text))):
            raise ConfigError(f"{path}: answer text {key!r} may not have placeholders")
    return AnswerTexts(path.stem, str(data.get("version", "1")),
                       {str(k): " ".join(str(v).split()) for k, v in answer.items()})


@lru_cache(maxsize=8)
def all_answer_texts(directory: Path = PROMPTS_DIR) -> dict[str, AnswerTexts]:
    """English's and every language's answer texts that ``prompts/replies`` has."""
    found = {"en": _english(directory)}
    for path in sorted((directory / "replies").glob("*.yaml")):
        if path.stem != "en" and (texts := _load(path)) is not None:
            found[path.stem] = texts
    return found


def answer_texts(language: str, directory: Path = PROMPTS_DIR) -> AnswerTexts:
    """The answer texts in ``language``, English when it has none."""
    everything = all_answer_texts(directory)
    return everything.get(language, everything["en"])


def template_patterns(directory: Path = PROMPTS_DIR) -> list[re.Pattern[str]]:
    """Every answer text of every language as a pattern its rendered text matches
    (variables: any text): what an answer may show besides guide sentences."""
    patterns = list(load_texts("answer_text", directory).patterns())
    for language, texts in all_answer_texts(directory).items():
        if language != "en":
            patterns += [re.compile("^" + re.escape(texts.texts[k]) + "$")
                         for k in ("partial", "none", "offer", "closing")]
    return patterns


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word.lower())
                   if not unicodedata.combining(c))


def _cognate(word: str, originals: set[str]) -> bool:
    """A medical term is mostly a cognate of the English one ("subcisión", "fibróticas"):
    spelled alike, accents aside. An invented word rarely is ("Scarren", "Fillerungen")."""
    folded = _fold(word)
    return any(SequenceMatcher(None, folded, _fold(o)).ratio() >= COGNATE_RATIO
               for o in originals if len(o) >= 5)


def _not_words(text: str, original: str, language: str) -> list[str]:
    """Words of a translation that are not words of its language, nor of the English
    sentence (a name or a treatment kept as it is), nor cognates of its words. Chinese: an
    English word left in it (an abbreviation such as PRP may stay)."""
    kept = {w.lower() for w in LETTERS.findall(original)}
    if language == "zh":
        return [w for w in _LATIN_WORD.findall(text) if not w.isupper() and w.lower() in kept]
    from wordfreq import available_languages, zipf_frequency

    if language not in available_languages():
        return []
    return [w for w in LETTERS.findall(text) if len(w) >= 3 and w.lower() not in kept
            and zipf_frequency(w, language) == 0 and not _cognate(w, kept)]


def _numbers(text: str) -> list[str]:
    """The numbers a text states (a decimal comma read as a point)."""
    return sorted(n.replace(",", ".") for n in _NUMBER.findall(text))


@dataclass(frozen=True)
class Check:
    passed: bool
    similarity: float | None
    problems: list[str]


class SentenceTranslator:
    """A guide sentence into the patient's language and back, and the check between.

    ``ask(prompt_text)`` is the chat model's reply to one user message after the prefix it
    holds (the Assistant supplies it, so the guide prefix llama.cpp keeps is reused)."""

    def __init__(self, embeddings: Embeddings | None, prompts_dir: Path = PROMPTS_DIR,
                 threshold: float = 0.85, max_tokens: int = 160,
                 cache: Path | None = None) -> None:
        self.prompt = load_prompt("translate_sentence", prompts_dir)
        self.prompts_dir = prompts_dir
        self.embeddings = embeddings
        self.threshold = threshold
        self.max_tokens = max_tokens
        self.cache = cache
        self._lock = threading.Lock()
        self._done: dict[str, dict] = self._read_cache()

    def _key(self, sentence: str, language: str) -> str:
        return f"{CHECK_VERSION}|{self.prompt.version}|{self.threshold}|{language}|{sentence}"

    def _read_cache(self) -> dict[str, dict]:
        if self.cache is None or not self.cache.exists():
            return {}
        try:
            data = json.loads(self.cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # a damaged cache is rebuilt, sentence by sentence
        return data if isinstance(data, dict) else {}

    def _remember(self, key: str, done: Translation) -> None:
        with self._lock:
            self._done[key] = done.model_dump(exclude={"n", "shown"})
            if self.cache is None:
                return
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            partial = self.cache.with_suffix(".tmp")
            partial.write_text(json.dumps(self._done, ensure_ascii=False), encoding="utf-8")
            partial.replace(self.cache)

    def render(self, sentence: str, source: str, target: str) -> str:
        return self.prompt.render(
            source=NAMES.get(source, source), target=NAMES.get(target, target),
            sentence=as_data(sentence),
            terms=terms_hint(sentence, source, target, self.prompts_dir))

    @staticmethod
    def line(reply: object) -> str:
        """The translation in a reply: its first non-empty line, labels and quotes off."""
        text = str(getattr(reply, "content", reply) or "")
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        first = re.sub(r"^(?:[A-Za-z]+ )?(?:translation|traducción|traduction|tradução|"
                       r"übersetzung|traduzione|翻译)\s*[:：]\s*", "", first, flags=re.I)
        return first.strip(" \"'“”«»„")

    def translate(self, ask: Callable[[str], object], n: int, sentence: str,
                  language: str) -> Translation:
        """The translation of one sentence, checked. A failing model call fails the check
        (the English sentence is what the patient then reads) and is not kept."""
        key = self._key(sentence, language)
        with self._lock:
            kept = self._done.get(key)
        if kept is not None:
            return Translation(n=n, **kept)
        try:
            text = self.line(ask(self.render(sentence, "en", language)))
            back = self.line(ask(self.render(text, language, "en"))) if text else ""
        except Exception:  # noqa: BLE001 - any backend failure: no translation shown
            return Translation(n=n, language=language, text="", passed=False,
                               problems=["the model call failed"])
        check = self.check(sentence, text, back, language)
        done = Translation(n=n, language=language, text=text, back=back,
                           similarity=check.similarity, passed=check.passed,
                           problems=check.problems)
        self._remember(key, done)
        return done

    def check(self, original: str, text: str, back: str, language: str) -> Check:
        """Is ``text`` (in ``language``, put back into English as ``back``) a faithful
        translation of the guide's ``original``?"""
        problems = []
        if not text:
            return Check(False, None, ["no translation"])
        if (not HAN.search(text)) if language == "zh" else mostly_english(text, 0.5):
            problems.append("not in the patient's language")
        else:
            strange = _not_words(text, original, language)
            if strange:
                problems.append(f"not {NAMES.get(language, language)} words: {strange[:3]}")
        if len(text) > 3 * len(original) + 40:
            problems.append("far longer than the sentence")
        if _numbers(original) != _numbers(text):
            problems.append("its numbers differ from the guide's")
        if bool(_NEGATION.search(original)) != bool(_NEGATION.search(back)):
            problems.append("a negation was lost or added")
        similarity = self.similarity(original, back) if back else None
        if similarity is None:
            problems.append("no back-translation to compare")
        elif similarity < self.threshold:
            problems.append(f"its back-translation differs from the guide ({similarity:.2f})")
        return Check(not problems, similarity, problems)

    def similarity(self, a: str, b: str) -> float | None:
        if self.embeddings is None:
            return None
        va, vb = (np.asarray(v, dtype=float) for v in self.embeddings.embed_documents([a, b]))
        norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
        return round(float(va @ vb) / norm, 4) if norm else None
