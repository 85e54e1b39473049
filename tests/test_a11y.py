"""Keyboard and screen reader, in a real headless Chromium against a real server (the
packaged MiniLM, Chroma on disk, the local model, SQLite).

axe-core (``make browser`` installs it from npm into ``.axe/``) is injected into every
page a patient or a member of staff sees, in the states that matter: the first screen, an
answer, its sources open, a "not covered" answer, the booking form, a booking sent (each
in the light and the dark theme), the guide, and each staff page. A violation of impact
``serious`` or ``critical`` fails the test, listed by page with its rule, its elements
and axe's summary. Two checks of ours count as violations too (``tests/browser.py``): a
placeholder under 4.5:1, and text the colour of its background (axe leaves that "to
review"). Every page's whole list, minor and moderate too, is kept in
``test-artifacts/a11y/`` (``summary.json``: counts by page and rule).

Then the keyboard: after an answer, Tab from the top of the page reaches the answer's
markers, its Sources, copy and thumbs in reading order, before the question box and the
page's own buttons, and Shift+Tab from the question box reaches that answer's controls
first; every control has a name and a visible focus."""

from __future__ import annotations

import json
import re

import pytest

from assistant.config import PACKAGE_ROOT
from tests.browser import (
    STAFF_PASSWORD,
    STAFF_USER,
    blocking,
    browser_page,
    describe,
    focused,
    real_server,
    run_axe,
    tab_through,
)

pytestmark = pytest.mark.real

ARTIFACTS = PACKAGE_ROOT / "test-artifacts"
SOURCES = "#chat .thought-group .title"


@pytest.fixture(scope="module")
def server(real_services, tmp_path_factory):
    with real_server(real_services, tmp_path_factory.mktemp("a11y")) as srv:
        yield srv


def field(page, elem_id: str):
    """A Gradio field's control by its block's id (labels change; ids stay)."""
    return page.locator(f"#{elem_id} input:not([type=hidden]), #{elem_id} textarea").first


def ask(page, question: str) -> None:
    field(page, "msg").fill(question)
    page.locator("#send").click()


def answered(page, n: int) -> None:
    """Wait for the n-th answer with sources (1-based) to be shown whole."""
    page.locator(SOURCES, has_text="Sources").nth(n - 1).wait_for()


def summary(found: dict[str, list[dict]]) -> dict:
    """Counts by page and rule (elements), every impact: what a report quotes."""
    return {page: {f"{v['id']} ({v['impact']})": len(v["nodes"]) for v in violations}
            for page, violations in found.items()}


