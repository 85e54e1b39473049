"""The rooms keep their doors: only the store touches its private names, and the answer
chain gets its turn from the front door (it never cleans, routes or loads a session)."""

from __future__ import annotations

import ast
import re

import pytest

from assistant.config import PACKAGE_ROOT

PACKAGE = PACKAGE_ROOT / "assistant"
OUTSIDE_STORE = sorted(p for p in [*PACKAGE.rglob("*.py"), *(PACKAGE_ROOT / "tests").glob("*.py")]
                       if "store" not in p.relative_to(PACKAGE_ROOT).parts[:2]
                       and p.name != "test_layers.py")
CHAIN = ["answer.py", "interpret.py", "recorder.py", "choose.py", "verify.py"]


def private_store_uses(text: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("assistant.store"):
            found += [a.name for a in node.names if a.name.startswith("_")]
    found += re.findall(r"\bstore\._[a-z]\w*", text)
    return found


@pytest.mark.parametrize("path", OUTSIDE_STORE, ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_nothing_outside_the_store_uses_a_private_store_name(path):
    assert not private_store_uses(path.read_text(encoding="utf-8"))


def test_the_private_name_check_finds_them():
    assert private_store_uses("from assistant.store.engine import _where\nx = self.store._tx()") \
        == ["_where", "store._tx"]
    assert not private_store_uses("from assistant.store import Store\nstore.transaction()")


def door_work(text: str) -> list[str]:
    """Calls of the door's work: cleaning a message, routing it, loading a conversation."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", "")
            if name in {"clean_message", "route", "load", "load_or_create"} or (
                    isinstance(node.func, ast.Attribute) and name == "get"
                    and "session" in ast.unparse(node.func.value)):
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("name", CHAIN)
def test_the_answer_chain_does_no_door_work(name):
    assert not door_work((PACKAGE / name).read_text(encoding="utf-8"))


def test_the_door_work_check_finds_it():
    calls = door_work("t = clean_message(m, 10)\nr = self.rules.route(t)\ns = self.sessions.get(i)")
    assert len(calls) == 3
    assert door_work((PACKAGE / "door.py").read_text(encoding="utf-8"))  # the door does it
