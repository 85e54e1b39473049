"""The patients' chat (Gradio Blocks), a thin adapter over the FrontDesk.

- The first screen says what the guide covers and offers questions drawn from its
  headings (one click asks one); the question box and Send are on it, also on a phone.
- A question shows in the chat at once. One sent while an answer is still coming is not
  lost: it shows in the chat "in line" and is answered next, in the order sent (a few at
  most wait; past that the box keeps the text and says why).
- While an answer is on its way its bubble says so ("Looking in the guide…", "You are
  number N in line…"), with no copy, thumbs or sources: they come with the answer. The
  guide's sentences show as they pass verification, then the whole answer with its
  ``[n]`` markers, and a collapsed "Sources" panel lists every footnote's section and
  exact quote. Each marker and each source links to its passage on the guide page
  (``/guide#…``, in a new tab, so the conversation stays as it is).
- ``not_in_guide`` answers say "Not covered in the guide" once, in the answer; under it,
  the guide's topics nearest to the question (one click asks about one) and a booking
  button. ``urgent`` answers raise a banner above everything with what to do now.
- "Book a consultation" opens the booking form, pre-filled with the conversation's
  summary. Each field's problem shows under it (announced, the focus on the first); a
  booked request closes the form and leaves its confirmation and reference in view,
  also after the chat ends; booking is not offered again in that conversation.
- "End chat" ends the conversation (after an answer still coming), closes the booking
  form and clears details typed there and not sent; the chat then says it has ended and
  offers "New conversation"; the next question starts one.
- Each browser tab has its own conversation; its id lives in the tab's
  ``sessionStorage``, so a reload of the same tab shows the same conversation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from bisect import insort
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from pydantic import ValidationError

from assistant.config import Settings
from assistant.corpus import Chunk, build_chunks
from assistant.errors import CorpusError, InputError, ScarguideError, SessionError
from assistant.frontdesk import BookingRequest, Feedback, FrontDesk
from assistant.handoff import summarise
from assistant.records import AnswerRecord
from assistant.safety import TextError, clean_lines, clean_message
from assistant.web.guide import GUIDE_PATH, Guide
from assistant.web.render import guide_link, link_markers, link_terms, plain

log = logging.getLogger("scarguide.ui")

THEME = gr.themes.Default(
    primary_hue="teal",
    font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
).set(
    # white on teal-700 is 5.5:1 (Gradio's teal-500 is 2.5:1)
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800",
    button_primary_text_color="white",
    button_primary_text_color_dark="white",
    # the question box's placeholder: 4.8:1 on white, 7.8:1 on the dark theme's input
    # (Gradio's neutral-400 is 1.9:1 on white, its dark neutral-500 3.1:1)
    input_placeholder_color="*neutral_500",
    input_placeholder_color_dark="*neutral_400",
)

STORAGE_KEY = "scarguide-session"
ENDED_KEY = "scarguide-ended"

CSS = """
#urgent { border: 3px solid #b00020; background: #fff0f0; color: #5c0011; padding: 0.75rem 1rem;
  border-radius: 8px; font-size: 1.1rem; }
#urgent h2 { color: #8a0016; margin-top: 0; }
#nearby { border-left: 6px solid #8a5a00; background: #fff8e6; color: #3d2800;
  padding: 0.5rem 0.75rem; border-radius: 4px; gap: 0.5rem; align-items: center; }
#nearby-title { flex: 1 1 100%; }
#notice { background: #eef6f6; color: #1b3b3b; padding: 0.4rem 0.8rem; border-radius: 4px;
  font-size: 0.95rem; }
#intro { gap: 0.5rem; }
#starters, #nearby { flex-wrap: wrap; }
#starters button, #nearby button { flex: 1 1 auto; min-width: min(100%, 14rem);
  min-height: 2.5rem; white-space: normal; text-align: left; justify-content: flex-start; }
#chat a, #covers a { color: #0b5c53; text-decoration: underline; }
/* one selector a rule: Gradio scopes a custom rule's first ".dark" only (a second one in the
   same rule never matches), and the light rule above would win on the dark theme */
.dark #chat a { color: #8fdccf; }
.dark #covers a { color: #8fdccf; }
@media (max-width: 640px) {
  #title h1 { font-size: 1.5rem !important; margin: 0 !important; }
  #notice, #covers { font-size: 0.9rem; }
  #chat { height: 45vh !important; }  /* the question box stays in view under an answer */
}
/* a term the guide defines: its definition shows on hover and on keyboard focus */
#chat a[title*="as the guide defines it"] { text-decoration: underline dotted;
  position: relative; }
#chat a[title*="as the guide defines it"]:hover::after,
#chat a[title*="as the guide defines it"]:focus-visible::after {
  content: attr(title); position: absolute; left: 0; top: 1.4em; z-index: 20;
  width: min(22rem, 80vw); padding: 0.4rem 0.6rem; border-radius: 4px;
  background: #1b3b3b; color: #ffffff; font-size: 0.9rem; line-height: 1.35;
  white-space: normal; text-decoration: none; }
/* the answer's text is its own layer (Gradio's 0.8 opacity): lift the message that holds
   the term shown, or the Sources panel after it is painted over the definition */
#chat .message:has(a[title*="as the guide defines it"]:hover),
#chat .message:has(a[title*="as the guide defines it"]:focus-visible) { z-index: 30; }
#booking { border: 2px solid #00695c; border-radius: 8px; padding: 0.5rem; }
#booking-result { font-size: 1.05rem; }
#input-error { color: #8a0016; font-weight: 600; }
button:focus-visible, textarea:focus-visible, input:focus-visible {
  outline: 3px solid #1a5fb4 !important; outline-offset: 2px; }
/* an answer on its way (and a question in line): no copy or thumbs until it has come */
#chat .message-row:has(.sg-pending) + .message-buttons,
#chat .message-row:has(.sg-pending) .message-buttons { display: none !important; }
#chat .sg-pending { color: #3d4f4f; font-style: italic; }
.field-error { margin-top: -0.25rem; }
.field-error .sg-field-error { color: #8a0016; font-weight: 600; }
.dark .field-error .sg-field-error { color: #ffb4ab; }
#ended-row { background: #eef6f6; color: #1b3b3b; border-radius: 4px; padding: 0.4rem 0.8rem;
  align-items: center; }
#booking-done { border: 2px solid #00695c; border-radius: 8px; padding: 0.5rem 0.75rem;
  font-size: 1.05rem; }
/* -- keyboard and screen reader (axe-core: tests/test_a11y.py) -- */
/* a box with a light background keeps its own dark text on the dark theme too: Gradio's
   Markdown gives each paragraph the theme's text colour (white on the dark theme) */
#notice :where(.prose), #notice :where(.prose *), #urgent :where(.prose),
#urgent :where(.prose *), #nearby-title :where(.prose), #nearby-title :where(.prose *),
#ended-row :where(.prose), #ended-row :where(.prose *) { color: inherit; }
/* the Sources panel at full contrast (Gradio dims it to 80%: its links were 3.3:1) */
#chat .thought-group .message-content { opacity: 1; }
/* the Sources title is a role=button; Gradio nests an unnamed <button> in it for the arrow
   (axe: nested-interactive, button-name): hidden, so out of the tab order and the
   accessibility tree, and the arrow drawn instead (it turns with the panel) */
#chat .thought-group .title .arrow > * { display: none !important; }
#chat .thought-group .title .arrow::before { content: ""; display: block; width: 0.45em;
  height: 0.45em; border-right: 2px solid currentColor; border-bottom: 2px solid currentColor;
  transform: translateY(-0.15em) rotate(45deg); }
