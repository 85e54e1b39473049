"""The patients' chat (Gradio Blocks), a thin adapter over the FrontDesk.

- Answers stream sentence by sentence; each ends with its ``[n]`` markers, and a
  collapsed "Sources" panel under the answer lists every footnote's section and exact
  quote.
- ``not_in_guide`` answers carry a "Not covered in the guide" notice; ``urgent``
  answers raise a banner above everything with what to do now.
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
from assistant.errors import InputError, ScarguideError, SessionError
from assistant.frontdesk import BookingRequest, Feedback, FrontDesk
from assistant.handoff import summarise
from assistant.records import AnswerRecord
from assistant.safety import TextError, clean_lines
from assistant.web.render import plain

log = logging.getLogger("scarguide.ui")

THEME = gr.themes.Default(
    primary_hue="teal",
    font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
)

STORAGE_KEY = "scarguide-session"

CSS = """
#urgent { border: 3px solid #b00020; background: #fff0f0; color: #5c0011; padding: 0.75rem 1rem;
  border-radius: 8px; font-size: 1.1rem; }
#urgent h2 { color: #8a0016; margin-top: 0; }
#not-covered { border-left: 6px solid #8a5a00; background: #fff8e6; color: #3d2800;
  padding: 0.5rem 1rem; border-radius: 4px; }
#notice { background: #eef6f6; color: #1b3b3b; padding: 0.4rem 0.8rem; border-radius: 4px;
  font-size: 0.95rem; }
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

NOT_COVERED = "**Not covered in the guide.**"
PARTLY_COVERED = "**Partly covered in the guide.**"


def sources_markdown(record: AnswerRecord) -> str:
    return "\n\n".join(
        f"**\\[{c.n}\\]** {plain(c.section)}  \n“{plain(c.quote)}”"
        for c in record.citations
    )


def answer_messages(record: AnswerRecord) -> list[dict[str, Any]]:
    """The chat messages that show one answer: the text, then its collapsed sources."""
    text = plain(record.answer)
    if record.status == "not_in_guide":
        text = f"{PARTLY_COVERED if record.coverage == 'partial' else NOT_COVERED} {text}"
    elif record.status == "urgent":
        text = f"**Urgent.** {text}"
    if record.notice:
        text = f"**Urgent.** {plain(record.notice)}\n\n{text}"
    if record.handoff is not None and record.status != "handoff":
        text += f"\n\n_{plain(record.handoff.message)}_"
    messages = [{"role": "assistant", "content": text}]
    if record.citations:
        messages.append(
            {
                "role": "assistant",
                "content": sources_markdown(record),
                "metadata": {"title": f"Sources ({len(record.citations)})", "status": "done"},
            }
        )
    return messages


def urgent_markdown(record: AnswerRecord) -> str:
    return f"## Get help now\n\n{plain(record.notice or record.answer)}"


