"""The docs stay true to the code: the README fits on a screen and leads to every page,
every link and image resolves, and every command they show exists with the options
shown (its ``--help`` runs and names them)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.config import PACKAGE_ROOT

README = PACKAGE_ROOT / "README.md"
DOCS = sorted((PACKAGE_ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
COMMAND = re.compile(r"`scarguide((?: [^`]*)?)`")
MAKE = re.compile(r"`make ([a-z][a-z-]*)")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def commands() -> list[tuple[str, str]]:
    found = {(page.name, m.group(1).strip()) for page in PAGES
             for m in COMMAND.finditer(page.read_text(encoding="utf-8"))}
    return sorted(found)


@cache
def help_of(words: tuple[str, ...]) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*words, "--help"])
    return result.exit_code, result.output


def test_the_readme_fits_on_a_screen_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode()) < 12_000, len(text.encode())
    first = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first and text.index(first.group(0)) < 200
    assert [line.split("#")[0].strip() for line in first.group(1).splitlines()] == [
        "make run", "make test"]


def test_the_readme_links_every_docs_page():
    text = README.read_text(encoding="utf-8")
    assert DOCS
    for page in DOCS:
        assert f"](docs/{page.name})" in text, page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_image_resolves(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("/"):
            continue  # a URL, or a path of the running app
        assert (page.parent / target).exists(), f"{page.name}: {target}"


@pytest.mark.parametrize("page,command", commands())
def test_every_command_shown_exists_with_its_options(page, command):
    leading = []  # the subcommand: the words before the first option or argument
    for word in command.split():
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        leading.append(word)
    words = tuple(leading)
    code, shown = help_of(words)
    assert code == 0, f"{page}: scarguide {' '.join(words)} --help exited {code}: {shown}"
    for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", command):
        assert option in shown, f"{page}: {command}: no {option} in its --help"


def test_every_make_target_shown_exists():
    makefile = (PACKAGE_ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for page in PAGES:
        for target in MAKE.findall(page.read_text(encoding="utf-8")):
            assert target in targets, f"{page.name}: make {target}"


def test_the_pages_checked_are_the_real_ones():
    """The patterns above find what the docs hold (a test that finds nothing checks nothing)."""
    assert len(commands()) >= 20
    assert any(LINK.findall(p.read_text(encoding="utf-8")) for p in DOCS)
    assert Path(README).exists()


def headline_rows() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Headline numbers", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines()
            if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows[2:]]  # past the header and rule


def test_every_headline_number_states_the_run_that_made_it():
    """A number in the README comes with the command that measures it, and that command
    exists (the test above runs its ``--help``)."""
    rows = headline_rows()
    assert len(rows) >= 8
    for what, number, command in rows:
        assert re.search(r"\d", number), what
        assert COMMAND.search(command) or MAKE.search(command), f"{what}: no command"
