"""The reviewed words of each language (``terms`` in ``prompts/replies/<language>.yaml``):
the guide's common English words and this language's, given to the translation model with
a guide sentence (or its translation, going back) that holds one. The small model
otherwise invents words for the commonest ones ("Scarren", "scarpe" for scars). Reviewed
like the fixed replies; never written by a model.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import yaml

from assistant.errors import ConfigError
from assistant.prompts import PROMPTS_DIR
from assistant.translate import HAN


@lru_cache(maxsize=16)
def terms_for(language: str, directory: Path = PROMPTS_DIR) -> dict[str, str]:
    """The reviewed words of ``prompts/replies/<language>.yaml`` (``terms``): the guide's
    English word -> this language's. None for English or a language without them."""
    path = directory / "replies" / f"{language}.yaml"
    if language == "en" or not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not readable ({exc})") from None
    terms = data.get("terms") or {}
    if not isinstance(terms, dict) or not all(str(k).strip() and str(v).strip()
                                              for k, v in terms.items()):
        raise ConfigError(f"{path}: terms must map English words to this language's")
    return {str(k): str(v) for k, v in terms.items()}


def _found(word: str, text: str) -> bool:
    if HAN.search(word):
        return word in text
    return re.search(rf"(?<![^\W\d_]){re.escape(word.lower())}(?![^\W\d_])",
                     text.lower()) is not None


def terms_hint(text: str, source: str, target: str, directory: Path = PROMPTS_DIR,
               most: int = 10) -> str:
    """The reviewed words that ``text`` (in ``source``) holds, as a line for a translation
    prompt ("Words to use: scars = cicatrices; …"), or ''."""
    foreign = target if source == "en" else source
    pairs = list(terms_for(foreign, directory).items())
    if source != "en":
        pairs = [(theirs, en) for en, theirs in pairs]
    found = list(dict.fromkeys(f"{a} = {b}" for a, b in pairs if _found(a, text)))[:most]
    return f"Words to use: {'; '.join(found)}." if found else ""


def _plain(text: str) -> str:
    """Lower case, accents off ("Acné" -> "acne")."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text.lower())
                   if not unicodedata.combining(ch))


def _holds_theirs(term: str, text: str) -> bool:
    """Does ``text`` (the patient's words) hold the reviewed word ``term`` of their
    language? Chinese by characters; a phrase as written; a word whole, or inside a longer
    word when it has five letters or more (German compounds: "Hautoberfläche")."""
    if HAN.search(term):
        return term in text
    term, text = _plain(term), _plain(text)
    if " " in term or len(term) < 5:
        return re.search(rf"(?<![^\W\d_]){re.escape(term)}(?![^\W\d_])", text) is not None
    return term in text


def _holds_english(term: str, text: str) -> bool:
    """Does ``text`` (an English reading) hold every word of ``term``, in any of its forms
    (a word starting like it: "heal" in "healing", "needle" in "needles")?"""
    said = [w.lower() for w in re.findall(r"[A-Za-z]+", text)]
    return all(any(w.startswith(t if len(t) <= 4 else t[:-1]) for w in said)
               for t in term.lower().split())


def terms_lost(question: str, reading: str, language: str,
               directory: Path = PROMPTS_DIR) -> list[tuple[str, str]]:
    """The reviewed words the patient wrote (their language's, English's) that the English
    reading of their question does not carry: "grano" read as "grain", not "pimple"."""
    return [(en, theirs) for en, theirs in terms_for(language, directory).items()
            if _holds_theirs(theirs, question) and not _holds_english(en, reading)]
