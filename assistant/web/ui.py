"""The patients' chat (Gradio Blocks), a thin adapter over the FrontDesk.

- The first screen says what the guide covers and offers questions drawn from its
  headings (one click asks one); the question box and Send are on it, also on a phone.
- Answers stream sentence by sentence; each ends with its ``[n]`` markers, and a
  collapsed "Sources" panel under the answer lists every footnote's section and exact
  quote. Each marker and each source links to its passage on the guide page
  (``/guide#…``, in a new tab, so the conversation stays as it is).
- ``not_in_guide`` answers say "Not covered in the guide" once, in the answer; under it,
  the guide's topics nearest to the question (one click asks about one) and a booking
  button. ``urgent`` answers raise a banner above everything with what to do now.
- "Book a consultation" and "End chat" are always on screen; both open the booking
  form, pre-filled with the conversation's summary.
- Each browser tab has its own conversation; its id lives in the tab's
  ``sessionStorage``, so a reload of the same tab shows the same conversation.
"""

from __future__ import annotations

import logging
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
from assistant.safety import TextError, clean_lines
from assistant.web.guide import GUIDE_PATH, Guide
from assistant.web.render import guide_link, link_markers, plain

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
)

STORAGE_KEY = "scarguide-session"

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
.dark #chat a, .dark #covers a { color: #8fdccf; }
@media (max-width: 640px) {
  #title h1 { font-size: 1.5rem !important; margin: 0 !important; }
  #notice, #covers { font-size: 0.9rem; }
  #chat { height: 45vh !important; }  /* the question box stays in view under an answer */
}
#booking { border: 2px solid #00695c; border-radius: 8px; padding: 0.5rem; }
#booking-result { font-size: 1.05rem; }
#input-error { color: #8a0016; font-weight: 600; }
button:focus-visible, textarea:focus-visible, input:focus-visible {
  outline: 3px solid #1a5fb4 !important; outline-offset: 2px; }
"""

SAVE_SESSION_JS = f"""(sid) => {{
  try {{
    if (sid) {{ sessionStorage.setItem('{STORAGE_KEY}', sid); }}
    else {{ sessionStorage.removeItem('{STORAGE_KEY}'); }}
  }} catch (e) {{}}
  return [];
}}"""
READ_SESSION_JS = f"""() => {{
  try {{ return sessionStorage.getItem('{STORAGE_KEY}') || ''; }} catch (e) {{ return ''; }}
}}"""
# the booking form opens below the chat: bring it into view (on a phone it is off screen)
SHOW_BOOKING_JS = """() => {
  const form = document.getElementById('booking');
  setTimeout(() => { if (form) { form.scrollIntoView({block: "start"}); } }, 50);
  return [];
}"""

NOT_COVERED = "**Not covered in the guide.**"
PARTLY_COVERED = "**Partly covered in the guide.**"


def _source_title(n: int, section: str) -> str:
    return f"Source {n}: {section} (opens the guide in a new tab)"


def sources_markdown(record: AnswerRecord, guide: Guide | None = None) -> str:
    """Each footnote: its number, its section (a link to its place in the guide page) and
    the exact quote."""

    def section(c) -> str:
        href = guide.href(c.chunk_id, c.quote) if guide else None
        return guide_link(plain(c.section), href, _source_title(c.n, c.section))

    return "\n\n".join(
        f"**\\[{c.n}\\]** {section(c)}  \n“{plain(c.quote)}”" for c in record.citations
    )


def answer_markdown(record: AnswerRecord, guide: Guide | None = None) -> str:
    """The answer's text, escaped, with each ``[n]`` a link to its source in the guide."""
    text = plain(record.answer)
    if guide is None:
        return text
    hrefs = {c.n: guide.href(c.chunk_id, c.quote) for c in record.citations}
    titles = {c.n: _source_title(c.n, c.section) for c in record.citations}
    return link_markers(text, hrefs, titles)


def answer_messages(record: AnswerRecord, guide: Guide | None = None) -> list[dict[str, Any]]:
    """The chat messages that show one answer: the text, then its collapsed sources.
    With ``guide``, its markers and sources link to the guide page."""
    text = answer_markdown(record, guide)
    if record.status == "not_in_guide":
        text = f"{PARTLY_COVERED if record.coverage == 'partial' else NOT_COVERED} {text}"
    elif record.status == "urgent":
        text = f"**Urgent.** {text}"
    if record.notice:
        text = f"**Urgent.** {plain(record.notice)}\n\n{text}"
    # a "not covered" answer already offers the consultation, with a booking button under it
    if record.handoff is not None and record.status not in ("handoff", "not_in_guide"):
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

    with gr.Blocks(title="Acne scar guide — ask a question", analytics_enabled=False) as demo:
        session_box = gr.Textbox(visible=False, elem_id="session-id")
        ended_session = gr.Textbox(visible=False)  # the conversation a booking follows
        turn_of = gr.State({})  # chat message index → [session id, answer (turn) number]
        feedback_id = gr.State(None)

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

        with gr.Column(visible=False, elem_id="booking") as booking:
            gr.Markdown("## Book a consultation\nA dermatologist from the clinic will contact you.")
            concern = gr.Textbox(
                label="What you would like to discuss (you can edit this)", lines=4,
                elem_id="b-concern",
            )
            name = gr.Textbox(label="Your name", elem_id="b-name")
            with gr.Row():
                email = gr.Textbox(label="Email", elem_id="b-email", type="email")
                phone = gr.Textbox(label="Phone (if you prefer a call)", elem_id="b-phone")
            times = gr.Textbox(
                label="When can we reach you? (days and times)", elem_id="b-times"
            )
            consent = gr.Checkbox(
                label="I agree that the clinic may contact me about this request.",
                elem_id="b-consent",
            )
            submit = gr.Button("Send booking request", variant="primary", elem_id="b-submit")
            booking_result = gr.Markdown(elem_id="booking-result")

        # -- handlers -------------------------------------------------------------------

        hidden = gr.update(visible=False)

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

        def restore(sid: str):
            """A reload of this tab: show its conversation again."""
            sid = (sid or "").strip()
            empty = [[], "", {}, gr.update(visible=True), *offer(None)]
            if not sid:
                return empty
            try:
                records = desk().history(sid)
            except (SessionError, ScarguideError):
                return empty
            history: list[dict[str, Any]] = []
            turns: dict[int, int] = {}
            for record in records:
                if record.question != "[end of conversation]":
                    history.append({"role": "user", "content": plain(record.question)})
                turns[len(history)] = [record.session_id, record.turn]
                history.extend(answer_messages(record, guide))
            return [shown_chat(history), sid, turns, gr.update(visible=not history),
                    *offer(records[-1] if records else None)]

        def respond(
            text: str, history: list, sid: str, turns: dict, request: gr.Request
        ) -> Iterator[tuple]:
            """Outputs: chat, question box, session id, turns, urgent banner, input error,
            first screen, nearby row, its buttons."""
            history = list(history or [])
            turns = dict(turns or {})
            keep = gr.update()
            unchanged = [keep] * (NEARBY + 2)  # first screen, nearby row and buttons
            sid = (sid or "").strip() or None
            try:
                desk().allow(_client(request))
                events = desk().stream(text or "", sid)
            except SessionError:  # an ended or expired conversation: a new one starts
                sid = None
                try:
                    events = desk().stream(text or "", None)
                except ScarguideError as exc:
                    yield (history, gr.update(), "", turns, keep,
                           gr.update(value=exc.patient_message, visible=True), *unchanged)
                    return
            except InputError as exc:
                yield (history, gr.update(), sid or "", turns, keep,
                       gr.update(value=exc.patient_message, visible=True), *unchanged)
                return
            except ScarguideError as exc:
                log.error("chat unavailable: %s", type(exc).__name__)
                yield (history, gr.update(), sid or "", turns, keep,
                       gr.update(value=exc.patient_message, visible=True), *unchanged)
                return
            history.append({"role": "user", "content": plain(text)})
            history.append({"role": "assistant", "content": "…"})
            answer_at = len(history) - 1
            hide = hidden
            asking = [hide, *offer(None)]  # the first screen and the last offer go
            yield shown_chat(history), "", sid or "", turns, hide, hide, *asking
            shown: list[str] = []
            banner = hide
            try:
                for event in events:
                    if event.kind == "notice":  # triage unsure: help first, then the answer
                        shown.append(f"**Urgent.** {plain(event.text)}\n\n")
                        banner = gr.update(value=f"## Get help now\n\n{plain(event.text)}",
                                           visible=True)
                        history[answer_at] = {"role": "assistant", "content": shown[0]}
                        yield history, "", sid or "", turns, banner, hide, *asking
                        continue
                    if event.kind == "queued":
                        waiting = (f"_Many people are asking right now: you are number "
                                   f"{event.text} in line…_")
                        history[answer_at] = {"role": "assistant", "content": waiting}
                        yield history, "", sid or "", turns, hide, hide, *asking
                        continue
                    if event.record is None:
                        shown.append(plain(event.text))
                        history[answer_at] = {"role": "assistant", "content": " ".join(shown)}
                        yield history, "", sid or "", turns, banner, hide, *asking
                        continue
                    record = event.record
                    history = history[:answer_at] + answer_messages(record, guide)
                    turns[answer_at] = [record.session_id, record.turn]
                    yield (
                        history,
                        "",
                        record.session_id,
                        turns,
                        gr.update(value=urgent_markdown(record), visible=True)
                        if record.status == "urgent" or record.notice
                        else hide,
                        hide,
                        hide,
                        *offer(record),
                    )
            except ScarguideError as exc:
                log.error("answer failed: %s", type(exc).__name__)
                history[answer_at] = {"role": "assistant", "content": exc.patient_message}
                yield history, "", sid or "", turns, hide, hide, *asking
            finally:  # a patient who pressed stop or left gives the place in line back
                events.close()

        def ask_suggestion(
            question: str, history: list, sid: str, turns: dict, request: gr.Request
        ) -> Iterator[tuple]:
            """A suggested question, asked by one click; what is typed in the box stays."""
            for outputs in respond(question, history, sid, turns, request):
                yield (outputs[0], gr.update(), *outputs[2:])

        chat_outputs = [chat, message, session_box, turn_of, urgent, input_error, intro,
                        nearby_row, *nearby]
        for trigger in (message.submit, send.click):
            trigger(
                respond,
                [message, chat, session_box, turn_of],
                chat_outputs,
                concurrency_limit=None,
            ).then(None, [session_box], None, js=SAVE_SESSION_JS)
        for button in (*starter_buttons, *nearby):
            button.click(
                ask_suggestion,
                [button, chat, session_box, turn_of],
                chat_outputs,
                concurrency_limit=None,
            ).then(None, [session_box], None, js=SAVE_SESSION_JS)

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

        def end_chat(sid: str, history: list, turns: dict):
            history = list(history or [])
            turns = dict(turns or {})
            if sid:
                try:
                    record = desk().end(sid)
                    turns[len(history)] = [record.session_id, record.turn]
                    history.extend(answer_messages(record, guide))
                    # the next message starts a new conversation; the booking keeps this one
                    return (shown_chat(history), turns, gr.update(visible=True),
                            record.handoff.summary, "", "", sid, hidden)
                except ScarguideError:
                    pass
            return (shown_chat(history), turns, gr.update(visible=True), "", "", sid or "",
                    sid or "", hidden)

        end.click(
            end_chat,
            [session_box, chat, turn_of],
            [chat, turn_of, booking, concern, booking_result, session_box, ended_session,
             nearby_row],
        ).then(None, [session_box], None, js=SAVE_SESSION_JS).then(
            None, None, None, js=SHOW_BOOKING_JS)

        def submit_booking(sid, concern_text, name_text, email_text, phone_text, times_text, ok):
            try:
                request = BookingRequest(
                    session_id=(sid or None),
                    name=name_text or "",
                    email=email_text or None,
                    phone=phone_text or None,
                    preferred_times=times_text or "",
                    concern=concern_text or "",
                    consent=bool(ok),
                )
            except ValidationError as exc:
                return "Please check the form: " + "; ".join(_form_errors(exc))
            try:
                created = desk().book(request)
            except SessionError:
                created = desk().book(request.model_copy(update={"session_id": None}))
            except ScarguideError as exc:
                return exc.patient_message + " Your details are still in the form."
            # nothing the patient typed is shown back: the reference is the clinic's own
            return (
                f"**Thank you, your request is booked.** Your reference is "
                f"<strong id='booking-ref'>{plain(created['reference'])}</strong>. "
                "Keep it: the clinic will contact you to arrange a time."
            )

        def submit_for(sid, ended_sid, concern_text, name_text, email_text, phone_text,
                       times_text, ok, request: gr.Request):
            try:
                desk().allow(_client(request))
            except ScarguideError as exc:
                return exc.patient_message + " Your details are still in the form."
            return submit_booking(sid or ended_sid, concern_text, name_text, email_text,
                                  phone_text, times_text, ok)

        submit.click(
            submit_for,
            [session_box, ended_session, concern, name, email, phone, times, consent],
            [booking_result],
        )

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

        demo.load(restore, [session_box], [chat, session_box, turn_of, intro, nearby_row, *nearby],
                  js=READ_SESSION_JS)

    demo.queue(default_concurrency_limit=None, max_size=64)
    return demo


def _client(request: gr.Request | None) -> str | None:
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


_FIELDS = {"name": "your name", "email": "the email address", "phone": "the phone number",
           "preferred_times": "when we can reach you", "concern": "the description"}


def _form_errors(exc: ValidationError) -> list[str]:
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