def build_ui(desk: Callable[[], FrontDesk], settings: Settings) -> gr.Blocks:
    guide_title = "All about acne scars"
    notice = (
        f"General information from the guide *{guide_title}*, with a source for every "
        "sentence. It is not a diagnosis or medical advice. "
        f"In an emergency, call {settings.emergency_number}."
    )

    with gr.Blocks(title="Acne scar guide — ask a question", analytics_enabled=False) as demo:
        session_box = gr.Textbox(visible=False, elem_id="session-id")
        ended_session = gr.Textbox(visible=False)  # the conversation a booking follows
        turn_of = gr.State({})  # chat message index → [session id, answer (turn) number]
        feedback_id = gr.State(None)

        urgent = gr.Markdown(visible=False, elem_id="urgent")
        gr.Markdown("# Questions about acne scars")
        gr.Markdown(notice, elem_id="notice")

        chat = gr.Chatbot(
            label="Conversation",
            elem_id="chat",
            height=460,
            sanitize_html=True,
            buttons=["copy"],
            placeholder="Ask about acne marks, scar types or treatments. "
            "Every answer shows where in the guide it comes from.",
        )
        not_covered = gr.Markdown(
            "**Not covered in the guide.** The guide does not answer that question, so the "
            "assistant will not guess. A dermatologist can answer it at a consultation.",
            visible=False,
            elem_id="not-covered",
        )
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

        def restore(sid: str):
            """A reload of this tab: show its conversation again."""
            sid = (sid or "").strip()
            if not sid:
                return [], "", {}
            try:
                records = desk().history(sid)
            except (SessionError, ScarguideError):
                return [], "", {}
            history: list[dict[str, Any]] = []
            turns: dict[int, int] = {}
            for record in records:
                if record.question != "[end of conversation]":
                    history.append({"role": "user", "content": plain(record.question)})
                turns[len(history)] = [record.session_id, record.turn]
                history.extend(answer_messages(record))
            return history, sid, turns

        def respond(
            text: str, history: list, sid: str, turns: dict, request: gr.Request
        ) -> Iterator[tuple]:
            history = list(history or [])
            turns = dict(turns or {})
            keep = gr.update()
            sid = (sid or "").strip() or None
            try:
                desk().allow(_client(request))
                events = desk().stream(text or "", sid)
            except SessionError:  # an ended or expired conversation: a new one starts
                sid = None
                try:
                    events = desk().stream(text or "", None)
                except ScarguideError as exc:
                    yield (history, gr.update(), "", turns, keep, keep,
                           gr.update(value=exc.patient_message, visible=True))
                    return
            except InputError as exc:
                yield (history, gr.update(), sid or "", turns, keep, keep,
                       gr.update(value=exc.patient_message, visible=True))
                return
            except ScarguideError as exc:
                log.error("chat unavailable: %s", type(exc).__name__)
                yield (history, gr.update(), sid or "", turns, keep, keep,
                       gr.update(value=exc.patient_message, visible=True))
                return
            history.append({"role": "user", "content": plain(text)})
            history.append({"role": "assistant", "content": "…"})
            answer_at = len(history) - 1
            hide = gr.update(visible=False)
            yield history, "", sid or "", turns, hide, hide, hide
            shown: list[str] = []
            banner = hide
            try:
                for event in events:
                    if event.kind == "notice":  # triage unsure: help first, then the answer
                        shown.append(f"**Urgent.** {plain(event.text)}\n\n")
                        banner = gr.update(value=f"## Get help now\n\n{plain(event.text)}",
                                           visible=True)
                        history[answer_at] = {"role": "assistant", "content": shown[0]}
                        yield history, "", sid or "", turns, banner, hide, hide
                        continue
                    if event.kind == "queued":
                        waiting = (f"_Many people are asking right now: you are number "
                                   f"{event.text} in line…_")
                        history[answer_at] = {"role": "assistant", "content": waiting}
                        yield history, "", sid or "", turns, hide, hide, hide
                        continue
                    if event.record is None:
                        shown.append(plain(event.text))
                        history[answer_at] = {"role": "assistant", "content": " ".join(shown)}
                        yield history, "", sid or "", turns, banner, hide, hide
                        continue
                    record = event.record
                    history = history[:answer_at] + answer_messages(record)
                    turns[answer_at] = [record.session_id, record.turn]
                    yield (
                        history,
                        "",
                        record.session_id,
                        turns,
                        gr.update(value=urgent_markdown(record), visible=True)
                        if record.status == "urgent" or record.notice
                        else hide,
                        gr.update(visible=record.status == "not_in_guide"),
                        hide,
                    )
            except ScarguideError as exc:
                log.error("answer failed: %s", type(exc).__name__)
                history[answer_at] = {"role": "assistant", "content": exc.patient_message}
                yield history, "", sid or "", turns, hide, hide, hide
            finally:  # a patient who pressed stop or left gives the place in line back
                events.close()

        chat_outputs = [chat, message, session_box, turn_of, urgent, not_covered, input_error]
        for trigger in (message.submit, send.click):
            trigger(
                respond,
                [message, chat, session_box, turn_of],
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

        book.click(open_booking, [session_box, ended_session], [booking, concern, booking_result])

        def end_chat(sid: str, history: list, turns: dict):
            history = list(history or [])
            turns = dict(turns or {})
            if sid:
                try:
                    record = desk().end(sid)
                    turns[len(history)] = [record.session_id, record.turn]
                    history.extend(answer_messages(record))
                    # the next message starts a new conversation; the booking keeps this one
                    return (history, turns, gr.update(visible=True), record.handoff.summary, "",
                            "", sid)
                except ScarguideError:
                    pass
            return history, turns, gr.update(visible=True), "", "", sid or "", sid or ""

        end.click(
            end_chat,
            [session_box, chat, turn_of],
            [chat, turn_of, booking, concern, booking_result, session_box, ended_session],
        ).then(None, [session_box], None, js=SAVE_SESSION_JS)

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

        demo.load(restore, [session_box], [chat, session_box, turn_of], js=READ_SESSION_JS)

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
