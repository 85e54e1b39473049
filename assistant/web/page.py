"""The patients' page's layout (Gradio components, in the order shown): ``lay_out``
places them inside the page's ``gr.Blocks`` and returns them as a ``Page``, which the
page's events read and update."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from assistant.web.messages import ENDED, NEARBY
from assistant.web.tab import Tab


@dataclass(eq=False)
class Page:
    """Every component the events of the patients' page read or update."""

    session_box: gr.Textbox
    ended_session: gr.Textbox
    turn_of: gr.State
    feedback_id: gr.State
    tab_state: gr.State
    form_focus: gr.Textbox
    asked_number: gr.Number
    urgent: gr.Markdown
    intro: gr.Column
    starter_buttons: list[gr.Button]
    chat: gr.Chatbot
    nearby_row: gr.Row
    nearby: list[gr.Button]
    nearby_book: gr.Button
    ended_row: gr.Row
    ended_note: gr.Markdown
    new_chat: gr.Button
    message: gr.Textbox
    send: gr.Button
    input_error: gr.Markdown
    comment_row: gr.Row
    comment: gr.Textbox
    comment_send: gr.Button
    book: gr.Button
    end: gr.Button
    booking_done: gr.Markdown
    booking: gr.Column
    concern: gr.Textbox
    name: gr.Textbox
    email: gr.Textbox
    phone: gr.Textbox
    times: gr.Textbox
    consent: gr.Checkbox
    submit: gr.Button
    booking_result: gr.Markdown
    form_inputs: dict[str, gr.Textbox | gr.Checkbox]
    form_errors: dict[str, gr.Markdown]

    @property
    def restore_outputs(self) -> list:
        """What a reload restores (``restore``'s outputs, in order)."""
        return [self.chat, self.session_box, self.turn_of, self.intro, self.nearby_row,
                *self.nearby, self.ended_session, self.ended_row, self.ended_note,
                self.booking_done, self.book, self.nearby_book]

    @property
    def chat_outputs(self) -> list:
        """What a question updates: chat, question box, session id, turns, urgent banner,
        input error, first screen, nearby row, its buttons."""
        return [self.chat, self.message, self.session_box, self.turn_of, self.urgent,
                self.input_error, self.intro, self.nearby_row, *self.nearby]

    @property
    def end_outputs(self) -> list:
        """What ending the chat or starting a new conversation updates."""
        return [self.chat, self.turn_of, self.session_box, self.ended_session, self.intro,
                self.ended_row, self.ended_note, self.urgent, self.nearby_row,
                self.input_error, self.book, self.nearby_book, self.booking,
                self.booking_result, *self.form_inputs.values(), *self.form_errors.values()]


def lay_out(notice: str, covers: str, starters: list[str]) -> Page:
    """The page's components, laid out in the ``gr.Blocks`` being built (call it inside
    its ``with``): ``notice`` under the title, ``covers`` and the ``starters`` questions
    on the first screen."""
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

    form_inputs: dict[str, gr.Textbox | gr.Checkbox] = {
        "concern": concern, "name": name, "email": email, "phone": phone,
        "preferred_times": times, "consent": consent}
    form_errors = {"concern": concern_error, "name": name_error, "email": email_error,
                   "phone": phone_error, "preferred_times": times_error,
                   "consent": consent_error}

    return Page(
        session_box=session_box, ended_session=ended_session, turn_of=turn_of,
        feedback_id=feedback_id, tab_state=tab_state, form_focus=form_focus,
        asked_number=asked_number, urgent=urgent, intro=intro,
        starter_buttons=starter_buttons, chat=chat, nearby_row=nearby_row, nearby=nearby,
        nearby_book=nearby_book, ended_row=ended_row, ended_note=ended_note,
        new_chat=new_chat, message=message, send=send, input_error=input_error,
        comment_row=comment_row, comment=comment, comment_send=comment_send, book=book,
        end=end, booking_done=booking_done, booking=booking, concern=concern, name=name,
        email=email, phone=phone, times=times, consent=consent, submit=submit,
        booking_result=booking_result, form_inputs=form_inputs, form_errors=form_errors)
