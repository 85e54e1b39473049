"""The reviewed words of each language (``terms`` in ``prompts/replies/<language>.yaml``):
the guide's common English words and this language's, given to the translation model with
a guide sentence (or its translation, going back) that holds one. The small model
otherwise invents words for the commonest ones ("Scarren", "scarpe" for scars). Reviewed
like the fixed replies; never written by a model.
"""

from __future__ import annotations

import re
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
