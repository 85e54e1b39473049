"""The patients' page in a real headless Chromium (Debian package) driven by Playwright,
against a real server: the packaged MiniLM, Chroma on disk, the local 1.5B model, SQLite.

Screenshots go to ``test-artifacts/`` (the ones in ``docs/`` come from this test)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from assistant.config import PACKAGE_ROOT
from tests.browser import browser_page, share_model_files
from tests.server import running

pytestmark = pytest.mark.real

ARTIFACTS = PACKAGE_ROOT / "test-artifacts"
STAFF_PASSWORD = "a long staff password"


@pytest.fixture(scope="module")
def server(real_services, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    data_dir = root / "data"
    share_model_files(real_services.settings.data_dir, data_dir)
    env = {"SCARGUIDE_DATA_DIR": str(data_dir), "SCARGUIDE_PROFILE": "default"}
    staff = subprocess.run(
        [str(Path(sys.executable).with_name("scarguide")), "staff", "add", "sam",
         "--password-stdin"],
        input=STAFF_PASSWORD + "\n", text=True, capture_output=True, cwd=PACKAGE_ROOT,
        env={**os.environ, **env}, check=True,
    )
    assert "created" in staff.stdout
    with running(env, root / "server.log", timeout=900) as srv:
        srv.db = data_dir / "scarguide.db"
        guide = httpx.get(srv.url + "/guide", timeout=30)
        assert guide.status_code == 200 and "<main" in guide.text, (
            "the server does not serve the guide page: create_app must include "
            "assistant.web.guide.guide_router before the Gradio mount at /")
        yield srv


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def ask(page, question: str) -> None:
    page.get_by_label("Your question", exact=True).fill(question)
    page.get_by_role("button", name="Send", exact=True).click()


def in_view(page, locator) -> bool:
    """Is the element wholly inside the viewport (above the fold)?"""
    box = locator.bounding_box()
    size = page.viewport_size
    return (box is not None and box["x"] >= 0 and box["y"] >= 0
            and box["x"] + box["width"] <= size["width"]
            and box["y"] + box["height"] <= size["height"])


def overlaps_view(page, locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] < page.viewport_size["height"] and (
        box["y"] + box["height"] > 0)


def shown_once(page, text: str) -> bool:
    return page.locator("body").inner_text().count(text) == 1


def fill_booking(page, email: str = "alex@example.org") -> None:
    page.get_by_label("Your name (required)").fill("Alex Doe")
    page.get_by_label("Email (required, or give a phone number)", exact=True).fill(email)
    page.get_by_label("When can we reach you? (days and times), required").fill("Monday mornings")
    page.get_by_label("I agree that the clinic may contact me about this request.").check()


def focus_in(page, selector: str) -> None:
    """Wait until the focused element is inside ``selector``."""
    page.wait_for_function(
        "(s) => !!(document.activeElement && document.activeElement.closest(s))", arg=selector)


def suggestions(page) -> list[str]:
    return [t.strip() for t in page.locator("#nearby button.suggestion:visible").all_inner_texts()]


def test_patient_asks_opens_sources_meets_a_gap_and_books(server):
    with browser_page(ARTIFACTS) as page:
        page.goto(server.url + "/")
        assert "not a diagnosis" in page.locator("#notice").inner_text()

        ask(page, "acne marks vs scars")
        sources = page.locator("#chat .thought-group .title", has_text="Sources").first
        sources.wait_for()
        answer = page.locator("#chat [data-testid=bot]").first.inner_text()
        assert "[1]" in answer and "scar" in answer.lower()
        sources.click()
        panel = page.locator("#chat .thought-group .content").first
        panel.wait_for()
        assert "Acne marks vs. acne scars" in panel.inner_text()
        assert "“" in panel.inner_text()  # the exact quote
        # the source's section links to its place in the guide page
        assert panel.locator("a[href^='/guide#']").count() >= 1
        shot(page, "1-answer-with-sources")

        # the [1] marker opens its source at its place in the guide, in a new tab
        marker = page.locator("#chat [data-testid=bot] a", has_text="[1]").first
        href = marker.get_attribute("href")
        target = href.split("#", 1)[1].split(":~:")[0]
        assert marker.get_attribute("target") == "_blank"
        with page.context.expect_page() as opened:
            marker.click()
        guide = opened.value
        guide.wait_for_load_state()
        guide.wait_for_function("() => window.scrollY > 0")  # scrolled to the passage
        assert guide.url.startswith(server.url + "/guide#" + target)
        assert guide.locator("html").get_attribute("lang") == "en"
        passage = guide.locator(f"[id='{target}']")
        assert overlaps_view(guide, passage), passage.bounding_box()
        assert "acne marks" in passage.inner_text().lower()
        assert guide.get_by_role("heading", name="Acne marks vs. acne scars").count() == 1
        guide.screenshot(path=str(ARTIFACTS / "8-source-in-guide.png"))  # as the patient sees it
        guide.close()
        assert page.locator("#chat [data-testid=user]").count() == 1  # the chat is as it was

        # a term the guide defines (PIH, named in this answer) is reached by keyboard and
        # shows the guide's definition on focus
        term = "#chat [data-testid=bot] a[title*='as the guide defines it']"
        assert page.locator(term).count() >= 1, page.locator("#chat").inner_html()[:2000]
        page.get_by_label("Your question", exact=True).focus()
        for _ in range(40):
            page.keyboard.press("Shift+Tab")
            if page.evaluate("(s) => !!document.activeElement.closest(s)", term):
                break
        focus_in(page, term)
        shown = page.evaluate("""() => {
          const a = document.activeElement;
          return [a.getAttribute('title'), getComputedStyle(a, '::after').content];
        }""")
        assert "as the guide defines it" in shown[0]
        assert shown[0] in shown[1], shown  # the definition is on screen, not only a title
        # and on top: the box under the term is the term's own (its ::after), not the
        # Sources panel or a later message painted over it
        on_top = page.evaluate("""() => {
          const a = document.activeElement, r = a.getBoundingClientRect();
          const box = getComputedStyle(a, '::after');
          const top = r.top + parseFloat(box.top), height = parseFloat(box.height);
          return [0.2, 0.5, 0.9].every(
            (f) => document.elementFromPoint(r.left + 8, top + f * height) === a);
        }""")
        assert on_top, "the term's definition is covered by another element"
        shot(page, "18-term-definition")

        ask(page, "Does my health insurance pay for laser treatment?")
        page.locator("#nearby").wait_for()
        # the guide covers lasers, not insurance: what it says about lasers follows, with
        # its sources
        page.locator("#chat .thought-group .title", has_text="Sources").nth(1).wait_for()
        texts = page.locator("#chat [data-testid=bot]").all_inner_texts()
        assert any("Partly covered in the guide" in t and "anything about cost" in t
                   for t in texts), texts
        assert shown_once(page, "Partly covered in the guide")  # once: no banner repeats it
        offered = suggestions(page)
        assert 2 <= len(offered) <= 4 and all(q.endswith("?") for q in offered), offered
        assert not any("insurance" in q.lower() for q in offered)
        shot(page, "2-not-covered")

        # the booking button beside the suggestions opens the pre-filled form
        page.locator("#nearby").get_by_role("button", name="Book a consultation").click()
        concern = page.get_by_label("What you would like to discuss (you can edit this)")
        concern.wait_for()
        assert "Acne marks vs. acne scars" in concern.input_value()  # pre-filled summary
        page.get_by_role("button", name="Send booking request").click()
        expect(page.locator("#booking-result")).to_contain_text("Please check the form")
        fill_booking(page)
        page.get_by_role("button", name="Send booking request").click()
        ref = page.locator("#booking-ref")
        try:
            ref.wait_for(timeout=60_000)
        except PlaywrightTimeout:  # say what the patient saw instead
            shot(page, "3-booking-failed")
            raise AssertionError("no booking reference; the form says: "
                                 + page.locator("#booking").inner_text()) from None
        reference = ref.inner_text().strip()
        shot(page, "3-booking-reference")

        with sqlite3.connect(server.db) as db:
            row = db.execute(
                "SELECT name, email, consent, status, concern FROM bookings WHERE reference = ?",
                (reference,),
            ).fetchone()
        assert row[:4] == ("Alex Doe", "alex@example.org", 1, "new")
        assert "Acne marks vs. acne scars" in row[4]

        # a reload of the same tab shows the same conversation
        page.reload()
        page.locator("#chat [data-testid=user]", has_text="acne marks vs scars").wait_for()


def test_a_phone_first_screen_asks_a_suggested_question_in_one_click(server):
    with browser_page(ARTIFACTS, width=390, height=844) as page:
        page.goto(server.url + "/")
        send = page.get_by_role("button", name="Send", exact=True)
        send.wait_for()
        assert "covers" in page.locator("#covers").inner_text()
        starters = page.locator("#starters button")
        assert 3 <= starters.count() <= 5
        question = page.get_by_role("button", name="What are acne scars?", exact=True)
        # the question box, Send and the suggestion are above the fold, before any scroll
        assert page.evaluate("window.scrollY") == 0
        assert in_view(page, send), send.bounding_box()
        box = page.get_by_label("Your question", exact=True)
        assert in_view(page, box), "question box below the fold"
        assert in_view(page, question), question.bounding_box()
        shot_view = ARTIFACTS / "9-phone-first-screen.png"
        page.screenshot(path=str(shot_view))  # the viewport: what the patient sees first
        question.click()
        page.locator("#chat [data-testid=user]", has_text="What are acne scars?").wait_for()
        page.locator("#chat .thought-group .title", has_text="Sources").first.wait_for()
        answer = page.locator("#chat [data-testid=bot]").first.inner_text()
        assert "[1]" in answer and "scar" in answer.lower()
        assert page.locator("#intro").is_hidden()  # the first screen gives way to the chat
        shot(page, "10-phone-suggested-answer")


def test_a_not_covered_answer_says_so_once_and_offers_topics_and_booking(server):
    with browser_page(ARTIFACTS, width=390, height=844) as page:
        page.goto(server.url + "/")
        ask(page, "can you recommend a good pizza place near me")
        nearby = page.locator("#nearby")
        nearby.wait_for()
        bot = page.locator("#chat [data-testid=bot]").first.inner_text()
        assert "Not covered in the guide" in bot
        assert shown_once(page, "Not covered in the guide")
        assert shown_once(page, "doesn't cover that")
        offered = suggestions(page)
        assert 2 <= len(offered) <= 4, offered
        assert not any("pizza" in q.lower() for q in offered)
        book = nearby.get_by_role("button", name="Book a consultation")
        assert book.is_visible()
        nearby.scroll_into_view_if_needed()
        shot(page, "11-not-covered-suggestions")
        # one click asks about one of the guide's topics
        page.locator("#nearby button.suggestion:visible").first.click()
        page.locator("#chat [data-testid=user]", has_text=offered[0]).wait_for()
        page.locator("#chat .thought-group .title", has_text="Sources").first.wait_for()
        texts = page.locator("#chat [data-testid=bot]").all_inner_texts()
        # the guide answers its own topic: no second "not covered"
        assert " ".join(texts).count("covered in the guide") == 1, texts
        assert nearby.is_hidden()  # the offer went with the answer it followed
        book = page.locator("#book-btn")
        book.click()
        page.get_by_label("Your name").wait_for()


def test_a_spanish_question_gets_the_guides_english_sentences_each_with_its_translation(server):
    with browser_page(ARTIFACTS) as page:
        page.goto(server.url + "/")
        ask(page, "¿qué es la subcisión?")
        sources = page.locator("#chat .thought-group .title", has_text="Sources").first
        sources.wait_for()
        bot = page.locator("#chat [data-testid=bot]").first
        text = bot.inner_text()
        record = latest_record(server)
        assert record["language"] == "es" and record["translations"], record
        # the guide's English sentence, cited, then the translations under their label
        first = record["citations"][0]
        assert first["quote"] in text and "[1]" in text
        label = bot.get_by_text("Traducción automática de las frases de la guía")
        assert label.is_visible()
        assert text.index(first["quote"]) < text.index("Traducción automática")
        for t in record["translations"]:
            assert f"[{t['n']}] {t['shown']}" in text  # the translation, or the note
            if not t["passed"] and t["text"]:
                assert t["text"] not in text  # a translation that failed is not shown
        # each [n] of a translation opens the English original's place in the guide
        markers = bot.locator("a", has_text=f"[{record['translations'][0]['n']}]")
        assert markers.count() == 2 and len({m.get_attribute("href") for m in
                                             markers.all()}) == 1
        sources.click()
        panel = page.locator("#chat .thought-group .content").first
        panel.wait_for()
        assert f"“{first['quote']}”" in panel.inner_text()
        assert panel.locator("a[href^='/guide#']").count() >= 1
        shot(page, "20-spanish-question-translated")


def latest_record(server) -> dict:
    """The newest answer record the server stored."""
    with sqlite3.connect(server.db) as db:
        (record,) = db.execute("SELECT record FROM turns ORDER BY id DESC LIMIT 1").fetchone()
    return json.loads(record)


def test_tabs_have_their_own_conversations_and_urgent_is_prominent(server):
    with browser_page(ARTIFACTS, width=640, height=900) as page:  # narrow, as at 200% zoom
        page.goto(server.url + "/")
        ask(page, "my cheek went white and blotchy after fillers yesterday")
        banner = page.locator("#urgent")
        banner.wait_for()
        assert "emergency" in banner.inner_text().lower()
        box = banner.bounding_box()
        assert box is not None and box["y"] < 200  # above everything
        shot(page, "4-urgent")
        # keyboard only: Tab reaches the question box and the booking button, Enter books
        page.locator("body").click(position={"x": 5, "y": 5})
        reached = []
        for _ in range(40):
            page.keyboard.press("Tab")
            reached.append(page.evaluate(
                "() => (document.activeElement.getAttribute('aria-label') || '') + '|' + "
                "(document.activeElement.innerText || '') + '|' + "
                "(document.activeElement.closest('label')?.innerText || '')"))
            if "Book a consultation" in reached[-1]:
                break
        assert any("Your question" in r for r in reached), reached
        assert "Book a consultation" in reached[-1], reached
        page.keyboard.press("Enter")
        page.get_by_label("Your name").wait_for()  # the booking form opened
        other = page.context.new_page()  # a second tab: a conversation of its own
        other.goto(server.url + "/")
        other.locator("#intro").wait_for()  # the first screen: no conversation yet
        assert other.locator("#chat [data-testid=user]").count() == 0
        other.close()


XSS_QUESTION = (
    '<img src="http://127.0.0.1:9/evil.png" onerror="window.__xss=1"> '
    "<script>window.__xss=2</script> ![pixel](http://127.0.0.1:9/pixel.png) "
    "[book here](javascript:window.__xss=3) what are boxcar scars?"
)


def test_xss_payloads_render_inert(server):
    with browser_page(ARTIFACTS) as page:
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url + "/")
        ask(page, XSS_QUESTION)
        page.locator("#chat .thought-group .title", has_text="Sources").last.wait_for()
        user = page.locator("#chat [data-testid=user]").last.inner_text()
        assert "<img" in user and "<script>" in user  # shown as text
        assert page.evaluate("window.__xss") is None  # nothing ran
        assert page.locator("#chat img[src*='127.0.0.1:9']").count() == 0
        assert page.locator("#chat a[href^='javascript']").count() == 0
        assert page.locator("#chat script").count() == 0
        assert not [u for u in requests if ":9/" in u]  # no remote image was fetched
        # the only links in the chat are ours: to the guide page, with no patient text
        for href in page.locator("#chat a[href]").evaluate_all("els => els.map(e => e.href)"):
            assert href.startswith(server.url + "/guide#"), href
            assert "evil" not in href and "pixel" not in href and "xss" not in href
        shot(page, "5-xss-inert")


def test_staff_find_a_thumbs_down_answer_and_add_it_to_the_eval_set(server):
    from assistant.cases import stored_cases
    from assistant.store import Store

    store = Store(f"sqlite:///{server.db}")
    before = len(stored_cases(store))
    with browser_page(ARTIFACTS, width=1250, height=1000) as page:
        page.goto(server.url + "/")
        ask(page, "what are rolling scars?")
        page.locator("#chat .thought-group .title", has_text="Sources").last.wait_for()
        page.get_by_role("button", name="Dislike", exact=True).last.click()
        page.get_by_label("Tell us more about this answer (optional)").wait_for()
        page.locator("#book-btn").click()
        fill_booking(page, email="sam.case@example.org")
        page.get_by_role("button", name="Send booking request").click()
        reference = page.locator("#booking-ref")
        reference.wait_for(timeout=60_000)
        reference = reference.inner_text().strip()

        page.goto(server.url + "/staff/queue")
        assert page.url.endswith("/staff/login")  # no session: the login page
        page.get_by_label("Username").fill("sam")
        page.get_by_label("Password").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", name="Review queue").wait_for()
        page.get_by_label("thumbs down").check()
        page.get_by_role("button", name="Filter").click()
        row = page.locator("tr", has_text="what are rolling scars?").first
        expect(row).to_contain_text("thumbs down")
        shot(page, "6-staff-queue")
        row.get_by_role("link", name="Open").click()

        page.get_by_role("heading", name="Shown answer").wait_for()
        expect(page.locator("table[aria-label=Citations]")).to_contain_text("Rolling scars")
        expect(page.locator("#verdicts")).to_contain_text("shown")  # each sentence's verdict
        expect(page.locator("#retrieved")).to_contain_text("Rolling scars")
        page.get_by_label("Note").fill("should mention the depth")
        page.get_by_role("button", name="Mark incorrect").click()
        expect(page.locator("body")).to_contain_text("should mention the depth")
        page.get_by_role("button", name="Add to the eval set").click()
        expect(page.locator(".flash")).to_contain_text("Added case")
        shot(page, "7-staff-turn")

        # the booking, found by its reference, leads to the whole conversation it came from
        page.goto(server.url + "/staff/bookings")
        page.get_by_label("Search", exact=True).fill(reference)
        page.get_by_label("Search", exact=True).press("Enter")
        booking = page.locator("#bookings tr.booking", has_text=reference)
        expect(booking).to_have_count(1)
        expect(booking.locator("mark")).to_contain_text(reference)  # why the row matched
        booking.get_by_role("link", name=f"Conversation of booking {reference}").click()
        page.locator("#turns").wait_for()
        expect(page.locator("#turns")).to_contain_text("what are rolling scars?")
        expect(page.locator(f"#conversation-booking-{reference}")).to_contain_text("Alex Doe")
        shot(page, "19-staff-conversation-from-booking")

    cases = stored_cases(store)  # in the database, not in a tracked file
    assert len(cases) == before + 1 and cases[-1].conversation == ["what are rolling scars?"]


# what the chat shows now, in one look: each message's role and text, the in-progress
# bubbles, whether any of them has its copy or thumbs buttons showing, Gradio's own
# "●●●" indicator
CHAT_NOW = """() => {
  const chat = document.getElementById('chat');
  if (!chat) { return null; }
  const seen = el => !!(el && el.offsetParent !== null && getComputedStyle(el).display !== 'none');
  const rows = [...chat.querySelectorAll('.message-row')];
  const controls = row => {
    const next = row.nextElementSibling;
    const panels = [...row.querySelectorAll('.message-buttons')];
    if (next && next.classList.contains('message-buttons')) { panels.push(next); }
    return panels.some(p => seen(p) && [...p.querySelectorAll('button')].some(seen));
  };
  return {
    users: [...chat.querySelectorAll('[data-testid=user]')].map(e => e.innerText.trim()),
    pending: [...chat.querySelectorAll('.sg-pending')].map(e => e.innerText.trim()),
    pending_with_controls: rows.filter(r => r.querySelector('.sg-pending') && controls(r))
      .length,
    dots: [...chat.querySelectorAll('.pending .dots, .message.pending')].filter(seen).length,
    sources: chat.querySelectorAll('.thought-group .title').length,
  };
}"""


def answer_texts(page) -> list[str]:
    """The answers' own bubbles (not their Sources), in order."""
    return page.locator("#chat [data-testid=bot]:not(:has(.thought-group))").all_inner_texts()


