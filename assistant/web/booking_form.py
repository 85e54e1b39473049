"""The booking form's fields and what is wrong with each, in the words shown under it; the
summary under the Send button; the confirmation of a booked request."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from assistant.frontdesk import BookingRequest
from assistant.web.render import plain

# the booking form's fields, in the order they are shown: the error under each has the
# field's id + "-error"
FORM_FIELDS = {"concern": "b-concern", "name": "b-name", "email": "b-email",
               "phone": "b-phone", "preferred_times": "b-times", "consent": "b-consent"}
REQUIRED_IDS = ("b-name", "b-times", "b-consent")

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


def _field_message(field: str, error: ErrorDetails) -> str:
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


def error_summary(exc: ValidationError) -> list[str]:
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