"""

# the tab's conversation, and the one it ended (shown again after a reload, with its
# booking); a conversation going on forgets the ended one
SAVE_SESSION_JS = f"""(sid, ended) => {{
  try {{
    if (sid) {{ sessionStorage.setItem('{STORAGE_KEY}', sid); }}
    else {{ sessionStorage.removeItem('{STORAGE_KEY}'); }}
    if (!sid && ended) {{ sessionStorage.setItem('{ENDED_KEY}', ended); }}
    else {{ sessionStorage.removeItem('{ENDED_KEY}'); }}
  }} catch (e) {{}}
  return [];
}}"""
# a question leaves the box the moment it is sent (Enter in the box, or Send): the page
# notes the box's text then, before the app reads the box (which, on a busy device, can be
# after the next keys were typed); SEND_JS takes the notes in order
NOTE_SENT_JS = """
  if (!window.__scarguideSent) {
    window.__scarguideSent = [];
    const note = () => {
      const box = document.querySelector('#msg textarea, #msg input');
      if (box) { window.__scarguideSent.push({text: box.value, at: Date.now()}); }
    };
    document.addEventListener('keydown', e => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing
          && e.target && e.target.closest && e.target.closest('#msg')) { note(); }
    }, true);
    document.addEventListener('click', e => {
      if (e.target && e.target.closest && e.target.closest('#send')) { note(); }
    }, true);
  }
"""
# Gradio's chatbot names each message by its raw content (Markdown, escapes and all):
# the page renames each one from the text the patient sees, whenever Gradio sets it again
PLAIN_LABELS_JS = """
  if (!window.__scarguideLabels) {
    window.__scarguideLabels = true;
    const rename = el => {
      const who = el.dataset.testid === 'user' ? 'You' : 'The assistant';
      const plain = `${who}: ${(el.innerText || '').replace(/\\s+/g, ' ').trim()}`;
      if (el.getAttribute('aria-label') !== plain) { el.setAttribute('aria-label', plain); }
    };
    let queued = false;
    const sweep = () => {
      queued = false;
      document.querySelectorAll('#chat [data-testid=bot][aria-label], '
        + '#chat [data-testid=user][aria-label]').forEach(rename);
    };
    const soon = () => { if (!queued) { queued = true; requestAnimationFrame(sweep); } };
    new MutationObserver(soon).observe(document.body, {subtree: true, childList: true,
      characterData: true, attributes: true, attributeFilter: ['aria-label']});
    sweep();
  }