def test_two_questions_sent_back_to_back_are_both_shown_and_answered_in_order(server):
    first, second = "what are rolling scars?", "what are boxcar scars?"
    with browser_page(ARTIFACTS) as page:
        page.goto(server.url + "/")
        box = page.get_by_label("Your question", exact=True)
        box.wait_for()
        box.fill(first)
        box.press("Enter")
        box.fill(second)  # at once, while the first answer is on its way
        box.press("Enter")
        expect(page.locator("#chat [data-testid=user]")).to_have_count(2)
        assert box.input_value() == ""  # both taken out of the box, both in the chat
        expect(page.locator("#input-error")).to_be_hidden()  # neither was refused
        box.fill("a draft typed while the answers come")  # never overwritten by an answer
        states, shot_taken = [], False
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:  # until both answers are whole (the real model)
            now = page.evaluate(CHAT_NOW)
            states.append(now)
            assert now["users"] == [first, second], now  # shown at once, kept, in order
            # one clear in-progress state: no copy/thumbs on a bubble still coming, no
            # stray "●●●" under an answer
            assert now["pending_with_controls"] == 0, now
            assert now["dots"] == 0, now
            if not shot_taken and any(p.startswith("In line") for p in now["pending"]):
                shot(page, "12-question-in-line")
                shot_taken = True
            if now["sources"] == 2 and not now["pending"]:
                break
            page.wait_for_timeout(100)
        else:
            raise AssertionError(f"both answers did not come: {states[-1]}")
        seen = {p for s in states for p in s["pending"]}
        assert "Looking in the guide…" in seen, seen
        assert any(p.startswith("In line") for p in seen), seen  # the second waited, shown
        texts = answer_texts(page)
        assert len(texts) == 2 and all("[1]" in t for t in texts), texts
        assert "rolling" in texts[0].lower() and "boxcar" in texts[1].lower(), texts
        # each answer has its controls once it has come
        expect(page.get_by_role("button", name="Like", exact=True)).to_have_count(2)
        assert box.input_value() == "a draft typed while the answers come"
        shot(page, "13-both-answered")


