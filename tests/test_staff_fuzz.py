"""The console's conversation view and booking search take any code point: no 500, no
stack trace, logged in or not (the fixtures and helpers of ``tests/test_fuzz.py``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.test_fuzz import ANY, client, form, live, query, segment, some, staff, well_formed

__all__ = ["client", "staff"]  # the module-scoped fixtures, shared with test_fuzz


@some
@given(logged_in=st.booleans(), session=ANY | st.just("live"), text=ANY, status=ANY,
       number=ANY | st.integers(-2**70, 2**70).map(str), listed=ANY)
def test_conversations_and_booking_search_take_any_code_point(client, staff, logged_in,
                                                               session, text, status, number,
                                                               listed):
    browser = staff if logged_in else client
    s = segment(live(client, session))
    search = query(q=text, status=status, page=number, per_page=number, flash=text)
    for path in (f"/staff/conversations/{s}", f"/staff/api/conversations/{s}",
                 f"/staff/conversations/{s}?{query(flash=text)}",
                 f"/staff/bookings?{search}", f"/staff/api/bookings?{search}",
                 f"/staff/queue?{query(q=text, page=number)}"):
        well_formed(browser.get(path, follow_redirects=False))
    csrf = getattr(browser, "csrf", text)
    well_formed(form(browser, f"/staff/bookings/{segment(text)}/status", csrf=csrf,
                     status=status, list=listed))
    well_formed(form(browser, "/staff/bookings/SG-NONE0000/status", csrf=csrf,
                     status="closed", list=listed))


def test_the_live_conversation_is_shown(client, staff):
    page = staff.get(f"/staff/conversations/{client.live}")
    assert page.status_code == 200 and "what is subcision?" in page.text
    assert client.get(f"/staff/conversations/{client.live}",
                      follow_redirects=False).status_code == 303
