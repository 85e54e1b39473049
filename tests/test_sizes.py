"""The package stays in rooms a reader can hold: no module under ``assistant/`` over 400
lines and no class over 250 (the database migrations excepted)."""

from __future__ import annotations

import ast

import pytest

from assistant.config import PACKAGE_ROOT

PACKAGE = PACKAGE_ROOT / "assistant"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_400_lines_and_no_class_over_250(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400, f"{path.name}: {len(text.splitlines())} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            span = (node.end_lineno or node.lineno) - start + 1
            assert span <= 250, f"{path.name}: class {node.name} is {span} lines"


def test_the_modules_checked_are_the_package():
    assert len(MODULES) >= 40
    assert PACKAGE / "answer.py" in MODULES or (PACKAGE / "answer").is_dir()
