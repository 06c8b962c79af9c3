"""Downloading everything held about you (clause 5.4), the export's published schema, and
confirming a request made by email (clauses 7.1, 7.2) through the link mailed for it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from smartprotect.accounts.models import User
from smartprotect.db import read_only_session
from smartprotect.deps import ClockDep, DbSession, KeyringDep, SettingsDep
from smartprotect.errors import NotFound
from smartprotect.privacy.rights import export, requests
from smartprotect.privacy.rights import service as rights
from smartprotect.privacy.rights.schema import EXPORT_SCHEMA, SCHEMA_ID
from smartprotect.web.gates import SignedInUser
from smartprotect.web.templating import page_context, render
from smartprotect.web.views.forms import CheckedForm
from smartprotect.web.views.privacy import closed_page

router = APIRouter()


def _stream(request: Request, user: User, clock, keyring, write):
    """The user's document, read from one snapshot after this request's audit commits."""
    engine = request.app.state.engine
    user_id, now = user.id, clock.now()

    def body():
        with read_only_session(engine, keyring=keyring) as session:
            subject = session.get(User, user_id)
            if subject is None:
                return
            yield from write(export.document(session=session, keyring=keyring, user=subject,
                                             now=now))  # fmt: skip

    return body(), now


@router.get("/account/privacy/export.json")
def export_json(
    request: Request, db: DbSession, clock: ClockDep, keyring: KeyringDep, user: SignedInUser
) -> Response:
    return _download(request, db, clock, keyring, user)


def _download(request: Request, db, clock, keyring, user: User) -> Response:
    rights.record_export(session=db, keyring=keyring, user=user, clock=clock, form="json")
    body, now = _stream(request, user, clock, keyring, export.stream_json)
    return StreamingResponse(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="smartprotect-data-{now:%Y-%m-%d}.json"',
        "Cache-Control": "no-store",
    })  # fmt: skip


@router.get("/account/privacy/export.html")
def export_html(
    request: Request, db: DbSession, settings: SettingsDep, clock: ClockDep,
    keyring: KeyringDep, user: SignedInUser,
) -> Response:  # fmt: skip
    rights.record_export(session=db, keyring=keyring, user=user, clock=clock, form="html")
    template = request.app.state.templates.env.get_template("privacy/export.html")
    context = page_context(request, settings, user)

    def write(document):
        return template.generate(**context, doc=document)

    body, _now = _stream(request, user, clock, keyring, write)
    return StreamingResponse(body, media_type="text/html; charset=utf-8",
                             headers={"Cache-Control": "no-store"})  # fmt: skip


@router.get(SCHEMA_ID)
def export_schema() -> Response:
    return JSONResponse(EXPORT_SCHEMA, media_type="application/schema+json")


@router.get("/rights/{token}")
def request_page(
    request: Request, token: str, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> Response:
    # Confirming takes a POST: mail scanners that prefetch links must not set anything off.
    try:
        waiting = requests.pending(session=db, raw=token, clock=clock)
    except NotFound as exc:
        return render(request, "privacy/rights_request.html", settings=settings,
                      context={"error": exc.message}, status_code=exc.status_code)  # fmt: skip
    return render(request, "privacy/rights_request.html", settings=settings,
                  context={"token": token, "action": waiting.action.value})  # fmt: skip


@router.post("/rights/{token}")
def confirm_request(
    request: Request, token: str, form: CheckedForm, db: DbSession, settings: SettingsDep,
    clock: ClockDep, keyring: KeyringDep,
) -> Response:  # fmt: skip
    try:
        done, report = requests.confirm(session=db, keyring=keyring, raw=token, clock=clock)
    except NotFound as exc:
        db.rollback()
        return render(request, "privacy/rights_request.html", settings=settings,
                      context={"error": exc.message}, status_code=exc.status_code)  # fmt: skip
    if report is not None:
        return closed_page(request, settings, report)
    if done.action is requests.Action.EXPORT:
        return _download(request, db, clock, keyring, done.user)
    return render(request, "privacy/rights_request.html", settings=settings,
                  context={"action": done.action.value, "done": True})  # fmt: skip
