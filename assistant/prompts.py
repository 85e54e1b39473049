"""Prompt files with a strict loader.

A prompt is a YAML file in ``prompts/`` with ``name``, ``version``, ``variables``
and ``template`` (``{name}`` placeholders). Loading checks that the declared
variables are exactly the template's placeholders; rendering checks that exactly
those values are given. Each answer records the name and version it used.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.config import PACKAGE_ROOT
from assistant.errors import PromptError

PROMPTS_DIR = PACKAGE_ROOT / "prompts"


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    template: str
    variables: frozenset[str]

    def render(self, **values: object) -> str:
        given = set(values)
        if given != self.variables:
            missing, extra = self.variables - given, given - self.variables
            raise PromptError(
                f"Prompt {self.name} v{self.version}: missing {sorted(missing)}, "
                f"unexpected {sorted(extra)}"
            )
        return self.template.format(**values)

    @property
    def ref(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    path = directory / f"{name}.yaml"
    if not path.exists():
        raise PromptError(f"Prompt file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PromptError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not {"name", "version", "template", "variables"} <= set(data):
        raise PromptError(f"{path}: needs name, version, variables and template")
    template = str(data["template"])
    placeholders = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    declared = frozenset(str(v) for v in data["variables"] or [])
    if placeholders != declared:
        raise PromptError(
            f"{path}: template placeholders {sorted(placeholders)} differ from declared "
            f"variables {sorted(declared)}"
        )
    if data["name"] != name:
        raise PromptError(f"{path}: name is {data['name']!r}, expected {name!r}")
    return Prompt(str(data["name"]), str(data["version"]), template, declared)


@dataclass(frozen=True)
class Texts:
    """A file of fixed, reviewed templates (``templates: {name: {variables, template}}``)."""

    name: str
    version: str
    templates: dict[str, Prompt]

    def render(self, key: str, **values: object) -> str:
        if key not in self.templates:
            raise PromptError(f"{self.name} v{self.version}: no template {key!r}")
        return self.templates[key].render(**values)

    def patterns(self) -> list[re.Pattern[str]]:
        """Each template as a pattern its rendered text matches (variables: any text)."""
        out = []
        for prompt in self.templates.values():
            parts = re.split(r"\{[a-z_]+\}", prompt.template)
            out.append(re.compile("^" + "(.+?)".join(re.escape(p) for p in parts) + "$", re.S))
        return out

    @property
    def ref(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


def load_texts(name: str, directory: Path = PROMPTS_DIR, needs: tuple[str, ...] = ()) -> Texts:
    path = directory / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise PromptError(f"Prompt file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise PromptError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("templates"), dict):
        raise PromptError(f"{path}: needs name, version and templates")
    if data.get("name") != name:
        raise PromptError(f"{path}: name is {data.get('name')!r}, expected {name!r}")
    templates = {}
    for key, spec in data["templates"].items():
        template = str((spec or {}).get("template", ""))
        placeholders = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        declared = frozenset(str(v) for v in (spec or {}).get("variables") or [])
        if not template or placeholders != declared:
            raise PromptError(f"{path}: template {key!r} must declare exactly its placeholders")
        templates[str(key)] = Prompt(f"{name}.{key}", str(data.get("version")), template, declared)
    missing = [k for k in needs if k not in templates]
    if missing:
        raise PromptError(f"{path}: missing templates {missing}")
    return Texts(name, str(data.get("version")), templates)