"""
# on load: the tab's conversation id, as restore's first input (the tab state, the second,
# is the server's); the page starts noting what is sent and naming messages in plain text
READ_SESSION_JS = """(sid, tab, _ended) => {
__NOTE__
__LABELS__
  let stored = '', ended = '';
  try {
    stored = sessionStorage.getItem('__KEY__') || '';
    ended = sessionStorage.getItem('__ENDED__') || '';
  } catch (e) {}
  return [stored, tab === undefined ? null : tab, ended];
}""".replace("__NOTE__", NOTE_SENT_JS.strip("\n")).replace("__KEY__", STORAGE_KEY).replace(
    "__ENDED__", ENDED_KEY).replace(
    "__LABELS__", PLAIN_LABELS_JS.strip("\n"))
# the booking form's fields, in the order they are shown: the error under each has the
# field's id + "-error"
FORM_FIELDS = {"concern": "b-concern", "name": "b-name", "email": "b-email",
               "phone": "b-phone", "preferred_times": "b-times", "consent": "b-consent"}
REQUIRED_IDS = ("b-name", "b-times", "b-consent")
# the booking form opens below the chat: bring it into view (on a phone it is off screen);
# its required inputs say so to assistive technology
SHOW_BOOKING_JS = """() => {
  let tries = 0;
  const run = () => {
    const form = document.getElementById('booking');
    const ready = form && form.offsetParent !== null
      && document.querySelector('#b-name input, #b-name textarea');
    if (!ready && tries++ < 40) { setTimeout(run, 50); return; }
    if (form) { form.scrollIntoView({block: "start"}); }
    for (const id of __IDS__) {
      document.querySelectorAll('#' + id + ' input, #' + id + ' textarea')
        .forEach(e => e.setAttribute('aria-required', 'true'));
    }
  };
  setTimeout(run, 50);
  return [];
}""".replace("__IDS__", json.dumps(REQUIRED_IDS))
# after a booking is sent: each input with a problem is marked invalid and described by
# its error; the focus goes to the first one (unless the patient has already moved it, by
# typing in another field), or to the confirmation when it is booked
BOOKING_FOCUS_JS = """(target) => {
  const ids = __IDS__;
  let tries = 0;
  const mark = () => {
    for (const id of ids) {
      const err = document.getElementById(id + '-error');
      const shown = !!(err && err.offsetParent !== null && err.innerText.trim());
      document.querySelectorAll('#' + id + ' input, #' + id + ' textarea').forEach(e => {
        if (shown) {
          e.setAttribute('aria-invalid', 'true');
          e.setAttribute('aria-describedby', id + '-error');
        } else { e.removeAttribute('aria-invalid'); e.removeAttribute('aria-describedby'); }
      });
    }
  };
  const run = () => {
    const box = target ? document.getElementById(target) : null;
    const el = !box ? null : (target === 'booking-done' ? box
      : box.querySelector('input, textarea'));
    const ready = el && el.offsetParent !== null
      && (target === 'booking-done' || (document.getElementById(target + '-error')
          || {}).offsetParent);
    if (target && !ready && tries++ < 40) { setTimeout(run, 50); return; }
    mark();
    if (!el) { return; }
    // a patient already typing somewhere else keeps the focus where they put it
    const active = document.activeElement;
    const moved = active && active !== document.body && !active.closest('#b-submit');
    if (target !== 'booking-done' && moved) { return; }
    if (target === 'booking-done') { el.setAttribute('tabindex', '-1'); }
    el.scrollIntoView({block: 'center'});
    el.focus({preventScroll: true});
  };
  setTimeout(run, 30);
  return [];
}""".replace("__IDS__", json.dumps(list(FORM_FIELDS.values())))
# the chat ended: its note comes into view (it is a live region: it is also announced)
SHOW_ENDED_JS = """() => {
  setTimeout(() => {
    const note = document.getElementById('ended');
    if (note) { note.scrollIntoView({block: 'nearest'}); }
  }, 80);
  return [];
}"""
# each question the page sends gets the next number (its last input): the server answers
# them in this order, whatever order their requests reach it in
NUMBER_JS = """(...inputs) => {
  window.__scarguideAsked = (window.__scarguideAsked || 0) + 1;
  inputs[inputs.length - 1] = window.__scarguideAsked;
  return inputs;
}"""
# a question sent from the box: its text as noted when it was sent (NOTE_SENT_JS; what
# the app read from the box if there is no fresh note), numbered, and out of the box in
# one step: the box keeps only what was typed after it. The answer never writes to the
# box, so a next question can be typed meanwhile
SEND_JS = """(...inputs) => {
  const notes = window.__scarguideSent || [];
  let note = notes.shift();
  while (note && Date.now() - note.at > 10000) { note = notes.shift(); }
  const text = note ? note.text : (inputs[0] || '');
  inputs[0] = text;
  const box = document.querySelector('#msg textarea, #msg input');
  if (box && text.trim() !== '' && box.value.startsWith(text)) {
    box.value = box.value.slice(text.length).replace(/^\\s+/, '');
    box.dispatchEvent(new Event('input', {bubbles: true}));
  }
  return (__NUMBER__)(...inputs);
}""".replace("__NUMBER__", NUMBER_JS)
# the chat shows a question on its way while the ended note is up: it has started a new
# conversation, so the note goes and booking is offered again (a conversation that has
# just started has no booking)
NEW_CONVERSATION_JS = """(chat) => {
  const row = document.getElementById('ended-row');
  const ended = !!(row && row.offsetParent !== null && !row.querySelector('.sg-pending'));
  const last = Array.isArray(chat) && chat.length ? chat[chat.length - 1] : null;
  if (!ended || !last || !JSON.stringify(last).includes('sg-pending')) {
    return [undefined, undefined, undefined];
  }
  const show = {__type__: 'update', visible: true};
  return [{__type__: 'update', visible: false}, show, show];
}"""
# a new conversation: the question box has the focus
FOCUS_QUESTION_JS = """() => {
  setTimeout(() => {
    const box = document.querySelector('#msg textarea, #msg input');
    if (box) { box.focus(); }
  }, 80);
  return [];
}"""

NOT_COVERED = "**Not covered in the guide.**"
PARTLY_COVERED = "**Partly covered in the guide.**"

# an answer on its way: the bubble says so, and carries no copy or thumbs button (the CSS
# hides them in a message row holding ``.sg-pending``)
LOOKING = "Looking in the guide…"
IN_LINE = "Many people are asking right now: you are number {n} in line…"
WAITING = "In line: answered after the question above."
MAX_WAITING = 3  # the questions one tab may have waiting behind the one being answered
TOO_MANY = (f"{MAX_WAITING} questions are already waiting for their answers. Your question "
            "is still in the box: send it once an answer has arrived.")
ENDING = ("The chat is ending after the answer on its way. Your question is still in the "
          "box: send it then, and it starts a new conversation.")
ENDED = ("<strong>This conversation has ended.</strong> Your next question starts a new "
         "conversation, or choose New conversation.")
BOOKED_ENDED = ("<strong>This conversation has ended.</strong> Your booking request is with "
                "the clinic. Your next question starts a new conversation, or choose New "
                "conversation.")


def pending_html(text: str, live: bool = True) -> str:
    """The in-progress part of a bubble (our own words, never the patient's)."""
    role = ' role="status"' if live else ""
    return f'<span class="sg-pending"{role}>{text}</span>'


def is_pending(message: dict[str, Any]) -> bool:
    return "sg-pending" in str(message.get("content", ""))


def waiting_messages(questions) -> list[dict[str, Any]]:
    """Questions in line behind the one being answered: each shows as sent, with a note."""
    shown: list[dict[str, Any]] = []
    for question in questions:
        shown.append({"role": "user", "content": plain(question)})
        shown.append({"role": "assistant", "content": pending_html(WAITING, live=False)})
    return shown


def _source_title(n: int, section: str) -> str:
    return f"Source {n}: {section} (opens the guide in a new tab)"


def sources_markdown(record: AnswerRecord, guide: Guide | None = None) -> str:
    """Each footnote: its number, its section (a link to its place in the guide page) and
    the exact quote."""

    def section(c) -> str:
        href = guide.href(c.chunk_id, c.quote) if guide else None
        return guide_link(plain(c.section), href, _source_title(c.n, c.section))

    parts = [f"**\\[{c.n}\\]** {section(c)}  \n“{plain(c.quote)}”" for c in record.citations]
    if record.glossary:  # the terms, readable without hover: the guide's own definitions
        parts.append("**Terms, as the guide defines them**")
        for g in record.glossary:
            href = guide.href(g.chunk_id, g.definition) if guide else None
            where = guide_link(plain(g.section.split(" › ")[-1]), href,
                               f"{g.term} in the guide (opens the guide in a new tab)")
            parts.append(f"**{plain(g.term)}**: “{plain(g.definition)}” ({where})")
    return "\n\n".join(parts)


def translations_markdown(record: AnswerRecord) -> str:
    """The cited sentences' automatic translations, under a label saying so: each after
    its ``[n]``; one that failed its check is a note that the English stands alone."""
    if not record.translations:
        return ""
    lines = [f"_{plain(record.translation_label or '')}_"]
    for t in record.translations:
        shown = plain(t.shown) if t.passed else f"_{plain(t.shown)}_"
        lines.append(f"\\[{t.n}\\] {shown}")  # escaped as plain() escapes a marker
    return "\n\n" + "  \n".join(lines)


def answer_markdown(record: AnswerRecord, guide: Guide | None = None) -> str:
    """The answer's text, escaped, with each ``[n]`` a link to its source in the guide,
    then the sentences' checked translations when the patient wrote in another language."""
    text = plain(record.answer)
    if guide is None:
        return text + translations_markdown(record)
    hrefs = {c.n: guide.href(c.chunk_id, c.quote) for c in record.citations}
    titles = {c.n: _source_title(c.n, c.section) for c in record.citations}
    terms = [((g.term, *g.also), guide.href(g.chunk_id, g.definition), term_title(g))
             for g in record.glossary]
    return link_markers(link_terms(text, terms) + translations_markdown(record), hrefs, titles)


def term_title(entry) -> str:
    """A glossary term's title: the guide's defining sentence, said as the guide's."""
    return f"{entry.term}, as the guide defines it: {entry.definition}"


def answer_messages(record: AnswerRecord, guide: Guide | None = None,
                    booked: str | None = None) -> list[dict[str, Any]]:
    """The chat messages that show one answer: the text, then its collapsed sources.
    With ``guide``, its markers and sources link to the guide page. ``booked``: the
    reference of a booking made in this conversation (the consultation is not offered
    again; the closing message names the reference instead)."""
    if booked and record.status == "handoff" and record.handoff is not None:
        thanks = record.answer.removesuffix(record.handoff.message).strip()
        text = (f"{plain(thanks)} Your booking request (reference "
                f"**{plain(booked)}**) is with the clinic: they will contact you.")
        return [{"role": "assistant", "content": text}]
    text = answer_markdown(record, guide)
    if record.status == "not_in_guide" and record.language == "en":  # (else its own text
        # says so in the patient's language)
        text = f"{PARTLY_COVERED if record.coverage == 'partial' else NOT_COVERED} {text}"
    elif record.status == "urgent":
        text = f"**Urgent.** {text}"
    if record.notice:
        text = f"**Urgent.** {plain(record.notice)}\n\n{text}"
    # a "not covered" answer already offers the consultation, with a booking button under it
    if (record.handoff is not None and record.status not in ("handoff", "not_in_guide")
            and not booked):
        text += f"\n\n_{plain(record.handoff.message)}_"
    messages = [{"role": "assistant", "content": text}]
    if record.citations:
        messages.append(
            {
                "role": "assistant",
                "content": sources_markdown(record, guide),
                "metadata": {"title": f"Sources ({len(record.citations)})", "status": "done"},
            }
        )
    return messages


def urgent_markdown(record: AnswerRecord) -> str:
    return f"## Get help now\n\n{plain(record.notice or record.answer)}"


NEARBY = 4  # the most topics offered under a "not covered" answer


def nearby_for(record: AnswerRecord, guide: Guide) -> list[str]:
    """The questions offered under a "not covered" answer: the guide's sections nearest to
    the question (its retrieved candidates), less those the answer already quotes."""
    return guide.nearby_questions(
        record.retrieved, [c.section for c in record.citations], limit=NEARBY
    )


UNNUMBERED = 10**12  # the line's place of a question the page did not number
ORDER_WAIT_S = 2.0  # how long a question in line waits for an earlier one still on its way


class Tab:
    """One browser tab's chat as its events share it (held in a ``gr.State``, one per
    tab): the questions waiting their turn, whether one of its events is answering them,
    what the chat shows, and the conversation it continues. Every field is read and
    written under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # a question arrived
        # sent, not yet being answered: (the page's number for it, the text), in the order
        # the page sent them (their requests may reach the server in another order)
        self.waiting: list[tuple[int, str]] = []
        self.arrived: set[int] = set()  # the page's numbers of every question that came
        self._unnumbered = 0
        self.answering = False  # one event of this tab answers the questions, in turn
        self.ending = False  # "End chat" waits for the answer on its way
        self.ended = False  # the next question starts a new conversation
        self.chat: list[dict[str, Any]] | None = None  # the chat once settled (None: unknown)
        self.shown: list[dict[str, Any]] = []  # what the answering event shows now
        self.sid: str | None = None  # the conversation the next question continues
        self.turns: dict | None = None
        self.booked: str | None = None  # the reference booked in this conversation
        self.form: dict[str, Any] = {}  # the last booking attempt's outcome

    def __deepcopy__(self, memo) -> Tab:  # gr.State copies its initial value per tab
        return Tab()

    def view(self) -> list[dict[str, Any]]:
        """The chat as shown now: what is settled or being answered, then the questions in
        line. Call under ``lock``, as for every method."""
        return [*self.shown, *waiting_messages(q for _, q in self.waiting)]

    def add(self, number: int | None, text: str) -> None:
        """A question joins the line in the page's order (one without a number, from a
        caller other than the page, goes after every numbered one)."""
        if number is None:
            self._unnumbered += 1
            number = UNNUMBERED + self._unnumbered
        insort(self.waiting, (number, text))

    def gap(self) -> bool:
        """Has the page sent a question before the first in line that has not come yet?"""
        if not self.waiting or self.waiting[0][0] >= UNNUMBERED:
            return False
        return any(n not in self.arrived for n in range(1, self.waiting[0][0]))

    def next_question(self, wait_s: float) -> str | None:
        """The first question in line (after up to ``wait_s`` s for an earlier one the
        page sent and the server has not seen yet), or None when the line is empty."""
        deadline = time.monotonic() + wait_s
        while self.gap() and (left := deadline - time.monotonic()) > 0:
            self.changed.wait(left)
        return self.waiting.pop(0)[1] if self.waiting else None


# -- the booking form's errors, field by field ----------------------------------------------

_FIELDS = {"name": "your name", "email": "the email address", "phone": "the phone number",
           "preferred_times": "when we can reach you", "concern": "the description"}
# what each field's problem says under it
_FIELD_MESSAGES = {
    "name": "Please enter your name.",
    "email": "Please check the email address: it should look like name@example.org.",
    "phone": "Please check the phone number: use digits, spaces and + ( ) - . / only.",
    "preferred_times": "Please say when the clinic can reach you (days and times).",
    "consent": "Please tick the box to agree that the clinic may contact you.",
    "concern": "The description is too long.",
}
_TOO_LONG = {"name": "Your name is too long: {n} characters at most.",
             "phone": "The phone number is too long: {n} characters at most.",
             "preferred_times": "This is too long: {n} characters at most.",
             "concern": "The description is too long: {n} characters at most."}
REACH = "Please give an email address or a phone number, so the clinic can reply."
# a stand-in that passes each field's own check, to reach the form-wide checks
_STAND_IN = {"name": "A", "email": "name@example.org", "phone": "+1 555 0100",
             "preferred_times": "any time", "concern": "", "consent": True}


def _field_message(field: str, error: dict[str, Any]) -> str:
    if error.get("type") == "invalid_text":  # a character the field does not take
        return f"{_FIELDS.get(field, field).capitalize()} {error['msg']}."
    if error.get("type") == "string_too_long" and field in _TOO_LONG:
        return _TOO_LONG[field].format(n=(error.get("ctx") or {}).get("max_length", ""))
    return _FIELD_MESSAGES.get(field, str(error.get("msg", "")).removeprefix("Value error, "))


def field_errors(data: dict[str, Any]) -> dict[str, str]:
    """What is wrong with each field of a booking, as ``BookingRequest`` checks it: field
    name → the message to show under it (none: nothing is wrong). ``BookingRequest``
    checks the whole form (an email or a phone; name and times not blank) only once each
    field passes, so those checks run again with a stand-in for each field in error: every
    problem shows at once."""
    errors: dict[str, str] = {}
    for attempt in range(2):
        probe = {**data, **{f: _STAND_IN[f] for f in errors}}
        try:
            BookingRequest(**probe)
            break
        except ValidationError as exc:
            for error in exc.errors():
                loc = error.get("loc") or ()
                field = str(loc[0]) if loc else ""
                if field in FORM_FIELDS:
                    errors.setdefault(field, _field_message(field, error))
                elif not field:  # the whole form's checks
                    if not probe.get("email") and not probe.get("phone"):
                        errors.setdefault("email", REACH)
                    for blank in ("name", "preferred_times"):
                        if not str(probe.get(blank) or "").strip():
                            errors.setdefault(blank, _FIELD_MESSAGES[blank])
            if attempt == 0 and not errors:
                break
    return {f: errors[f] for f in FORM_FIELDS if f in errors}


def _form_errors(exc: ValidationError) -> list[str]:
    """The summary under the Send button: each problem in a few words."""
    labels = {
        "name": "your name is missing",
        "email": "that email address does not look right",
        "phone": "that phone number does not look right",
        "preferred_times": "please say when we can reach you",
        "consent": "please tick the box to agree that the clinic may contact you",
        "concern": "the description is too long",
    }
    found = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if error.get("type") == "invalid_text":  # a character the field does not take
            message = f"{_FIELDS.get(field, field)} {error['msg']}"
        else:
            message = labels.get(field) or str(error.get("msg", "")).removeprefix("Value error, ")
        if message not in found:
            found.append(message)
    return found


def field_error_html(message: str) -> str:
    """A field's problem, under it; announced as it appears."""
    return f'<span class="sg-field-error" role="alert">{plain(message)}</span>'


