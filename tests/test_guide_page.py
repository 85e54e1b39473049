"""The guide page (``/guide``): every chunk has its anchor, every link an answer makes
lands on the page, and nothing a patient typed goes into a URL."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.config import load_settings
from assistant.corpus import build_chunks, guide_units
from assistant.records import AnswerRecord, Citation, RetrievedPassage
from assistant.web.guide import (
    GUIDE_PATH,
    PALETTE,
    Guide,
    anchor,
    guide_metadata,
    guide_router,
    text_fragment,
    topic_question,
)
from assistant.web.render import GUIDE_HREF
from assistant.web.ui import answer_messages
from tests.conftest import CORPUS

SETTINGS = load_settings(profile="test")
CHUNKS = build_chunks(CORPUS, SETTINGS.chunk_max_words)
PATIENT = "zorblaxqwerty"  # a word no guide holds: it must never reach a URL


class Page(HTMLParser):
    """What the tests read from the page: ids, links, headings, tags, text by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.headings: list[tuple[int, str]] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.text_in: dict[str, list[str]] = {}
        self._open: list[tuple[str, str | None]] = []
        self._heading: int | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs.append((tag, a))
        if a.get("id"):
            self.ids.append(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = int(tag[1])
            self.headings.append((self._heading, ""))
        if tag not in ("meta", "br"):
            self._open.append((tag, a.get("id")))

    def handle_endtag(self, tag):
        while self._open:
            t, _ = self._open.pop()
            if t == tag:
                break
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = None

    def handle_data(self, data):
        for _, element_id in self._open:
            if element_id:
                self.text_in.setdefault(element_id, []).append(data)
        if self._heading is not None:
            level, text = self.headings[-1]
            self.headings[-1] = (level, text + data)

    def text(self, element_id: str) -> str:
        return " ".join("".join(self.text_in.get(element_id, [])).split())


@pytest.fixture(scope="module")
def guide() -> Guide:
    return Guide(CHUNKS, guide_metadata(CORPUS))


@pytest.fixture(scope="module")
def page(guide) -> Page:
    return Page(guide.page())


def fragment_parts(href: str) -> tuple[str, list[str]]:
    """A link's text fragment: its prefix ("" if none), and its start (and end)."""
    match = re.search(r":~:text=(.+)$", href)
    if not match:
        return "", []
    parts = match.group(1).split(",")
    prefix = unquote(parts.pop(0)[:-1]) if parts[0].endswith("-") else ""
    return prefix, [unquote(p) for p in parts]


def fragment_words(href: str) -> list[str]:
    """The text a link's text fragment points at (start, and end when there is one)."""
    return fragment_parts(href)[1]


def test_every_chunk_has_one_url_safe_anchor_on_the_page(page):
    anchors = [anchor(c.chunk_id) for c in CHUNKS]
    assert len(set(anchors)) == len(anchors) == len(CHUNKS)
    for a in anchors:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", a), a
        assert page.ids.count(a) == 1, a
    assert len(page.ids) == len(set(page.ids))  # no id twice on the page


def test_anchors_are_stable_and_one_to_one():
    assert anchor("acne-scars-guide:how-to-treat-acne-scars/subcision:0") == (
        "acne-scars-guide__how-to-treat-acne-scars--subcision__0")
    # ids that do not follow the doc:path:n form still get a safe, distinct anchor
    odd = ["notes:Odd Heading!:0", "notes:odd-heading:0:extra", "a b", "a-b", "ü:x:1"]
    made = [anchor(i) for i in odd]
    assert len(set(made)) == len(made)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", a) for a in made)
    assert anchor(odd[0]) == anchor(odd[0])


def test_every_chunk_is_on_the_page_in_order_under_its_heading(guide, page):
    for chunk in CHUNKS:
        shown = page.text(anchor(chunk.chunk_id))
        for unit in guide_units(chunk.text):
            assert re.sub(r"^\d+[.)]\s+", "", unit) in shown, (chunk.chunk_id, unit)
    order = [page.ids.index(anchor(c.chunk_id)) for c in CHUNKS]
    assert order == sorted(order)
    headings = [text for _, text in page.headings]
    for chunk in CHUNKS:
        assert chunk.section.split(" › ")[-1] in headings


def test_every_link_a_citation_makes_lands_on_the_page_and_quotes_the_guide(guide, page):
    checked = 0
    for chunk in CHUNKS:
        for unit in guide_units(chunk.text):
            href = guide.href(chunk.chunk_id, unit)
            assert href and GUIDE_HREF.fullmatch(href), href
            path, _, fragment = href.partition("#")
            assert path == GUIDE_PATH
            target = fragment.split(":~:")[0]
            assert target == anchor(chunk.chunk_id) and target in page.ids
            words = fragment_words(href)
            assert words, href  # the quoted sentence is highlighted
            for part in words:
                assert part in page.text(target), (href, part)
            checked += 1
    assert checked > len(CHUNKS)


def test_the_links_in_a_shown_answer_all_land_on_the_page(guide, page):
    chunk = next(c for c in CHUNKS if c.section.endswith("Subcision"))
    marks = next(c for c in CHUNKS if c.section == "Acne marks vs. acne scars")
    units = guide_units(chunk.text) + guide_units(marks.text)[:1]
    record = AnswerRecord(
        status="answered",
        answer=" ".join(f"{u} [{i + 1}]" for i, u in enumerate(units)),
        citations=[
            Citation(n=i + 1, chunk_id=(chunk if i < len(units) - 1 else marks).chunk_id,
                     section=(chunk if i < len(units) - 1 else marks).section, quote=u)
            for i, u in enumerate(units)
        ],
        session_id="s" * 12, turn=1, question="what is subcision?",
    )
    answer, sources = answer_messages(record, guide)
    for message in (answer, sources):
        links = re.findall(r"\]\((\S+)(?: \"[^\"]*\")?\)", message["content"])
        assert len(links) == len(units), message["content"]
        for href in links:
            assert GUIDE_HREF.fullmatch(href)
            assert href.partition("#")[2].split(":~:")[0] in page.ids


def test_no_patient_text_goes_into_any_url(guide):
    quote = guide_units(CHUNKS[0].text)[0]
    record = AnswerRecord(
        status="not_in_guide",
        coverage="partial",
        # the partial template names the patient's own words; a marker among them stays text
        answer=f"The guide doesn't say anything about “{PATIENT}” [9]. {quote} [1] "
               f"{PATIENT} [2] A dermatologist can answer it at a consultation.",
        citations=[
            Citation(n=1, chunk_id=CHUNKS[0].chunk_id, section=CHUNKS[0].section, quote=quote),
            # a quote that is not the guide's own text gets no text fragment
            Citation(n=2, chunk_id=CHUNKS[0].chunk_id, section=CHUNKS[0].section,
                     quote=f"{PATIENT} said this"),
            # a chunk that is not in the guide gets no link at all
            Citation(n=3, chunk_id=f"guide:{PATIENT}:0", section=PATIENT, quote=PATIENT),
        ],
        session_id="s" * 12, turn=1,
        question=f"<b>{PATIENT}</b> [x](http://evil.example/{PATIENT}) price?",
        retrieved=[{"chunk_id": CHUNKS[3].chunk_id, "section": PATIENT},
                   {"chunk_id": f"x:{PATIENT}:0", "section": PATIENT}],
    )
    shown = "\n".join(m["content"] for m in answer_messages(record, guide))
    urls = re.findall(r"\]\((\S+)", shown) + re.findall(r"https?://\S+", shown)
    assert urls and all(GUIDE_HREF.fullmatch(u) for u in urls), urls
    assert not any(PATIENT in unquote(u) for u in urls)
    assert "\\[9\\]" in shown  # a marker without a citation is left as text
    assert guide.href(CHUNKS[0].chunk_id, f"{PATIENT} said this") == (
        f"{GUIDE_PATH}#{anchor(CHUNKS[0].chunk_id)}")
    assert guide.href(f"guide:{PATIENT}:0", PATIENT) is None
    # the suggestions come from the guide's headings, never from the record's text
    assert not any(PATIENT in q for q in guide.nearby_questions(record.retrieved))


def test_text_fragments_encode_their_syntax_characters():
    frag = text_fragment("Rolling scars are wide and shallow (4-5 mm) depressions, in skin & more.")
    assert frag.startswith(":~:text=") and frag.count(",") == 1  # start,end
    start, end = frag.removeprefix(":~:text=").split(",")
    for part in (start, end):
        assert re.fullmatch(r"[A-Za-z0-9%._~]+", part), part
    assert unquote(start) == "Rolling scars are wide"
    assert unquote(end) == "in skin & more."
    assert "%2D" in text_fragment("wide and shallow (4-5 mm)")
    assert text_fragment("1. Inflammation. When you have a pimple.") == (
        ":~:text=Inflammation.%20When%20you%20have%20a%20pimple.")


def test_the_page_is_plain_accessible_html(guide, page):
    html = guide.page()
    assert html.startswith("<!doctype html>") and '<html lang="en">' in html
    for landmark in ("header", "nav", "main", "footer"):
        assert page.tags.count(landmark) == 1, landmark
    assert [level for level, _ in page.headings].count(1) == 1
    levels = [level for level, _ in page.headings if level > 1 and _ != "Contents"]
    assert all(b - a <= 1 for a, b in zip([1, *levels], levels, strict=False)), levels
    nav = next(a for t, a in page.attrs if t == "nav")
    assert nav.get("aria-labelledby") in page.ids
    # the table of contents links to every heading of the guide
    toc = [h for h in page.hrefs if h.startswith("#h-")]
    assert toc and all(h[1:] in page.ids for h in toc)
    assert len(toc) == len([h for lvl, h in page.headings if lvl > 1]) - 1  # all but Contents
    # nothing external: no script, image, stylesheet, frame, font or remote address
    for tag in ("script", "img", "link", "iframe", "object", "embed"):
        assert tag not in page.tags
    assert not re.search(r"https?://|src=|url\(|@import", html)
    assert all(h.startswith(("#", "/")) for h in page.hrefs)
    assert "Version 1.0" in html


def contrast(fg: str, bg: str) -> float:
    def luminance(color: str) -> float:
        channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("name", sorted(PALETTE))
def test_every_colour_pair_reads_at_least_4_5_to_1(name, guide):
    fg, bg = PALETTE[name]
    assert contrast(fg, bg) >= 4.5, (name, round(contrast(fg, bg), 2))
    assert fg in guide.page() and bg in guide.page()


def test_guide_text_with_markup_is_escaped(corpus_copy):
    (corpus_copy / "clinic-notes.md").write_text(
        "# Notes <b>bold</b>\n\n## Care & <script>x</script>\n\nKeep <img src=x> skin calm.\n",
        encoding="utf-8")
    guide = Guide(build_chunks(corpus_copy, 120))
    html = guide.page()
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "Keep &lt;img src=x&gt; skin calm." in html
    assert "<h1>The guides</h1>" in html  # two guides: one page, each under its own title
    chunk = next(c for c in guide.chunks if c.doc_id == "clinic-notes")
    assert anchor(chunk.chunk_id) in Page(html).ids


def test_headings_become_questions():
    assert topic_question("What causes acne scars?") == "What causes acne scars?"
    assert topic_question("How to treat acne scars") == "How to treat acne scars?"
    assert topic_question("Laser therapy") == "What does the guide say about laser therapy?"
    assert topic_question("PRP therapy") == "What does the guide say about PRP therapy?"


def test_the_first_screens_questions_and_line_come_from_the_headings(guide):
    starters = guide.starter_questions()
    assert 3 <= len(starters) <= 5
    headings = {n.title for n in guide.top_headings()}
    assert all(q in headings or q.rstrip("?") in headings
               or q.removeprefix("What does the guide say about ").rstrip("?").lower()
               in {h.lower() for h in headings} for q in starters), starters
    assert "What are acne scars?" in starters
    assert guide.covers_line().startswith("6 topics and 16 subtopics")


def test_nearby_questions_are_the_retrieved_sections_less_the_cited_ones(guide):
    by_leaf = {c.section.split(" › ")[-1]: c for c in CHUNKS}
    retrieved = [RetrievedPassage(chunk_id=by_leaf[s].chunk_id) for s in
                 ("Laser therapy", "Laser therapy", "Dermabrasion", "Chemical peels",
                  "Microneedling", "Subcision", "Keloids")]
    questions = guide.nearby_questions(retrieved, cited=["How to treat acne scars › Laser therapy"])
    assert questions == [
        "What does the guide say about dermabrasion?",
        "What does the guide say about chemical peels?",
        "What does the guide say about microneedling?",
        "What does the guide say about subcision?",
    ]
    # too few retrieved: topped up from the first screen's questions, at least two
    few = guide.nearby_questions([RetrievedPassage(chunk_id=by_leaf["Keloids"].chunk_id)])
    assert len(few) == 2 and few[0] == "What does the guide say about keloids?"
    # a closing section is no topic to ask about
    closing = RetrievedPassage(chunk_id=by_leaf["Bottom line"].chunk_id)
    assert guide.nearby_questions([closing]) == (
        guide.starter_questions()[:2])
    assert not any("bottom line" in q.lower() for q in guide.starter_questions())
    assert 2 <= len(guide.nearby_questions([])) <= 4


def test_the_route_serves_the_page_with_a_strict_policy():
    app = FastAPI()
    calls = []

    def chunks():
        calls.append(1)
        return CHUNKS

    app.include_router(guide_router(chunks, SETTINGS))
    with TestClient(app) as client:
        first = client.get(GUIDE_PATH)
        second = client.get(GUIDE_PATH)
    assert first.status_code == 200 and first.text == second.text
    assert first.headers["content-type"].startswith("text/html")
    csp = first.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "'unsafe-inline'" not in csp
    assert first.headers["x-content-type-options"] == "nosniff"
    assert len(calls) == 1  # rendered once
    page = Page(first.text)
    assert all(anchor(c.chunk_id) in page.ids for c in CHUNKS)


def test_the_route_works_beside_the_api_and_before_the_chat(tmp_path):
    """As server.py registers it: after the API, before the Gradio mount at "/"."""
    import gradio as gr

    from assistant.web.ui import build_ui
    from tests.test_api import make_client

    with make_client(tmp_path) as client:
        app = client.app
        services = app.state.runtime.services
        app.include_router(guide_router(lambda: services.chunks, services.settings))
        app = gr.mount_gradio_app(app, build_ui(app.state.runtime.desk, services.settings),
                                  path="/")
        with TestClient(app) as full:
            guide_page = full.get(GUIDE_PATH)
            assert guide_page.status_code == 200 and "<main" in guide_page.text
            assert full.get("/healthz").status_code in (200, 503)
            assert full.get("/").status_code == 200


def test_a_fragment_starts_at_its_quote_not_at_an_earlier_match(guide):
    """A browser highlights from the first place the start occurs: it occurs once."""
    text = guide.text.lower()
    for chunk in CHUNKS:
        for unit in guide_units(chunk.text):
            prefix, words = fragment_parts(guide.href(chunk.chunk_id, unit))
            start = f"{prefix} {words[0]}".strip().lower()
            assert text.count(start) == 1, (chunk.chunk_id, start)
            if len(words) == 2:  # the end is where the quote ends, not before
                quote = " ".join(re.sub(r"^\d+[.)]\s+", "", unit).split()).lower()
                assert quote.startswith(words[0].lower())
                assert quote.find(words[1].lower(), len(words[0])) == len(quote) - len(words[1])