def test_booking_errors_show_under_each_field_and_the_focus_moves_to_the_first(server):
    with browser_page(ARTIFACTS, width=390, height=844) as page:  # a phone: the form is long
        page.goto(server.url + "/")
        page.locator("#book-btn").click()
        name = page.get_by_label("Your name (required)")
        name.wait_for()
        page.wait_for_function(  # the required fields say so to assistive technology
            "() => document.querySelector('#b-name input, #b-name textarea')"
            "?.getAttribute('aria-required') === 'true'")
        page.get_by_role("button", name="Send booking request").click()
        expect(page.locator("#booking-result")).to_contain_text("Please check the form")
        expected = {"b-name": "Please enter your name",
                    "b-email": "email address or a phone number",
                    "b-times": "when the clinic can reach you",
                    "b-consent": "tick the box"}
        for field, text in expected.items():
            alert = page.locator(f"#{field}-error [role=alert]")
            expect(alert).to_contain_text(text)
            # next to its field: just under it (both measured at once: the page scrolls)
            gap = page.evaluate(
                "(id) => document.getElementById(id + '-error').getBoundingClientRect().top"
                " - document.getElementById(id).getBoundingClientRect().bottom", field)
            assert 0 <= gap < 60, (field, gap)
            control = page.locator(f"#{field} input, #{field} textarea").first
            expect(control).to_have_attribute("aria-invalid", "true")
            expect(control).to_have_attribute("aria-describedby", f"{field}-error")
        expect(page.locator("#b-phone-error")).to_be_hidden()
        expect(page.locator("#b-concern-error")).to_be_hidden()
        focus_in(page, "#b-name")  # the first field with a problem
        shot(page, "14-booking-field-errors")

        # the name given, the email wrong: the focus goes to the email, the fixed errors go
        fill_booking(page, email="alex@")
        page.get_by_role("button", name="Send booking request").click()
        expect(page.locator("#b-email-error [role=alert]")).to_contain_text("name@example.org")
        for fixed in ("b-name", "b-times", "b-consent"):
            expect(page.locator(f"#{fixed}-error")).to_be_hidden()
        focus_in(page, "#b-email")
        name_control = page.locator("#b-name input, #b-name textarea").first
        expect(name_control).not_to_have_attribute("aria-invalid", "true")
        assert name.input_value() == "Alex Doe"  # what was typed stays

        # sent again and at once typing in another field: the focus stays where the patient
        # put it (moved, their next keys would land in the email field)
        email_control = page.locator("#b-email input, #b-email textarea").first
        page.evaluate("""() => {
          const email = document.querySelector('#b-email input, #b-email textarea');
          email.removeAttribute('aria-invalid');
          document.querySelector('#b-submit').click();
          document.querySelector('#b-phone input, #b-phone textarea').focus();
        }""")
        # marked again: the page has placed the errors and decided on the focus
        expect(email_control).to_have_attribute("aria-invalid", "true")
        focus_in(page, "#b-phone")


