"""Downloading everything held about you (clause 5.4), and the export's published schema."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from smartprotect.accounts.models import User
from smartprotect.db import read_only_session
from smartprotect.deps import ClockDep, DbSession, KeyringDep, SettingsDep
from smartprotect.privacy.rights import export
from smartprotect.privacy.rights import service as rights
from smartprotect.privacy.rights.schema import EXPORT_SCHEMA, SCHEMA_ID
from smartprotect.web.gates import SignedInUser
from smartprotect.web.templating import page_context

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
