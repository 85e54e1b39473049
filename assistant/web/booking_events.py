"""The booking form on the patients' page: opened pre-filled with the conversation's
summary, sent, each field's problem shown under it, a booked request confirmed."""

from __future__ import annotations

from typing import Any

import gradio as gr
from pydantic import ValidationError

from assistant.errors import ScarguideError, SessionError
from assistant.frontdesk import BookingRequest
from assistant.handoff import summarise
from assistant.web.booking_form import (
    FORM_FIELDS,
    REACH,
    confirmation_html,
    error_summary,
    field_error_html,
    field_errors,
)
from assistant.web.events import PageEvents, client_of
from assistant.web.tab import Tab


class BookingEvents(PageEvents):
    """Opening, sending and confirming a booking request."""

    def summary_of(self, sid: str) -> str:
        if not sid:
            return ""
        try:
            return summarise(self.desk().assistant.sessions.get(sid))
        except ScarguideError:
            return ""

    def open_booking(self, sid: str, ended_sid: str):
        return gr.update(visible=True), self.summary_of(sid or ended_sid), ""

    def submit_booking(self, sid, concern_text, name_text, email_text, phone_text, times_text, ok,
                       tab: Tab | None = None):
        tab = self.tab_of(tab)
        data: dict[str, Any] = dict(session_id=(sid or None), name=name_text or "",
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
            summary = error_summary(exc)
            reach = "give an email address or a phone number"
            if errors.get("email") == REACH and not any(reach in m for m in summary):
                summary.append(reach)  # found with the stand-ins: said here too
            return "Please check the form: " + "; ".join(summary)
        try:
            created = self.desk().book(request)
        except SessionError:
            created = self.desk().book(request.model_copy(update={"session_id": None}))
        except ScarguideError as exc:
            return exc.patient_message + " Your details are still in the form."
        with tab.lock:
            tab.form = {"reference": created["reference"]}
            tab.booked = created["reference"]
        return confirmation_html(created["reference"])

    def submit_for(self, sid, ended_sid, concern_text, name_text, email_text, phone_text,
                   times_text, ok, request: gr.Request, tab: Tab | None = None):
        try:
            self.desk().allow(client_of(request))
        except ScarguideError as exc:
            with self.tab_of(tab).lock:
                self.tab_of(tab).form = {}
            return exc.patient_message + " Your details are still in the form."
        return self.submit_booking(sid or ended_sid, concern_text, name_text, email_text,
                                   phone_text, times_text, ok, tab)

    def booking_shown(self, result: str, tab: Tab | None = None) -> dict:
        """After a booking is sent: each field's problem under it, and where the focus
        goes; a booked request closes the form and its confirmation shows above it."""
        page = self.page
        tab = self.tab_of(tab)
        with tab.lock:
            outcome = dict(tab.form)
        errors = outcome.get("errors") or {}
        shown = {
            box: gr.update(value=field_error_html(errors[field]), visible=True)
            if field in errors else gr.update(value="", visible=False)
            for field, box in page.form_errors.items()
        }
        if "reference" in outcome:  # booked: nothing typed stays in the form
            return {**self.form_cleared(),
                    page.booking_done: gr.update(value=result, visible=True),
                    page.book: self.hidden, page.nearby_book: self.hidden,
                    page.form_focus: "booking-done"}
        first = next(iter(errors), None)
        return {**shown, page.form_focus: FORM_FIELDS[first] if first else ""}