def confirmation_html(reference: str) -> str:
    # nothing the patient typed is shown back: the reference is the clinic's own
    return (
        '<div role="status"><strong>Thank you, your request is booked.</strong> Your '
        f"reference is <strong id='booking-ref'>{plain(reference)}</strong>. "
        "Keep it: the clinic will contact you to arrange a time.</div>"
    )


def _client(request: gr.Request | None) -> str | None:
    client = getattr(request, "client", None)
    return getattr(client, "host", None)



def build_ui(desk: Callable[[], FrontDesk], settings: Settings,
             chunks: list[Chunk] | None = None) -> gr.Blocks:
    """The patients' page. ``chunks``: the guide as indexed (default: read from
    ``settings.corpus_dir``, as ``Services.chunks`` does)."""
    if chunks is None:
        try:
            chunks = build_chunks(settings.corpus_dir, settings.chunk_max_words)
        except CorpusError as exc:  # the chat says so when asked; the page still loads
            log.error("the guide cannot be read: %s", exc)
            chunks = []
    guide = Guide(chunks)
    guide_title = guide.title() or "All about acne scars"
    notice = (
        f"General information from the guide *{plain(guide_title)}*, with a source for every "
        "sentence. It is not a diagnosis or medical advice. "
        f"In an emergency, call {plain(settings.emergency_number)}."
    )
    covers = (
        f"**What the guide covers:** {plain(guide.covers_line())}. "
        f"[Read the whole guide]({GUIDE_PATH} \"Opens the guide in a new tab\")"
    ) if guide.chunks else ""
    starters = guide.starter_questions()
    # a handler called without Gradio (a test) has no tab state: this one stands in
    local = Tab()

    with gr.Blocks(title="Acne scar guide — ask a question", analytics_enabled=False) as demo:
        session_box = gr.Textbox(visible=False, elem_id="session-id")
        ended_session = gr.Textbox(visible=False, elem_id="ended-session")  # a booking follows it
        turn_of = gr.State({})  # chat message index → [session id, answer (turn) number]
        feedback_id = gr.State(None)
        tab_state = gr.State(Tab())  # a fresh Tab for each browser tab
        form_focus = gr.Textbox(visible=False, elem_id="form-focus")  # after a booking
        asked_number = gr.Number(visible=False, precision=0)  # NUMBER_JS sets it

        urgent = gr.Markdown(visible=False, elem_id="urgent")
        gr.Markdown("# Questions about acne scars", elem_id="title")
        gr.Markdown(notice, elem_id="notice")

        # the first screen, until the first message: what the guide covers, questions to
        # start with (the chat itself appears with the first message)
        with gr.Column(elem_id="intro") as intro:
            gr.Markdown(covers, elem_id="covers")
            gr.Markdown("**Start with one of these, or type your own question below:**",
                        elem_id="starters-title")
            with gr.Row(elem_id="starters"):
                starter_buttons = [
                    gr.Button(q, size="sm", variant="secondary", elem_classes=["suggestion"])
                    for q in starters
                ]

        chat = gr.Chatbot(
            label="Conversation",
            elem_id="chat",
            height=460,
            sanitize_html=True,
            buttons=["copy"],
            visible=False,
        )
        # under a "not covered" answer: the guide's nearest topics and the booking button
        with gr.Row(visible=False, elem_id="nearby") as nearby_row:
            gr.Markdown("**The guide does cover these topics near your question:**",
                        elem_id="nearby-title")
            nearby = [
                gr.Button("", size="sm", variant="secondary", visible=False,
                          elem_classes=["suggestion"], elem_id=f"nearby-{i}")
                for i in range(NEARBY)
            ]
            nearby_book = gr.Button("Book a consultation", variant="primary", size="sm",
                                    elem_id="nearby-book")
        # after "End chat": the conversation has ended, the next one starts clearly
        with gr.Row(visible=False, elem_id="ended-row") as ended_row:
            ended_note = gr.Markdown(ENDED, elem_id="ended")
            new_chat = gr.Button("New conversation", variant="secondary", elem_id="new-chat",
                                 scale=0)
        with gr.Row():
            message = gr.Textbox(
                label="Your question",
                placeholder="e.g. What is the difference between acne marks and scars?",
                elem_id="msg",
                scale=5,
                max_lines=6,
                autofocus=True,
            )
            send = gr.Button("Send", variant="primary", elem_id="send", scale=1)
        input_error = gr.Markdown(visible=False, elem_id="input-error")
        with gr.Row(visible=False, elem_id="comment-row") as comment_row:
            comment = gr.Textbox(
                label="Tell us more about this answer (optional)", elem_id="comment", scale=5
            )
            comment_send = gr.Button("Send comment", elem_id="comment-send", scale=1)
        with gr.Row():
            book = gr.Button("Book a consultation", variant="primary", elem_id="book-btn")
            end = gr.Button("End chat", variant="secondary", elem_id="end-btn")

        # a booked request: its confirmation stays in view, also once the chat has ended
        booking_done = gr.Markdown(visible=False, elem_id="booking-done")
        with gr.Column(visible=False, elem_id="booking") as booking:
            gr.Markdown("## Book a consultation\nA dermatologist from the clinic will contact "
                        "you. Fields marked *required* must be filled in; a phone number "
                        "can stand in for the email address.")
            concern = gr.Textbox(
                label="What you would like to discuss (you can edit this)", lines=4,
                elem_id="b-concern",
            )
            concern_error = gr.Markdown(visible=False, elem_id="b-concern-error",
                                        elem_classes=["field-error"])
            name = gr.Textbox(label="Your name (required)", elem_id="b-name",
                              html_attributes=gr.InputHTMLAttributes(autocomplete="name"))
            name_error = gr.Markdown(visible=False, elem_id="b-name-error",
                                     elem_classes=["field-error"])
            with gr.Row():
                with gr.Column():
                    email = gr.Textbox(
                        label="Email (required, or give a phone number)", elem_id="b-email",
                        type="email",
                        html_attributes=gr.InputHTMLAttributes(autocomplete="email"))
                    email_error = gr.Markdown(visible=False, elem_id="b-email-error",
                                              elem_classes=["field-error"])
                with gr.Column():
                    phone = gr.Textbox(
                        label="Phone (if you prefer a call)",
                        elem_id="b-phone",
                        html_attributes=gr.InputHTMLAttributes(autocomplete="tel"))
                    phone_error = gr.Markdown(visible=False, elem_id="b-phone-error",
                                              elem_classes=["field-error"])
            times = gr.Textbox(
                label="When can we reach you? (days and times), required", elem_id="b-times"
            )
            times_error = gr.Markdown(visible=False, elem_id="b-times-error",
                                      elem_classes=["field-error"])
            consent = gr.Checkbox(
                label="I agree that the clinic may contact me about this request. (required)",
                elem_id="b-consent",
            )
            consent_error = gr.Markdown(visible=False, elem_id="b-consent-error",
                                        elem_classes=["field-error"])
            submit = gr.Button("Send booking request", variant="primary", elem_id="b-submit")
            booking_result = gr.Markdown(elem_id="booking-result")

        form_inputs = {"concern": concern, "name": name, "email": email, "phone": phone,
                       "preferred_times": times, "consent": consent}
        form_errors = {"concern": concern_error, "name": name_error, "email": email_error,
                       "phone": phone_error, "preferred_times": times_error,
                       "consent": consent_error}

        # -- handlers -------------------------------------------------------------------

        hidden = gr.update(visible=False)
        keep = gr.update()

        def tab_of(tab: Tab | None) -> Tab:
            return tab if isinstance(tab, Tab) else local

        restore_outputs = [chat, session_box, turn_of, intro, nearby_row, *nearby,
                           ended_session, ended_row, ended_note, booking_done, book,
                           nearby_book]

        def offer(record: AnswerRecord | None) -> list:
            """The nearby row and its buttons for the answer shown last."""
            if record is None or record.status != "not_in_guide":
                return [hidden, *([gr.update()] * NEARBY)]
            questions = nearby_for(record, guide)
            return [gr.update(visible=True)] + [
                gr.update(value=questions[i], visible=True) if i < len(questions) else hidden
                for i in range(NEARBY)
            ]

        def shown_chat(history: list) -> Any:
            return gr.update(value=history, visible=bool(history))

        def restore(sid: str, tab: Tab | None = None, ended_sid: str = ""):
            """A reload of this tab: its conversation again, or the one it ended (the ended
            note, and a booking's confirmation, as they were before the reload)."""
            tab = tab_of(tab)
            sid, ended_sid = (sid or "").strip(), (ended_sid or "").strip()
            empty = dict(zip(restore_outputs, [
                [], "", {}, gr.update(visible=True), *offer(None), "", hidden, gr.update(),
                hidden, gr.update(visible=True), gr.update()], strict=True))
            shown_sid = sid or ended_sid
            if not shown_sid:
                return empty
            try:
                records = desk().history(shown_sid)
                ended = desk().store.ended(shown_sid)
                booked = desk().store.booking_for_session(shown_sid)
            except (SessionError, ScarguideError):
                return empty
            if not sid and not ended:  # an ended id that is not ended: nothing to restore
                return empty
            reference = booked["reference"] if booked else None
            history: list[dict[str, Any]] = []
            turns: dict[int, int] = {}
            for record in records:
                if record.question != "[end of conversation]":
                    history.append({"role": "user", "content": plain(record.question)})
                turns[len(history)] = [record.session_id, record.turn]
                history.extend(answer_messages(record, guide, reference))
            with tab.lock:
                if not tab.answering:
                    tab.chat, tab.shown, tab.turns = history, history, turns
                    tab.sid = "" if ended else sid
                    tab.ended, tab.booked = ended, reference
            offer_booking = gr.update(visible=reference is None)
            return {
                **dict(zip(restore_outputs[:5 + NEARBY], [
                    shown_chat(history), "" if ended else sid, turns,
                    gr.update(visible=not history),
                    *offer(records[-1] if records and not ended else None)], strict=True)),
                ended_session: shown_sid if ended else "",
                ended_row: gr.update(visible=ended),
                ended_note: f'<div role="status">{BOOKED_ENDED if reference else ENDED}</div>',
                booking_done: gr.update(value=confirmation_html(reference), visible=True)
                if reference else hidden,
                book: offer_booking, nearby_book: offer_booking,
            }

        def answer_one(text: str, history: list, sid: str, turns: dict, request,
                       tab: Tab) -> Iterator[list]:
            """One question, shown at once, then its answer as it comes. Yields the chat,
            session id, turns, urgent banner, input error, first screen, nearby row and
            its buttons."""
            history = [*history, {"role": "user", "content": plain(text)}]
            answer_at = len(history)
            asking = [hidden, *offer(None)]  # the first screen and the last offer go

            def bubble(*parts: str) -> list[dict[str, Any]]:
                return [*history, {"role": "assistant", "content": "".join(parts)}]

            yield [bubble(pending_html(LOOKING)), sid, turns, hidden, hidden, *asking]
            try:
                desk().allow(_client(request))
                try:
                    events = desk().stream(text, sid or None)
                except SessionError:  # an ended or expired conversation: a new one starts
                    sid = ""
                    events = desk().stream(text, None)
            except ScarguideError as exc:  # not answered: the question stays in the chat
                if not isinstance(exc, InputError):
                    log.error("chat unavailable: %s", type(exc).__name__)
                history.append({"role": "assistant",
                                "content": f"**Not answered.** {plain(exc.patient_message)}"})
                yield [history, sid, turns, hidden, hidden, *asking]
                return
            urgent_first = ""  # triage unsure: help first, then the answer
            shown: list[str] = []
            banner = hidden
            try:
                for event in events:
                    if event.kind == "notice":
                        urgent_first = f"**Urgent.** {plain(event.text)}\n\n"
                        banner = gr.update(value=f"## Get help now\n\n{plain(event.text)}",
                                           visible=True)
                        yield [bubble(urgent_first, pending_html(LOOKING)), sid, turns,
                               banner, hidden, *asking]
                    elif event.kind == "queued":
                        waiting = pending_html(IN_LINE.format(n=plain(event.text)))
                        yield [bubble(urgent_first, waiting), sid, turns, banner, hidden,
                               *asking]
                    elif event.kind == "translation":  # shown with the record, next
                        continue
                    elif event.record is None:  # a verified sentence
                        shown.append(plain(event.text))
                        yield [bubble(urgent_first, " ".join(shown), " ",
                                      pending_html("…", live=False)),
                               sid, turns, banner, hidden, *asking]
                    else:
                        record = event.record
                        with tab.lock:
                            booked = tab.booked
                        history = history + answer_messages(record, guide, booked)
                        turns = {**turns, answer_at: [record.session_id, record.turn]}
                        yield [
                            history, record.session_id, turns,
                            gr.update(value=urgent_markdown(record), visible=True)
                            if record.status == "urgent" or record.notice else hidden,
                            hidden, hidden, *offer(record),
                        ]
            except ScarguideError as exc:
                log.error("answer failed: %s", type(exc).__name__)
                history.append({"role": "assistant",
                                "content": f"**Not answered.** {plain(exc.patient_message)}"})
                yield [history, sid, turns, hidden, hidden, *asking]
            finally:  # a patient who pressed stop or left gives the place in line back
                events.close()

        def ask(text: str, history: list, sid: str, turns: dict, request, tab: Tab | None,
                from_box: bool, number: float | None = None) -> Iterator[tuple]:
            """A question joins this tab's line. The event that finds nobody answering
            answers every question in line, in order; any other shows its question in
            line and is done. Outputs: chat, question box, session id, turns, urgent
            banner, input error, first screen, nearby row, its buttons."""
            tab = tab_of(tab)
            rest = [keep] * (NEARBY + 2)  # first screen, nearby row and buttons
            # the page took the question out of the box as it sent it (SEND_JS): the
            # answer never writes to it, so what the patient types meanwhile stays
            box = keep

            def refused(why: str) -> tuple:  # the text goes back in the box, the reason under it
                back = text if from_box and (text or "").strip() else keep
                return (keep, back, keep, keep, keep, gr.update(value=why, visible=True),
                        *rest)

            number = int(number) if number else None  # the page numbers what it sends
            try:  # what cannot be asked stays in the box, with the reason
                clean_message(text or "", settings.max_message_chars)
                refusal = None
            except InputError as exc:
                refusal = exc.patient_message
            with tab.lock:
                if number is not None:
                    tab.arrived.add(number)
                    tab.changed.notify_all()
                if refusal:
                    pass
                elif tab.ending:
                    refusal = ENDING
                elif len(tab.waiting) >= MAX_WAITING:
                    refusal = TOO_MANY
                else:
                    tab.add(number, text)
                    answering = not tab.answering
                    if answering:
                        tab.answering = True
                        if tab.chat is None:  # first in this tab: the chat as the page shows it
                            tab.chat = list(history or [])
                            tab.turns = dict(turns or {})
                            tab.sid = (sid or "").strip()
                        tab.shown = list(tab.chat)
                    view = tab.view()
            if refusal:
                yield refused(refusal)
                return
            if not answering:  # in line: shown at once, answered by the event answering
                yield (shown_chat(view), box, keep, keep, keep, hidden, hidden, *rest[1:])
                return
            try:
                while True:
                    with tab.lock:
                        question = tab.next_question(ORDER_WAIT_S)
                        if question is None:
                            tab.answering = False
                            return
                        if tab.ended:  # a new conversation, on a clear screen
                            tab.chat, tab.turns, tab.sid = [], {}, ""
                            tab.ended, tab.booked = False, None
                        chat_now, sid_now = list(tab.chat), tab.sid or ""
                        turns_now = dict(tab.turns or {})
                    outputs, first = None, True
                    for outputs in answer_one(question, chat_now, sid_now, turns_now, request,
                                              tab):
                        with tab.lock:
                            tab.shown = outputs[0]
                            view = tab.view()
                        yield (shown_chat(view) if first else view, box, *outputs[1:])
                        first = False
                    if outputs is not None:
                        with tab.lock:
                            tab.chat, tab.sid, tab.turns = outputs[0], outputs[1], outputs[2]
            finally:
                with tab.lock:
                    tab.answering = False

        def respond(text: str, history: list, sid: str, turns: dict, request: gr.Request,
                    tab: Tab | None = None, number: float | None = None) -> Iterator[tuple]:
            """A question typed in the box (the page takes it out of the box as it sends it).
            ``number``: the page's count of the questions it has sent (NUMBER_JS)."""
            yield from ask(text, history, sid, turns, request, tab, True, number)

        def ask_suggestion(question: str, history: list, sid: str, turns: dict,
                           request: gr.Request, tab: Tab | None = None,
                           number: float | None = None) -> Iterator[tuple]:
            """A suggested question, asked by one click; what is typed in the box stays."""
            yield from ask(question, history, sid, turns, request, tab, False, number)

        chat_outputs = [chat, message, session_box, turn_of, urgent, input_error, intro,
                        nearby_row, *nearby]
        # respond is each trigger's only listener with a function: the page runs a trigger's
        # listeners one after the other, each to its end, so a listener before it would
        # delay its reading of the box
        for trigger in (message.submit, send.click):
            trigger(
                respond,
                [message, chat, session_box, turn_of, tab_state, asked_number],
                chat_outputs,
                js=SEND_JS,
                concurrency_limit=None,
                trigger_mode="multiple",
                show_progress="hidden",
            ).then(None, [session_box, ended_session], None, js=SAVE_SESSION_JS)
        for button in (*starter_buttons, *nearby):
            button.click(
                ask_suggestion,
                [button, chat, session_box, turn_of, tab_state, asked_number],
                chat_outputs,
                js=NUMBER_JS,
                concurrency_limit=None,
                trigger_mode="multiple",
                show_progress="hidden",
            ).then(None, [session_box, ended_session], None, js=SAVE_SESSION_JS)

        chat.change(None, [chat], [ended_row, book, nearby_book], js=NEW_CONVERSATION_JS,
                    show_progress="hidden")

        def summary_of(sid: str) -> str:
            if not sid:
                return ""
            try:
                return summarise(desk().assistant.sessions.get(sid))
            except ScarguideError:
                return ""

        def open_booking(sid: str, ended_sid: str):
            return gr.update(visible=True), summary_of(sid or ended_sid), ""

        for opener in (book, nearby_book):
            opener.click(
                open_booking, [session_box, ended_session], [booking, concern, booking_result]
            ).then(None, None, None, js=SHOW_BOOKING_JS)

        def form_cleared() -> dict:
            """The booking form closed, with nothing typed left in it."""
            return {booking: hidden, booking_result: "", concern: "", name: "", email: "",
                    phone: "", times: "", consent: False,
                    **{box: gr.update(value="", visible=False)
                       for box in form_errors.values()}}

        def end_chat(sid: str, history: list, turns: dict, tab: Tab | None = None):
            """End the conversation (after the answer on its way, if any): its closing
            message, the ended note with "New conversation"; the booking form closes and
            what was typed there and not sent is cleared (a sent request's confirmation
            stays). Booking is offered again only if this conversation has none."""
            tab = tab_of(tab)
            with tab.lock:
                tab.ending = True
            try:
                deadline = time.monotonic() + settings.queue_timeout_s + 120
                told = False
                while True:
                    with tab.lock:
                        if not (tab.answering or tab.waiting) or time.monotonic() > deadline:
                            tab.answering = True  # hold the chat while it ends
                            chat_now = list(tab.chat if tab.chat is not None else history or [])
                            turns_now = dict(tab.turns if tab.turns is not None
                                             else turns or {})
                            sid_now = (tab.sid if tab.sid is not None else sid or "").strip()
                            ended, booked = tab.ended, tab.booked
                            break
                    if not told:
                        told = True
                        yield {ended_row: gr.update(visible=True),
                               ended_note: pending_html("Ending the chat after the answer "
                                                        "on its way…")}
                    time.sleep(0.2)
                record = None
                if sid_now and not ended:
                    try:
                        record = desk().end(sid_now)
                    except ScarguideError as exc:
                        log.error("end failed: %s", type(exc).__name__)
                if record is not None:
                    turns_now[len(chat_now)] = [record.session_id, record.turn]
                    chat_now = chat_now + answer_messages(record, guide, booked)
                with tab.lock:
                    tab.chat = tab.shown = chat_now
                    tab.turns = turns_now
                    tab.sid = ""
                    tab.ended = True
                if not chat_now:  # nothing to end: the first screen as it was
                    yield {**reset(tab), **form_cleared()}
                    return
                offer_booking = gr.update(visible=not booked)
                yield {
                    **form_cleared(),
                    chat: shown_chat(chat_now), turn_of: turns_now, session_box: "",
                    ended_session: sid_now or keep, nearby_row: hidden, input_error: hidden,
                    ended_row: gr.update(visible=True),
                    ended_note: f'<div role="status">{BOOKED_ENDED if booked else ENDED}</div>',
                    book: offer_booking, nearby_book: offer_booking,
                }
            finally:
                with tab.lock:
                    tab.ending = False
                    tab.answering = False

        def reset(tab: Tab) -> dict:
            with tab.lock:
                tab.chat, tab.shown, tab.turns, tab.sid = [], [], {}, ""
                tab.ended, tab.booked = False, None
            return {chat: gr.update(value=[], visible=False), turn_of: {}, session_box: "",
                    ended_session: "", intro: gr.update(visible=True), ended_row: hidden,
                    urgent: hidden, nearby_row: hidden, input_error: hidden,
                    book: gr.update(visible=True), nearby_book: gr.update(visible=True)}

        end_outputs = [chat, turn_of, session_box, ended_session, intro, ended_row, ended_note,
                       urgent, nearby_row, input_error, book, nearby_book, booking,
                       booking_result, *form_inputs.values(), *form_errors.values()]
        end.click(
            end_chat, [session_box, chat, turn_of, tab_state], end_outputs,
            show_progress="hidden",
        ).then(None, [session_box, ended_session], None, js=SAVE_SESSION_JS).then(
            None, None, None, js=SHOW_ENDED_JS)

        def start_new(tab: Tab | None = None):
            """"New conversation": a clear screen, the first screen's suggestions again."""
            tab = tab_of(tab)
            with tab.lock:
                if tab.answering or tab.waiting:  # a question already started one
                    return {ended_row: hidden}
            return {**reset(tab), **form_cleared()}

        new_chat.click(start_new, [tab_state], end_outputs, show_progress="hidden").then(
            None, [session_box, ended_session], None, js=SAVE_SESSION_JS).then(
            None, None, None, js=FOCUS_QUESTION_JS)

        def submit_booking(sid, concern_text, name_text, email_text, phone_text, times_text, ok,
                           tab: Tab | None = None):
            tab = tab_of(tab)
            data = dict(session_id=(sid or None), name=name_text or "",
                        email=email_text or None, phone=phone_text or None,
                        preferred_times=times_text or "", concern=concern_text or "",
                        consent=bool(ok))
            with tab.lock:
                tab.form = {}
            try:
                request = BookingRequest(**data)
            except ValidationError as exc:
                errors = field_errors(data)
                with tab.lock:
                    tab.form = {"errors": errors}
                summary = _form_errors(exc)
                reach = "give an email address or a phone number"
                if errors.get("email") == REACH and not any(reach in m for m in summary):
                    summary.append(reach)  # found with the stand-ins: said here too
                return "Please check the form: " + "; ".join(summary)
            try:
                created = desk().book(request)
            except SessionError:
                created = desk().book(request.model_copy(update={"session_id": None}))
            except ScarguideError as exc:
                return exc.patient_message + " Your details are still in the form."
            with tab.lock:
                tab.form = {"reference": created["reference"]}
                tab.booked = created["reference"]
            return confirmation_html(created["reference"])

        def submit_for(sid, ended_sid, concern_text, name_text, email_text, phone_text,
                       times_text, ok, request: gr.Request, tab: Tab | None = None):
            try:
                desk().allow(_client(request))
            except ScarguideError as exc:
                with tab_of(tab).lock:
                    tab_of(tab).form = {}
                return exc.patient_message + " Your details are still in the form."
            return submit_booking(sid or ended_sid, concern_text, name_text, email_text,
                                  phone_text, times_text, ok, tab)

        def booking_shown(result: str, tab: Tab | None = None) -> dict:
            """After a booking is sent: each field's problem under it, and where the focus
            goes; a booked request closes the form and its confirmation shows above it."""
            tab = tab_of(tab)
            with tab.lock:
                outcome = dict(tab.form)
            errors = outcome.get("errors") or {}
            shown = {
                box: gr.update(value=field_error_html(errors[field]), visible=True)
                if field in errors else gr.update(value="", visible=False)
                for field, box in form_errors.items()
            }
            if "reference" in outcome:  # booked: nothing typed stays in the form
                return {**form_cleared(),
                        booking_done: gr.update(value=result, visible=True),
                        book: hidden, nearby_book: hidden, form_focus: "booking-done"}
            first = next(iter(errors), None)
            return {**shown, form_focus: FORM_FIELDS[first] if first else ""}

        submit.click(
            submit_for,
            [session_box, ended_session, concern, name, email, phone, times, consent,
             tab_state],
            [booking_result],
        ).then(
            booking_shown, [booking_result, tab_state],
            [booking, booking_result, booking_done, book, nearby_book, form_focus,
             *form_inputs.values(), *form_errors.values()],
            show_progress="hidden",
        ).then(None, [form_focus], None, js=BOOKING_FOCUS_JS)

        def rate(data: gr.LikeData, turns: dict):
            index = data.index if isinstance(data.index, int) else data.index[0]
            rated = (turns or {}).get(index) or (turns or {}).get(str(index))
            if data.liked not in (True, False) or not rated:
                return None, gr.update(visible=False)
            sid, turn = rated
            feedback = Feedback(session_id=sid, turn=turn, rating="up" if data.liked else "down")
            try:
                return desk().feedback(feedback), gr.update(visible=True)
            except ScarguideError:
                return None, gr.update(visible=False)

        chat.like(rate, [turn_of], [feedback_id, comment_row])

        def send_comment(fid, text):
            if fid is None or not (text or "").strip():
                return gr.update(), gr.update()
            try:  # the same contract as the API's feedback comment
                comment_text = clean_lines(text)[:2000]
            except TextError:
                gr.Warning("The comment holds a character that can't be kept; please retype it.")
                return gr.update(), gr.update()
            desk().store.comment_feedback(fid, comment_text)
            gr.Info("Thank you for your feedback.")
            return "", gr.update(visible=False)

        comment_send.click(send_comment, [feedback_id, comment], [comment, comment_row])

        demo.load(restore, [session_box, tab_state, ended_session], restore_outputs,
                  js=READ_SESSION_JS)

    demo.queue(default_concurrency_limit=None, max_size=64)
    return demo
