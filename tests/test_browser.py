"""The patients' page in a real headless Chromium (Debian package) driven by Playwright,
against a real server: the packaged MiniLM, Chroma on disk, the local 1.5B model, SQLite.

Screenshots go to ``test-artifacts/`` (the ones in ``docs/`` come from this test)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from assistant.config import PACKAGE_ROOT
from tests.browser import browser_page
from tests.server import running

pytestmark = pytest.mark.real

ARTIFACTS = PACKAGE_ROOT / "test-artifacts"
STAFF_PASSWORD = "a long staff password"


def shared(real_dir: Path, data_dir: Path) -> None:
    """Reuse the assembled model files and saved prompt prefix of the real test session."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ("models", "cache"):
        (real_dir / name).mkdir(parents=True, exist_ok=True)
        (data_dir / name).symlink_to(real_dir / name, target_is_directory=True)


@pytest.fixture(scope="module")
def server(real_services, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    data_dir = root / "data"
    shared(real_services.settings.data_dir, data_dir)
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
        yield srv


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def ask(page, question: str) -> None:
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Send", exact=True).click()


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
        shot(page, "1-answer-with-sources")

        ask(page, "Does my health insurance pay for laser treatment?")
        page.locator("#not-covered").wait_for()
        # the guide covers lasers, not insurance: what it says about lasers follows, with
        # its sources
        page.locator("#chat .thought-group .title", has_text="Sources").nth(1).wait_for()
        texts = page.locator("#chat [data-testid=bot]").all_inner_texts()
        assert any("Partly covered in the guide" in t and "anything about cost" in t
                   for t in texts), texts
        shot(page, "2-not-covered")

        page.get_by_role("button", name="Book a consultation").click()
        concern = page.get_by_label("What you would like to discuss (you can edit this)")
        concern.wait_for()
        assert "Acne marks vs. acne scars" in concern.input_value()  # pre-filled summary
        page.get_by_role("button", name="Send booking request").click()
        expect(page.locator("#booking-result")).to_contain_text("Please check the form")
        page.get_by_label("Your name").fill("Alex Doe")
        page.get_by_label("Email").fill("alex@example.org")
        page.get_by_label("When can we reach you? (days and times)").fill("Monday mornings")
        page.get_by_label("I agree that the clinic may contact me about this request.").check()
        page.get_by_role("button", name="Send booking request").click()
        ref = page.locator("#booking-ref")
        ref.wait_for()
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
        other.locator("#chat").wait_for()
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
        shot(page, "5-xss-inert")


def test_staff_find_a_thumbs_down_answer_and_add_it_to_the_eval_set(server):
    from assistant.evals.harness import stored_cases
    from assistant.store import Store

    store = Store(f"sqlite:///{server.db}")
    before = len(stored_cases(store))
    with browser_page(ARTIFACTS, width=1250, height=1000) as page:
        page.goto(server.url + "/")
        ask(page, "what are rolling scars?")
        page.locator("#chat .thought-group .title", has_text="Sources").last.wait_for()
        page.get_by_role("button", name="Dislike", exact=True).last.click()
        page.get_by_label("Tell us more about this answer (optional)").wait_for()

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

    cases = stored_cases(store)  # in the database, not in a tracked file
    assert len(cases) == before + 1 and cases[-1].conversation == ["what are rolling scars?"]
