"""The fixed urgent and crisis replies, in every language on offer.

Each language has one reviewed file, ``prompts/replies/<language>.yaml``, with the
``urgent`` and ``crisis`` replies and the handoff's ``follow_up`` line. The replies are
never written by a model; ``{emergency_number}`` and ``{crisis_line}`` come from
settings. A language without a file gets English. Loading is strict: a file with a
missing reply or an unknown placeholder stops the program with its name.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from assistant.errors import ConfigError

_KEYS = ("urgent", "crisis", "follow_up")
_ALLOWED = {"emergency_number", "crisis_line"}


@dataclass(frozen=True)
class Replies:
    language: str
    name: str
    version: str
    urgent: str
    crisis: str
    follow_up: str

    def render(self, kind: str, emergency_number: str, crisis_line: str) -> str:
        template = " ".join(getattr(self, kind).split())
        return template.format(emergency_number=emergency_number, crisis_line=crisis_line)


def _load(path: Path) -> Replies:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not readable ({exc})") from None
    if not isinstance(data, dict) or not {"language", "name", "version", *_KEYS} <= set(data):
        raise ConfigError(f"{path}: needs language, name, version, urgent, crisis, follow_up")
    for key in _KEYS:
        fields = {f for _, f, _, _ in string.Formatter().parse(str(data[key])) if f}
        if not fields <= _ALLOWED:
            unknown = sorted(fields - _ALLOWED)
            raise ConfigError(f"{path}: {key} uses unknown placeholders {unknown}")
    if data["language"] != path.stem:
        raise ConfigError(f"{path}: language is {data['language']!r}, expected {path.stem!r}")
    return Replies(*(str(data[k]) for k in ("language", "name", "version", *_KEYS)))


@lru_cache(maxsize=8)
def all_replies(directory: Path) -> dict[str, Replies]:
    """Every language's replies in ``<directory>/replies``; English must be there."""
    found = {p.stem: _load(p) for p in sorted((directory / "replies").glob("*.yaml"))}
    if "en" not in found:
        raise ConfigError(f"{directory / 'replies'}: en.yaml (English) is required")
    return found


def replies_for(language: str, directory: Path) -> Replies:
    """The replies in ``language``, English when there are none in it."""
    everything = all_replies(directory)
    return everything.get(language, everything["en"])