def test_no_serious_or_critical_axe_violation_on_any_page(server):
    found: dict[str, list[dict]] = {}

    def check(page, name: str, themes: tuple[str, ...] = ("light",)) -> None:
        """axe on the page at rest; on a patient's page, also on the dark theme (Gradio's
        when the system asks for it)."""
        for theme in themes:
            if theme != "light":
                page.emulate_media(color_scheme=theme)  # Gradio follows it at once
                page.wait_for_function("() => document.body.classList.contains('dark')")
            key = name if theme == "light" else f"{name}-{theme}"
            found[key] = run_axe(page, key, ARTIFACTS)
            if theme != "light":
                page.emulate_media(color_scheme="light")
                page.wait_for_function("() => !document.body.classList.contains('dark')")

    both = ("light", "dark")
    with browser_page(ARTIFACTS, bypass_csp=True) as page:
        # the patient's page
        page.goto(server.url + "/")
        field(page, "msg").wait_for()
        page.locator("#starters button").first.wait_for()
        check(page, "patient-first-screen", both)

        ask(page, "acne marks vs scars")
        answered(page, 1)
        check(page, "patient-answer", both)
        page.locator(SOURCES, has_text="Sources").first.click()
        page.locator("#chat .thought-group .content").first.wait_for()
        check(page, "patient-answer-sources-open", both)

        ask(page, "can you recommend a good pizza place near me")
        page.locator("#nearby button.suggestion:visible").first.wait_for()
        check(page, "patient-not-covered", both)

        page.locator("#book-btn").click()
        field(page, "b-name").wait_for()
        check(page, "patient-booking-form", both)
        field(page, "b-name").fill("Alex Doe")
        field(page, "b-email").fill("alex@example.org")
        field(page, "b-times").fill("Monday mornings")
        page.locator("#b-consent input[type=checkbox]").check()
        page.locator("#b-submit").click()
        page.locator("#booking-ref").wait_for()
        check(page, "patient-booking-sent", both)

        # the guide, and its skip link as it shows on focus
        page.goto(server.url + "/guide")
        page.get_by_role("heading", level=1).wait_for()
        check(page, "guide")  # one theme: the guide and the console have no dark styles
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        check(page, "guide-skip-link-focused")

        # the staff console: every page, with the answers and the booking above in it
        page.goto(server.url + "/staff/queue")
        page.get_by_label("Username").wait_for()
        check(page, "staff-login")
        page.get_by_label("Username").fill(STAFF_USER)
        page.get_by_label("Password").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", name="Review queue").wait_for()
        check(page, "staff-queue")
        page.locator("tr", has_text="acne marks vs scars").locator(
            "a[aria-label^='Open answer']").first.click()
        page.get_by_role("heading", name="Shown answer").wait_for()
        check(page, "staff-answer")
        page.locator("#conversation-link").click()
        page.locator("#turns").wait_for()
        assert "/staff/conversations/" in page.url
        check(page, "staff-conversation")
        page.goto(server.url + "/staff/bookings")
        page.locator("#bookings tr.booking").first.wait_for()
        check(page, "staff-bookings")
        page.goto(server.url + "/staff/gaps")
        page.get_by_role("heading", name="Content gaps").wait_for()
        check(page, "staff-gaps")
        page.goto(server.url + "/staff/audit")
        page.get_by_role("heading", name="Audit log").wait_for()
        check(page, "staff-audit")

    (ARTIFACTS / "a11y" / "summary.json").write_text(json.dumps(summary(found), indent=1))
    problems = {name: blocking(v) for name, v in found.items() if blocking(v)}
    if problems:
        pytest.fail("serious or critical accessibility violations:\n" + "\n".join(
            describe(name, v) for name, v in problems.items()), pytrace=False)


@pytest.fixture(scope="module")
def answer_page(server):
    """A patient's page after one answer with its sources, for the keyboard tests."""
    with browser_page(ARTIFACTS) as page:
        page.goto(server.url + "/")
        ask(page, "what are rolling scars?")
        answered(page, 1)
        yield page


def fresh(page) -> None:
    """The same conversation again (the tab keeps it), the sources closed, no focus."""
    page.reload()
    answered(page, 1)
    field(page, "msg").wait_for()


def names_of(reached: list[dict | None]) -> list[str]:
    return [f"{r['name']} ({r['role'] or r['tag']})" if r else "(outside the page)"
            for r in reached]


def keep(name: str, reached: list[dict | None]) -> None:
    (ARTIFACTS / "a11y").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "a11y" / f"{name}.json").write_text(json.dumps(names_of(reached), indent=1))


def test_tab_from_the_top_reaches_the_answers_controls_in_reading_order(answer_page):
    page = answer_page
    fresh(page)
    # a sensible start: the top of the page (its heading), as after a page load
    page.locator("#title").click()
    reached = tab_through(page, 40, until=lambda f: f["name"] == "Send")
    keep("tab-from-top", reached)
    names = names_of(reached)
    order = [r["name"] if r else "" for r in reached]
    assert "Your question" in order, f"Tab never reached the question box: {names}"
    question = order.index("Your question")
    assert order[question + 1] == "Send", names
    markers = [i for i, n in enumerate(order) if re.fullmatch(r"\[\d+\]", n)]
    assert markers, f"no [n] marker of the answer in the tab order: {names}"
    sources = next(i for i, n in enumerate(order) if n.startswith("Sources ("))
    copy = next(i for i, n in enumerate(order) if n == "Copy message" and i > sources)
    thumbs = [i for i, n in enumerate(order) if n in ("Like", "Dislike")]
    assert len(thumbs) == 2, names
    # the answer's text (its markers), its Sources, copy, thumbs: as a reader meets them
    assert max(markers) < sources < copy < min(thumbs) and max(thumbs) < question, names
    # each of these belongs to the answer, and the page's own buttons all come after it
    answer = reached[markers[0]:question]
    assert all(r and r["in_chat"] for r in answer), names
    assert all(r and r["name"] for r in reached[:question + 2]), f"a stop has no name: {names}"


