"""One server process: the REST API under ``/api``, ``/healthz``, OpenAPI at ``/docs``,
and the patients' Gradio UI at ``/``. Both adapters call the same FrontDesk."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from assistant.app import Services
from assistant.frontdesk import FrontDesk
from assistant.web.api import BodyLimit, install_error_handlers, router

log = logging.getLogger("scarguide.server")


class Runtime:
    """The process's FrontDesk, built once; warmed in the background at start."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._desk: FrontDesk | None = None
        self._lock = threading.Lock()
        self.warm_seconds: float | None = None
        self.warm_error: str | None = None
        self._warming = False
        self._last_try = time.monotonic()

    def desk(self) -> FrontDesk:
        with self._lock:
            if self._desk is None:
                self._desk = FrontDesk(self.services.assistant, self.services.store)
            return self._desk

    def warm(self) -> None:
        """Load the models and the guide prefix so the first patient does not wait."""
        started = time.perf_counter()
        try:
            self.desk().assistant.ready()  # under the lock a first patient would take
            self.warm_seconds = round(time.perf_counter() - started, 2)
            self.warm_error = None
            log.info("assistant ready in %.1f s", self.warm_seconds)
        except Exception as exc:  # /healthz says 503 and retries; the reason goes to the log
            self.warm_error = type(exc).__name__
            log.error("warm-up failed: %s: %s", type(exc).__name__, exc)

    def health(self) -> tuple[bool, dict[str, Any]]:
        services = self.services
        try:
            index_ready = services.index.count() > 0
        except Exception:
            index_ready = False
        database = services.store.ping()
        model_loaded = self.warm_seconds is not None
        body = {
            "status": "ok" if (index_ready and database and model_loaded) else "unavailable",
            "model_loaded": model_loaded,
            "index_ready": index_ready,
            "database": database,
            "model": services.settings.llm_model
            if services.settings.llm_backend == "local"
            else services.settings.llm_backend,
        }
        if self.warm_error and not model_loaded:
            self.retry_warm()
        return body["status"] == "ok", body

    def retry_warm(self, every_s: float = 60.0) -> None:
        """After a failed warm-up, try again in the background (at most once a minute)."""
        now = time.monotonic()
        with self._lock:
            if self._warming or now - self._last_try < every_s:
                return
            self._warming, self._last_try = True, now

        def run() -> None:
            try:
                self.warm()
            finally:
                self._warming = False

        threading.Thread(target=run, name="warm-up-retry", daemon=True).start()


def create_app(services: Services, ui: bool = True, warm: bool = True) -> FastAPI:
    runtime = Runtime(services)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        services.store.migrate()
        if warm:
            threading.Thread(target=runtime.warm, name="warm-up", daemon=True).start()
        yield

    app = FastAPI(
        title="scarguide",
        description="Answers patients' questions about acne scars from one trusted guide, "
        "with a citation for every sentence, and books consultations.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: no CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    # a message is at most max_message_chars (4 bytes each in UTF-8), plus the JSON around it
    app.add_middleware(BodyLimit, max_bytes=services.settings.max_message_chars * 4 + 16_384)
    from assistant.logs import AccessLog

    app.add_middleware(AccessLog)  # method, path without its query, status, ms: no patient text
    app.include_router(router(runtime.desk))

    from assistant.staff import StaffDesk
    from assistant.web.staff import install_staff_handlers, staff_router

    staff_desk = StaffDesk(services.store, services.settings.staff_session_hours)
    app.state.staff = staff_desk
    install_staff_handlers(app)
    app.include_router(staff_router(lambda: staff_desk, services, services.settings))

    from assistant.web.guide import guide_router

    # the guide itself, where every [n] of an answer links to (before the UI's "/" mount)
    app.include_router(guide_router(lambda: services.chunks, services.settings))

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="scarguide API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png",
        )

    @app.get("/healthz", summary="Is the assistant ready?")
    def healthz() -> JSONResponse:
        """200 when the model is loaded, the index is built and the database answers."""
        ok, body = runtime.health()
        return JSONResponse(body, status_code=200 if ok else 503)

    if ui:
        import gradio as gr

        from assistant.web.ui import CSS, THEME, build_ui

        # mounted last: a mount at "/" hides any route added after it
        app = gr.mount_gradio_app(
            app, build_ui(runtime.desk, services.settings), path="/", theme=THEME, css=CSS,
            footer_links=[], show_error=False,
        )
    return app


def app_from_env() -> FastAPI:
    """The app for one of several worker processes (``scarguide serve --workers N``)."""
    from assistant import logs
    from assistant.config import load_settings

    services = Services(load_settings())
    logs.configure(services.settings.log_level)
    return create_app(services)


def serve(services: Services, host: str = "127.0.0.1", port: int = 7860,
          workers: int = 1) -> None:
    import uvicorn

    from assistant import logs

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logs.configure(services.settings.log_level)
    print(f"scarguide is starting at http://{host}:{port}/  (API docs: /docs)", flush=True)
    options: dict[str, Any] = {  # uvicorn.run's keyword arguments
        "host": host,
        "port": port,
        "log_config": None,  # keep the redacting handler
        "access_log": False,  # uvicorn's line carries the query string: AccessLog instead
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": 10,
        "limit_concurrency": services.settings.max_connections,
    }
    if workers > 1:  # each worker builds its own app from the same settings
        services.store.migrate()  # once, before the workers start
        # one limit for the deployment, not one per worker (unless set otherwise)
        os.environ.setdefault("SCARGUIDE_RATE_LIMIT_STORAGE", "database")
        uvicorn.run("assistant.web.server:app_from_env", factory=True, workers=workers,
                    **options)
    else:
        uvicorn.run(create_app(services), **options)
