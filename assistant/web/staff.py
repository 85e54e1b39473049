"""``/staff``: the support staff's console (plain server-rendered pages) and its JSON API.

Behind a login (accounts from ``scarguide staff add``; no default account). The session
is a random token in an HttpOnly, SameSite=Strict cookie, stored hashed with an expiry;
every form carries a CSRF token tied to the session (the login form a double-submit one).
Without a session, pages redirect to the login and ``/staff/api`` answers 401.

Nothing here blocks the event loop: the ``async`` handlers only read the form there;
sessions, the database and the templates are used in the thread pool (the plain ``def``
handlers run there whole). What the templates show (marked matches, excerpts, times,
status tags) is in ``staff_filters.py``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Request
from fastapi import Path as InPath
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from assistant.errors import ConfigError, CsrfError, InputError, NotLoggedIn, RateLimitedError
from assistant.frontdesk import RateLimiter
from assistant.staff import (
    PROBLEM_STATUSES,
    SESSION_ID_PATTERN,
    TURN_STATUSES,
    AuthError,
    Login,
    StaffDesk,
    booking_label,
    status_label,
)
from assistant.store import BOOKING_STATUSES
from assistant.web.staff_filters import booking_tag, excerpt, highlight, status_tag, when

COOKIE = "sg_staff"
LOGIN_CSRF_COOKIE = "sg_login_csrf"
PAGE_SIZE, MAX_PAGE_SIZE = 50, 200
TEMPLATES = Path(__file__).resolve().parent / "templates" / "staff"
# a turn's id is a SQL integer (32 bits on PostgreSQL): larger ones are a 422, not a 503
TurnId = Annotated[int, InPath(ge=1, le=2**31 - 1)]
# a conversation's id: anything else is a 422 before any handler runs
SessionId = Annotated[str, InPath(pattern=SESSION_ID_PATTERN)]
_BOOKING_LIST_KEYS = ("q", "status", "page", "per_page")


def staff_router(desk: Callable[[], StaffDesk], services, settings) -> APIRouter:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    env.filters.update(highlight=highlight, excerpt=excerpt, when=when, status=status_tag,
                       booking_status=booking_tag, status_label=status_label,
                       booking_label=booking_label)
    # per client address, shared by the workers like the patients' limit
    logins = RateLimiter(settings.staff_login_rate_limit, settings.rate_limit_storage,
                         services.store)
    router = APIRouter(prefix="/staff", include_in_schema=False)

    def page(name: str, login: Login | None, status: int = 200, **values: Any) -> HTMLResponse:
        # the one inline script (local times) runs by its nonce; no other script does
        nonce = secrets.token_urlsafe(16)
        body = env.get_template(name).render(login=login, nonce=nonce, **values)
        response = HTMLResponse(body, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"script-src 'nonce-{nonce}'; form-action 'self'"
        )
        return response

    def current(request: Request) -> Login:
        login = desk().session(request.cookies.get(COOKIE))
        if login is None:
            raise NotLoggedIn
        return login

    async def logged_in(request: Request) -> Login:
        return await run_in_threadpool(current, request)

    async def form_of(request: Request, login: Login) -> dict[str, str]:
        """The posted form, once its CSRF token is the session's (read after the session
        is known: nobody else makes the server parse a body)."""
        form = await request.form()
        given = str(form.get("csrf", ""))
        if not hmac.compare_digest(given.encode(), login.csrf.encode()):
            raise CsrfError("CSRF token missing or wrong")
        return {k: str(v) for k, v in form.items()}

    def back(path: str, flash: str | None = None) -> RedirectResponse:
        target = path + (("&" if "?" in path else "?") + "flash=" + quote(flash) if flash else "")
        return RedirectResponse(target, status_code=303)

    @router.get("")
    @router.get("/")
    def home(request: Request) -> Response:
        try:
            current(request)
        except NotLoggedIn:
            return RedirectResponse("/staff/login", status_code=303)
        return RedirectResponse("/staff/queue", status_code=303)

    @router.get("/login")
    def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = page("login.html", None, title="Login", csrf=token,
                        has_users=desk().has_users(), error=request.query_params.get("error"))
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=settings.staff_cookie_secure, path="/staff")
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        return await run_in_threadpool(log_in, request, form)

    def log_in(request: Request, form: dict[str, str]) -> Response:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(form.get("csrf", "").encode(),
                                                   expected.encode()):
            return page("login.html", None, status=403, title="Login", csrf=expected,
                        has_users=True, error="The form expired; please try again.")
        try:
            logins.check(request.client.host if request.client else None)
            token, _login = desk().login(form.get("username", ""), form.get("password", ""))
        except RateLimitedError as exc:
            return page("login.html", None, status=429, title="Login", csrf=expected,
                        has_users=True, error=exc.patient_message)
        except AuthError as exc:
            return page("login.html", None, status=401, title="Login", csrf=expected,
                        has_users=True, error=str(exc))
        response = RedirectResponse("/staff/queue", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                            secure=settings.staff_cookie_secure, path="/staff",
                            max_age=int(settings.staff_session_hours * 3600))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/staff")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await form_of(request, await logged_in(request))
        await run_in_threadpool(desk().logout, request.cookies.get(COOKIE))
        response = RedirectResponse("/staff/login", status_code=303)
        response.delete_cookie(COOKIE, path="/staff")
        return response

    def number(value: str | None, default: int, highest: int) -> int:
        try:
            return min(max(1, int(value or default)), highest)
        except ValueError:
            return default

    def queue_filters(request: Request) -> dict[str, Any]:
        q = request.query_params
        return {"status": q.get("status") or None, "thumbs_down": q.get("thumbs_down") == "1",
                "dropped": q.get("dropped") == "1", "low": q.get("low") == "1",
                "since": q.get("since") or None, "q": q.get("q") or None,
                "order": q.get("order") or "problems",
                "page": number(q.get("page"), 1, 1_000_000),
                "per_page": number(q.get("per_page"), PAGE_SIZE, MAX_PAGE_SIZE)}

    def run_queue(f: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """One page of the queue, and whether there is a next one."""
        size = f["per_page"]
        items = desk().queue(status=f["status"], thumbs_down=f["thumbs_down"],
                             dropped=f["dropped"], low_faithfulness=f["low"], since=f["since"],
                             text=f["q"], order=f["order"], limit=size + 1,
                             offset=(f["page"] - 1) * size)
        return items[:size], len(items) > size

    def queue_link(f: dict[str, Any], page_number: int) -> str:
        values = {"status": f["status"], "thumbs_down": "1" if f["thumbs_down"] else None,
                  "dropped": "1" if f["dropped"] else None, "low": "1" if f["low"] else None,
                  "since": f["since"], "q": f["q"], "order": f["order"],
                  "per_page": f["per_page"] if f["per_page"] != PAGE_SIZE else None,
                  "page": page_number}
        return "/staff/queue?" + urlencode({k: v for k, v in values.items() if v})

    @router.get("/queue")
    def queue(request: Request) -> Response:
        login = current(request)
        f = queue_filters(request)
        try:
            items, more = run_queue(f)
            error = None
        except InputError as exc:
            items, more, error = [], False, str(exc)
        return page("queue.html", login, title="Review queue", items=items, f=f,
                    statuses=["answered", *PROBLEM_STATUSES, "handoff"], error=error,
                    flash=request.query_params.get("flash"),
                    previous=queue_link(f, f["page"] - 1) if f["page"] > 1 else None,
                    next=queue_link(f, f["page"] + 1) if more else None)

    @router.get("/turns/{turn_id}")
    def turn(request: Request, turn_id: TurnId) -> Response:
        login = current(request)
        found = desk().turn(turn_id)
        if found is None:
            return page("base.html", login, status=404, title="Not found",
                        error=f"No answer {turn_id}.")
        return page("turn.html", login, title=f"Answer {turn_id}", t=found,
                    statuses=[s for s in TURN_STATUSES if s != "failed"],
                    flash=request.query_params.get("flash"))

    @router.get("/conversations/{session_id}")
    def conversation(request: Request, session_id: SessionId) -> Response:
        login = current(request)
        found = desk().conversation(session_id)
        if found is None:
            return page("base.html", login, status=404, title="Not found",
                        error=f"No conversation {session_id} (it may have been purged).")
        return page("conversation.html", login, title=f"Conversation {session_id}", c=found)

    @router.post("/turns/{turn_id}/review")
    async def review(request: Request, turn_id: TurnId) -> Response:
        login = await logged_in(request)
        form = await form_of(request, login)
        await run_in_threadpool(desk().review, login.username, turn_id,
                                form.get("verdict", ""), form.get("note"))
        return back(f"/staff/turns/{turn_id}", f"Marked {form.get('verdict')}.")

    @router.post("/turns/{turn_id}/add-case")
    async def add_case(request: Request, turn_id: TurnId) -> Response:
        login = await logged_in(request)
        form = await form_of(request, login)
        return await run_in_threadpool(add_eval_case, login, turn_id, form)

    def add_eval_case(login: Login, turn_id: int, form: dict[str, str]) -> Response:
        """The case goes to the database (``eval_cases``), redacted; only
        ``scarguide eval export-cases`` writes cases to a file."""
        from assistant.cases import EVAL_CASES_TABLE
        from assistant.cases import add_case as add

        facts = [line.split("|") for line in form.get("facts", "").splitlines() if line.strip()]
        facts = [[alt.strip() for alt in fact if alt.strip()] for fact in facts]
        try:
            case = add(services.store, turn_id, None, username=login.username,
                       expected_status=form.get("expected_status") or None, facts=facts)
        except ConfigError as exc:
            return back(f"/staff/turns/{turn_id}", f"Not added: {exc}")
        where = f"the database table {EVAL_CASES_TABLE}"
        desk().audit(login.username, "eval.add_case", f"turn {turn_id}",
                     f"{case.id} → {where}, redacted ({case.expected_status})")
        return back(f"/staff/turns/{turn_id}",
                    f"Added case {case.id} to {where}, personal details masked; "
                    "`scarguide eval export-cases --out FILE` writes the cases to a file.")

    def booking_filters(values) -> dict[str, Any]:
        return {"status": values.get("status") or None, "q": values.get("q") or None,
                "page": number(values.get("page"), 1, 1_000_000),
                "per_page": number(values.get("per_page"), PAGE_SIZE, MAX_PAGE_SIZE)}

    def run_bookings(f: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """One page of the bookings, and whether there is a next one."""
        size = f["per_page"]
        items = desk().bookings(f["status"], f["q"], limit=size + 1,
                                offset=(f["page"] - 1) * size)
        return items[:size], len(items) > size

    def bookings_link(f: dict[str, Any], page_number: int | None = None) -> str:
        values = {"q": f["q"], "status": f["status"],
                  "per_page": f["per_page"] if f["per_page"] != PAGE_SIZE else None,
                  "page": page_number if page_number is not None else f["page"]}
        values["page"] = values["page"] if values["page"] != 1 else None
        query = urlencode({k: v for k, v in values.items() if v})
        return "/staff/bookings" + ("?" + query if query else "")

    @router.get("/bookings")
    def bookings(request: Request) -> Response:
        login = current(request)
        f = booking_filters(request.query_params)
        items, more = run_bookings(f)
        here = bookings_link(f)
        return page("bookings.html", login, title="Bookings", items=items, f=f,
                    statuses=BOOKING_STATUSES, flash=request.query_params.get("flash"),
                    here=here.partition("?")[2],
                    previous=bookings_link(f, f["page"] - 1) if f["page"] > 1 else None,
                    next=bookings_link(f, f["page"] + 1) if more else None)

    @router.post("/bookings/{reference}/status")
    async def booking_status(request: Request, reference: str) -> Response:
        login = await logged_in(request)
        form = await form_of(request, login)
        await run_in_threadpool(desk().set_booking_status, login.username, reference,
                                form.get("status", ""))
        # back to the list as it was (its own filters only: never a path from the form)
        listed = dict(parse_qsl(form.get("list", "")))
        target = bookings_link(booking_filters({k: v for k, v in listed.items()
                                                if k in _BOOKING_LIST_KEYS}))
        return back(target, f"{reference} is now {booking_label(form.get('status'))}.")

    @router.get("/bookings.csv")
    def bookings_csv(request: Request) -> Response:
        login = current(request)
        return Response(desk().bookings_csv(login.username), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="bookings.csv"',
                                 "Cache-Control": "no-store"})

    @router.get("/gaps")
    def gaps(request: Request) -> Response:
        login = current(request)
        threshold = settings.gap_similarity
        return page("gaps.html", login, title="Content gaps", threshold=threshold,
                    groups=desk().gaps(services.embeddings, threshold))

    @router.get("/audit")
    def audit(request: Request) -> Response:
        login = current(request)
        return page("audit.html", login, title="Audit log", items=desk().audit_log())

    # the JSON API (same session)
    @router.get("/api/turns")
    def api_turns(request: Request) -> Response:
        """One page (``page``, ``per_page``) of the queue, filtered like ``/staff/queue``."""
        current(request)
        return JSONResponse(run_queue(queue_filters(request))[0])

    @router.get("/api/turns/{turn_id}")
    def api_turn(request: Request, turn_id: TurnId) -> Response:
        current(request)
        found = desk().turn(turn_id)
        if found is None:
            return JSONResponse({"error": {"code": "not_found", "message": "No such answer."}},
                                status_code=404)
        return JSONResponse(found | {"record": found["record"].model_dump(mode="json")})

    @router.get("/api/conversations/{session_id}")
    def api_conversation(request: Request, session_id: SessionId) -> Response:
        current(request)
        found = desk().conversation(session_id)
        if found is None:
            return JSONResponse({"error": {"code": "not_found",
                                           "message": "No such conversation."}},
                                status_code=404)
        return JSONResponse(found)

    @router.get("/api/bookings")
    def api_bookings(request: Request) -> Response:
        """One page (``page``, ``per_page``) of the bookings, searched (``q``) and filtered
        (``status``) like ``/staff/bookings``."""
        current(request)
        return JSONResponse(run_bookings(booking_filters(request.query_params))[0])

    return router


def install_staff_handlers(app) -> None:
    @app.exception_handler(NotLoggedIn)
    async def _not_logged_in(request: Request, _exc: NotLoggedIn) -> Response:
        if request.url.path.startswith("/staff/api"):
            return JSONResponse({"error": {"code": "unauthorized", "message": "Log in first."}},
                                status_code=401)
        return RedirectResponse("/staff/login", status_code=303)

    @app.exception_handler(CsrfError)
    async def _csrf(_request: Request, _exc: CsrfError) -> Response:
        return JSONResponse({"error": {"code": "forbidden", "message": "Missing or wrong CSRF "
                                       "token; reload the page and try again."}},
                            status_code=403)