def test_shift_tab_from_the_question_box_reaches_the_answers_controls_first(answer_page):
    page = answer_page
    fresh(page)
    field(page, "msg").focus()  # where the focus is after sending a question
    reached = []
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        reached.append(focused(page))
        if reached[-1] and reached[-1]["name"].startswith("Sources ("):
            break
    keep("shift-tab-from-question", reached)
    names = names_of(reached)
    order = [r["name"] if r else "" for r in reached]
    assert order[-1].startswith("Sources ("), f"Shift+Tab did not reach the Sources: {names}"
    # back through the answer: its thumbs, its copy, its Sources, nothing else between
    assert sorted(order[:2]) == ["Dislike", "Like"] and order[2] == "Copy message", names
    assert len(order) == 4 and all(r["in_chat"] for r in reached), names


def test_every_control_has_a_name(answer_page):
    page = answer_page
    fresh(page)
    page.locator(SOURCES, has_text="Sources").first.click()
    page.locator("#chat .thought-group .content").first.wait_for()
    unnamed = page.evaluate("""() => [...document.querySelectorAll(
        'button, [role=button], a[href], input:not([type=hidden]), textarea, select')]
      .filter(el => el.getClientRects().length)
      .filter(el => !((el.getAttribute('aria-label') || '').trim()
        || (el.getAttribute('aria-labelledby') || '').trim()
        || (el.labels && [...el.labels].some(l => l.textContent.trim()))
        || (el.innerText || '').trim() || (el.getAttribute('title') || '').trim()))
      .map(el => el.outerHTML.slice(0, 200))""")
    assert not unnamed, unnamed


def test_every_stop_shows_its_focus(answer_page):
    page = answer_page
    fresh(page)
    page.locator("#title").click()
    hidden = []
    for _ in range(40):
        page.keyboard.press("Tab")
        style = page.evaluate("""() => { const el = document.activeElement;
          const s = getComputedStyle(el);
          return {outline: s.outlineStyle, width: parseFloat(s.outlineWidth) || 0,
                  shadow: s.boxShadow, id: el.id,
                  name: (el.getAttribute('aria-label') || el.innerText || el.tagName)
                    .trim().slice(0, 60)}; }""")
        if style["outline"] == "none" and style["shadow"] in ("", "none"):
            hidden.append(style["name"])
        if style["name"] == "Send":
            break
    assert not hidden, f"no visible focus on: {hidden}"


MARKDOWN = re.compile(r"\*\*|\\[\[\]\\*_()#!`:]|\]\(/|&amp;|&lt;|&gt;")


def test_each_messages_accessible_label_is_plain_text(answer_page):
    """Gradio names each message by its raw content (Markdown in it); the page renames
    each from the text shown (PLAIN_LABELS_JS), and again when Gradio sets it back."""
    page = answer_page
    fresh(page)
    read = "els => els.map(e => [e.getAttribute('aria-label') || '', e.innerText])"
    messages = "#chat [data-testid=bot], #chat [data-testid=user]"
    page.wait_for_function(
        """(sel) => { const els = [...document.querySelectorAll(sel)];
             return els.length && els.every(e => (e.getAttribute('aria-label') || '')
               .startsWith(e.dataset.testid === 'user' ? 'You: ' : 'The assistant: ')); }""",
        arg=messages, timeout=10_000)
    labels = page.locator(messages).evaluate_all(read)
    assert labels, "no message in the chat"
    marked = [label[:160] for label, _ in labels if MARKDOWN.search(label)]
    assert not marked, marked
    for label, shown in labels:  # the name is what the patient reads, not a stand-in
        assert " ".join(shown.split())[:40] in label, (label[:80], shown[:80])
