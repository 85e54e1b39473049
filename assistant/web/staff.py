"""``/staff``: the support staff's console (plain server-rendered pages) and its JSON API.

Behind a login (accounts from ``scarguide staff add``; no default account). The session
is a random token in an HttpOnly, SameSite=Strict cookie, stored hashed with an expiry;
every form carries a CSRF token tied to the session (the login form a double-submit one).
Without a session, pages redirect to the login and ``/staff/api`` answers 401.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from assistant.errors import ConfigError, InputError, RateLimitedError
from assistant.frontdesk import RateLimiter
from assistant.staff import PROBLEM_STATUSES, AuthError, Login, StaffDesk
from assistant.store import BOOKING_STATUSES

COOKIE = "sg_staff"
LOGIN_CSRF_COOKIE = "sg_login_csrf"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "staff"


class NotLoggedIn(Exception):
    pass


class CsrfError(Exception):
    pass


def staff_router(desk: Callable[[], StaffDesk], services, settings) -> APIRouter:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    logins = RateLimiter(settings.staff_login_rate_limit)  # per client address
    router = APIRouter(prefix="/staff", include_in_schema=False)

    def page(name: str, login: Login | None, status: int = 200, **values: Any) -> HTMLResponse:
        body = env.get_template(name).render(login=login, **values)
        response = HTMLResponse(body, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'"
        )
        return response

    def current(request: Request) -> Login:
        login = desk().session(request.cookies.get(COOKIE))
        if login is None:
            raise NotLoggedIn
        return login

    async def form_of(request: Request, login: Login) -> dict[str, str]:
        form = await request.form()
        given = str(form.get("csrf", ""))
        if not hmac.compare_digest(given, login.csrf):
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
        form = await request.form()
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(str(form.get("csrf", "")), expected):
            return page("login.html", None, status=403, title="Login", csrf=expected,
                        has_users=True, error="The form expired; please try again.")
        try:
            logins.check(request.client.host if request.client else None)
            # argon2 takes tens of milliseconds: off the event loop
            token, _login = await run_in_threadpool(
                desk().login, str(form.get("username", "")), str(form.get("password", ""))
            )
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
        login = current(request)
        await form_of(request, login)
        desk().logout(request.cookies.get(COOKIE))
        response = RedirectResponse("/staff/login", status_code=303)
        response.delete_cookie(COOKIE, path="/staff")
        return response

    def queue_filters(request: Request) -> dict[str, Any]:
        q = request.query_params
        return {"status": q.get("status") or None, "thumbs_down": q.get("thumbs_down") == "1",
                "dropped": q.get("dropped") == "1", "low": q.get("low") == "1",
                "since": q.get("since") or None, "q": q.get("q") or None,
                "order": q.get("order") or "problems"}

    def run_queue(f: dict[str, Any]) -> list[dict[str, Any]]:
        return desk().queue(status=f["status"], thumbs_down=f["thumbs_down"],
                            dropped=f["dropped"], low_faithfulness=f["low"], since=f["since"],
                            text=f["q"], order=f["order"])

    @router.get("/queue")
    def queue(request: Request) -> Response:
        login = current(request)
        f = queue_filters(request)
        try:
            items = run_queue(f)
            error = None
        except InputError as exc:
            items, error = [], str(exc)
        return page("queue.html", login, title="Review queue", items=items, f=f,
                    statuses=["answered", *PROBLEM_STATUSES, "handoff"], error=error,
                    flash=request.query_params.get("flash"))

    @router.get("/turns/{turn_id}")
    def turn(request: Request, turn_id: int) -> Response:
        login = current(request)
        found = desk().turn(turn_id)
        if found is None:
            return page("base.html", login, status=404, title="Not found",
                        error=f"No answer {turn_id}.")
        return page("turn.html", login, title=f"Answer {turn_id}", t=found,
                    flash=request.query_params.get("flash"))

    @router.post("/turns/{turn_id}/review")
    async def review(request: Request, turn_id: int) -> Response:
        login = current(request)
        form = await form_of(request, login)
        desk().review(login.username, turn_id, form.get("verdict", ""), form.get("note"))
        return back(f"/staff/turns/{turn_id}", f"Marked {form.get('verdict')}.")

    @router.post("/turns/{turn_id}/add-case")
    async def add_case(request: Request, turn_id: int) -> Response:
        from assistant.evals.harness import add_case as add

        login = current(request)
        form = await form_of(request, login)
        facts = [line.split("|") for line in form.get("facts", "").splitlines() if line.strip()]
        facts = [[alt.strip() for alt in fact if alt.strip()] for fact in facts]
        path = settings.staff_eval_file
        try:
            case = add(services.store, turn_id, path,
                       expected_status=form.get("expected_status") or None, facts=facts)
        except ConfigError as exc:
            return back(f"/staff/turns/{turn_id}", f"Not added: {exc}")
        desk().audit(login.username, "eval.add_case", f"turn {turn_id}",
                     f"{case.id} → {path.name} ({case.expected_status})")
        return back(f"/staff/turns/{turn_id}", f"Added case {case.id} to {path.name}.")

    @router.get("/bookings")
    def bookings(request: Request) -> Response:
        login = current(request)
        status = request.query_params.get("status") or None
        return page("bookings.html", login, title="Bookings", items=desk().bookings(status),
                    statuses=BOOKING_STATUSES, flash=request.query_params.get("flash"))

    @router.post("/bookings/{reference}/status")
    async def booking_status(request: Request, reference: str) -> Response:
        login = current(request)
        form = await form_of(request, login)
        desk().set_booking_status(login.username, reference, form.get("status", ""))
        return back("/staff/bookings", f"{reference} is now {form.get('status')}.")

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
        current(request)
        return JSONResponse(run_queue(queue_filters(request)))

    @router.get("/api/turns/{turn_id}")
    def api_turn(request: Request, turn_id: int) -> Response:
        current(request)
        found = desk().turn(turn_id)
        if found is None:
            return JSONResponse({"error": {"code": "not_found", "message": "No such answer."}},
                                status_code=404)
        return JSONResponse(found | {"record": found["record"].model_dump(mode="json")})

    @router.get("/api/bookings")
    def api_bookings(request: Request) -> Response:
        current(request)
        return JSONResponse(desk().bookings(request.query_params.get("status") or None))

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