def test_after_booking_end_chat_keeps_the_reference_and_offers_no_second_booking(server):
    with browser_page(ARTIFACTS) as page:
        page.goto(server.url + "/")
        ask(page, "what are ice pick scars?")
        page.locator("#chat .thought-group .title", has_text="Sources").first.wait_for()
        page.locator("#book-btn").click()
        page.get_by_label("Your name (required)").wait_for()
        fill_booking(page)
        page.get_by_role("button", name="Send booking request").click()
        ref = page.locator("#booking-ref")
        ref.wait_for()
        reference = ref.inner_text().strip()
        assert reference.startswith("SG-")
        done = page.locator("#booking-done")
        focus_in(page, "#booking-done")  # brought into view, the focus on it
        assert in_view(page, done), done.bounding_box()
        expect(page.locator("#booking")).to_be_hidden()  # the form closed, emptied
        expect(page.locator("#book-btn")).to_be_hidden()  # booked: not offered again
        shot(page, "15-booked")

        page.get_by_role("button", name="End chat").click()
        expect(page.locator("#ended")).to_contain_text("This conversation has ended")
        closing = page.locator("#chat [data-testid=bot]").last
        expect(closing).to_contain_text(reference)
        assert "book a consultation" not in closing.inner_text().lower()
        expect(ref).to_have_text(reference)  # the confirmation stays after the end
        assert overlaps_view(page, done) or in_view(page, page.locator("#ended"))
        expect(page.locator("#booking")).to_be_hidden()
        expect(page.get_by_role("button", name="Book a consultation")).to_have_count(0)
        shot(page, "16-booked-then-ended")

        # a reload shows the same: the ended conversation, its reference, no second offer
        page.reload()
        expect(page.locator("#ended")).to_contain_text("This conversation has ended")
        expect(page.locator("#ended")).to_contain_text("booking request is with the clinic")
        expect(ref).to_have_text(reference)
        expect(page.locator("#chat [data-testid=bot]").last).to_contain_text(reference)
        expect(page.get_by_role("button", name="Book a consultation")).to_have_count(0)
        expect(page.locator("#intro")).to_be_hidden()

        # the next question starts a new conversation, on a clear screen, booking offered
        ask(page, "what are rolling scars?")
        expect(page.locator("#chat [data-testid=user]")).to_have_count(1)
        expect(page.locator("#chat [data-testid=user]")).to_have_text("what are rolling scars?")
        expect(page.locator("#ended-row")).to_be_hidden()
        expect(page.locator("#book-btn")).to_be_visible()
        page.locator("#chat .thought-group .title", has_text="Sources").first.wait_for()
        expect(ref).to_have_text(reference)

        # "New conversation" after an end: the first screen again, the focus in the box
        page.get_by_role("button", name="End chat").click()
        page.get_by_role("button", name="New conversation").click()
        expect(page.locator("#intro")).to_be_visible()
        expect(page.locator("#chat")).to_be_hidden()
        focus_in(page, "#msg")
        shot(page, "17-new-conversation")
