"""The web application: FastAPI with the JSON API under /api/v1 and the pages."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from smartprotect import __version__
from smartprotect.api import fmd_v1, fmd_v2
from smartprotect.api.fast_path import FastPath
from smartprotect.api.openapi import complete as complete_openapi
from smartprotect.api.v1.agent import CHECK_IN_PATH, answer_check_in, check_in
from smartprotect.clock import Clock, SystemClock
from smartprotect.commands.notify import QUEUED_FLAG as COMMAND_QUEUED
from smartprotect.commands.notify import Notifier
from smartprotect.config import Settings
from smartprotect.db import (
    SCRUB,
    SCRUB_PATIENCE_MS,
    make_async_engine,
    make_engine,
    make_gate,
    make_session_factory,
    normalise_url,
    scrub,
)
from smartprotect.devices.group_commit import POSTGRES_WRITERS, CheckInWriter
from smartprotect.devices.signing import command_key_from_settings
from smartprotect.errors import SmartProtectError
from smartprotect.fmd import push as fmd_push
from smartprotect.fmd.group_commit import PhoneCallWriter
from smartprotect.fmd.service import FmdError
from smartprotect.i18n import N_, translations
from smartprotect.mail.links import Links
from smartprotect.mail.service import QUEUED_FLAG as MAIL_QUEUED
from smartprotect.mail.worker import OutboxWorker
from smartprotect.privacy.keys.master import Keyring, keyring_from_settings
from smartprotect.privacy.retention.scheduler import RetentionScheduler
from smartprotect.validation import field_errors_from_request
from smartprotect.web.gates import LoginRequired, PolicyReviewRequired
from smartprotect.web.language import LanguageMiddleware, is_explicit, localized
from smartprotect.web.security_headers import (
    SecurityHeadersMiddleware,
    content_security_policy,
    device_api_headers,
    security_headers,
)
from smartprotect.web.templating import language, make_templates, render

STATIC_DIR = Path(__file__).parent / "web" / "static"
PROBLEM_JSON = "application/problem+json"

_HTTP_MESSAGES = {
    404: N_("This page does not exist."),
    405: N_("This request is not allowed here."),
}


log = logging.getLogger(__name__)

# No request needs more (a check-in of 100 fixes is ~20 KB); larger ones get 413.
MAX_BODY_BYTES = 1024 * 1024
# PostgreSQL connections for the long-polls' short transactions (each a few milliseconds).
LONG_POLL_CONNECTIONS = 4


class Application(FastAPI):
    """FastAPI, with the busiest route answered ahead of its middleware (`api.fast_path`)."""

    def __init__(self, *, fast_routes, fast_headers, **options) -> None:
        super().__init__(**options)
        self.fast_routes = fast_routes
        self.fast_headers = fast_headers

    def build_middleware_stack(self) -> ASGIApp:
        return FastPath(
            super().build_middleware_stack(), routes=self.fast_routes, headers=self.fast_headers
        )

    def openapi(self) -> dict:
        if self.openapi_schema is None:
            self.openapi_schema = complete_openapi(super().openapi())
        return self.openapi_schema


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    keyring: Keyring | None = None,
    command_key: Ed25519PrivateKey | None = None,
) -> FastAPI:
    """Build the application around explicit settings, clock, engine and keys."""
    keyring = keyring or keyring_from_settings(settings)
    command_key = command_key or command_key_from_settings(settings)
    engine = engine or make_engine(settings)
    session_factory = make_session_factory(engine, keyring=keyring)
    clock = clock or SystemClock()
    gate = make_gate(engine)
    # Check-ins, FMD phones' calls and long-polls reach the database from the event loop; on
    # PostgreSQL through an engine of their own (each writer's connections, and the polls').
    async_engine = (
        make_async_engine(engine, pool_size=2 * POSTGRES_WRITERS + LONG_POLL_CONNECTIONS)
        if engine.dialect.name == "postgresql"
        else None
    )
    outbox = OutboxWorker(settings=settings, session_factory=session_factory, clock=clock)

    notifier = Notifier()
    retention = RetentionScheduler(
        session_factory=session_factory, clock=clock, keyring=keyring,
        links=Links(base_url=settings.base_url),
        interval_seconds=settings.retention_interval_seconds,
    )  # fmt: skip

    def after_commit(session: Session) -> None:
        """Once a transaction has committed: send the mail it queued, wake the devices it
        queued commands for."""
        if session.info.pop(MAIL_QUEUED, False):
            outbox.wake()
        queued_for = session.info.pop(COMMAND_QUEUED, None)
        if queued_for:
            notifier.publish(queued_for, via_database=engine.dialect.name == "postgresql")
        fmd_push.wake_queued(session, allow_private=settings.fmd_push_to_private_addresses)
        if session.info.pop(SCRUB, False) and not scrub(engine, patience_ms=SCRUB_PATIENCE_MS):
            log.info("the write-ahead log is emptied by the next retention run, not now")

    check_ins = CheckInWriter(
        session_factory=session_factory, gate=gate, keyring=keyring, command_key=command_key,
        clock=clock, links=Links(base_url=settings.base_url), after_commit=after_commit,
        async_engine=async_engine,
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await outbox.start()
        await notifier.start(database_url=normalise_url(settings.database_url))
        await retention.start()
        try:
            yield
        finally:
            await retention.stop()
            await notifier.stop()
            await outbox.stop()
            if async_engine is not None:
                await async_engine.dispose()

    headers = security_headers(
        https=settings.secure_cookies, policy=content_security_policy(settings.map_tile_url)
    )
    app = Application(
        fast_routes={("POST", CHECK_IN_PATH): answer_check_in, **fmd_v1.FAST_ROUTES},
        fast_headers=device_api_headers(https=settings.secure_cookies),
        max_body_size=MAX_BODY_BYTES,
        title="Smart Protect: Platinum Protection API",
        version=__version__,
        # FastAPI's interactive docs load Swagger UI from a CDN; we serve the OpenAPI
        # document only, so nothing comes from outside the site.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        # No OpenTelemetry here: without this FastAPI asks for its providers on every
        # request, check-ins included (about a tenth of a check-in's time on the event loop).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.db_gate = gate
    app.state.clock = clock
    app.state.keyring = keyring
    app.state.command_key = command_key
    app.state.outbox = outbox
    app.state.notifier = notifier
    app.state.after_commit = after_commit
    app.state.check_ins = check_ins
    app.state.phone_calls = PhoneCallWriter(
        session_factory=session_factory, gate=gate, keyring=keyring, clock=clock,
        after_commit=after_commit, async_engine=async_engine,
    )  # fmt: skip
    app.state.retention = retention
    app.state.async_engine = async_engine
    app.state.templates = make_templates()

    from smartprotect.api.v1 import router as api_v1_router
    from smartprotect.web.views import router as web_router

    # The busiest route, so a plain one, and first: matched before any other is tried.
    app.add_route(CHECK_IN_PATH, check_in, methods=["POST"], include_in_schema=False)
    app.include_router(api_v1_router, prefix="/api/v1")
    app.include_router(fmd_v1.router, prefix="/api/v1")
    app.include_router(fmd_v2.router, prefix="/api/v2")
    # FMD servers also answer at the root (deprecated there, still used by older clients).
    app.include_router(fmd_v1.router, include_in_schema=False)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        """Whether the server and its database answer."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                "database": "ok",
                "version": __version__,
                "waiting_devices": notifier.connected_devices,
            }
        )

    _install_error_handlers(app)
    app.add_middleware(SecurityHeadersMiddleware, headers=headers)
    app.add_middleware(LanguageMiddleware)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document in the reader's language."""
    _ = translations(language(request)).gettext
    body: dict[str, object] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = {field: _(message) for field, message in errors.items()}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FmdError)
    async def fmd_refusal(_request: Request, exc: FmdError) -> Response:
        return fmd_v1.refusal(exc)

    @app.exception_handler(SmartProtectError)
    async def domain_error(request: Request, exc: SmartProtectError) -> Response:
        _ = translations(language(request)).gettext
        detail = _(exc.message) % exc.params if exc.params else _(exc.message)
        headers = {}
        if exc.status_code == 401 and _is_api(request):
            headers["WWW-Authenticate"] = "Bearer"
        retry_after = getattr(exc, "retry_after_seconds", None)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        if _is_api(request):
            return problem(
                request,
                status=exc.status_code,
                title=exc.title,
                detail=detail,
                errors=getattr(exc, "errors", None),
                headers=headers,
            )
        return _error_page(request, exc.status_code, detail, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = field_errors_from_request(exc)
        _ = translations(language(request)).gettext
        detail = _("Please correct the errors below.")
        if _is_api(request):
            return problem(request, status=422, title="Invalid input", detail=detail, errors=errors)
        return _error_page(request, 400, _("The request is not valid."), {})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        _ = translations(language(request)).gettext
        message = _HTTP_MESSAGES.get(exc.status_code)
        detail = _(message) if message else str(exc.detail)
        if _is_api(request):
            return problem(
                request,
                status=exc.status_code,
                title=str(exc.detail),
                detail=detail,
                headers=dict(exc.headers or {}),
            )
        return _error_page(request, exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Logged with its traceback by Starlette; the client learns nothing about internals.
        _ = translations(language(request)).gettext
        detail = _("Something went wrong on our side. Please try again later.")
        if _is_api(request):
            return problem(request, status=500, title="Internal server error", detail=detail)
        return _error_page(request, 500, detail, {})

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        target = localized("/login", language(request), explicit=is_explicit(request.scope))
        return RedirectResponse(f"{target}?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(PolicyReviewRequired)
    async def review_required(request: Request, _exc: PolicyReviewRequired) -> Response:
        target = localized(
            "/privacy/review", language(request), explicit=is_explicit(request.scope)
        )
        return RedirectResponse(f"{target}?next={quote(request.url.path)}", status_code=303)


def _error_page(request: Request, status: int, detail: str, headers: dict[str, str]) -> Response:
    response = render(
        request,
        "error.html",
        settings=request.app.state.settings,
        context={"status": status, "detail": detail},
        status_code=status,
    )
    response.headers.update(headers)
    return response
