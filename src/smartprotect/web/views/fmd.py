"""An FMD phone on the dashboard: its data goes to the owner's browser as ciphertext, is opened
there with the FMD password (which never reaches the server), and commands are signed (v1)
or encrypted (v2) there before they come back (`static/js/fmd.js`)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from smartprotect.deps import ClockDep, DbSession, KeyringDep
from smartprotect.devices import service as devices
from smartprotect.errors import ValidationFailed, rollback_unless_kept
from smartprotect.fmd import service as fmd
from smartprotect.fmd.models import ItemKind
from smartprotect.i18n import translations
from smartprotect.web.gates import SignedInUser
from smartprotect.web.templating import language
from smartprotect.web.views.forms import CsrfChecked

router = APIRouter()
# What the browser needs for a map: the newest locations (FMD keeps 500 at most).
LOCATIONS_SHOWN = 500


def _private(payload: Any, status_code: int = 200) -> JSONResponse:
    # Key material and ciphertext of one person: never kept by a cache.
    return JSONResponse(payload, status_code=status_code, headers={"Cache-Control": "no-store"})


@router.get("/devices/{device_id}/fmd")
def fmd_data(device_id: uuid.UUID, db: DbSession, user: SignedInUser) -> Response:
    """What the browser needs to open the phone's locations: the account's encrypted key
    material and the locations, as stored (newest last); pictures are fetched one by one."""
    device = devices.get_device(session=db, user=user, device_id=device_id)
    account = fmd.account_of(session=db, device=device)
    if account.protocol_version == fmd.PROTOCOL_V2:
        locations = [
            {"id": item.client_item_id, "time": item.unix_millis, "ciphertext": item.ciphertext64}
            for item in fmd.items_v2(session=db, account=account, kind=ItemKind.LOCATION)
        ]
    else:
        locations = [
            {"ciphertext": json.loads(stored)["Data"]}
            for stored in fmd.items(session=db, account=account, kind=ItemKind.LOCATION)
        ]
    return _private({
        "username": account.username, "protocol": account.protocol_version,
        "private_key": account.private_key, "salt": account.salt,
        "master_key": account.master_key or "", "locations": locations[-LOCATIONS_SHOWN:],
        "pictures": fmd.count_items(session=db, account=account, kind=ItemKind.PICTURE),
    })  # fmt: skip


@router.get("/devices/{device_id}/fmd/pictures/{index}")
def fmd_picture(device_id: uuid.UUID, index: int, db: DbSession, user: SignedInUser) -> Response:
    """One stored picture, as ciphertext (0 is the oldest)."""
    device = devices.get_device(session=db, user=user, device_id=device_id)
    account = fmd.account_of(session=db, device=device)
    if account.protocol_version == fmd.PROTOCOL_V2:
        item = fmd.item_v2_at(session=db, account=account, kind=ItemKind.PICTURE, index=index)
        if item is None:
            return _private({"error": "no such picture"}, 404)
        return _private({"id": item.client_item_id, "time": item.unix_millis,
                         "ciphertext": item.ciphertext64})  # fmt: skip
    try:
        stored = fmd.item_at(session=db, account=account, kind=ItemKind.PICTURE, index=index)
    except fmd.FmdError:
        return _private({"error": "no such picture"}, 404)
    return _private({"ciphertext": stored})


@router.post("/devices/{device_id}/fmd/commands", dependencies=[CsrfChecked])
async def fmd_command(
    request: Request,
    device_id: uuid.UUID,
    db: DbSession,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    """A command the browser signed or encrypted; the phone is woken for it."""
    device = devices.get_device(session=db, user=user, device_id=device_id)
    try:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            raise ValueError
        keyword = str(body.get("keyword", ""))
        signed = encrypted = None
        if isinstance(body.get("signed"), dict):
            raw = body["signed"]
            signed = fmd.Command(str(raw.get("data", "")), int(raw.get("unix_time", 0)),
                                 str(raw.get("signature", "")))  # fmt: skip
        if isinstance(body.get("encrypted"), dict):
            raw = body["encrypted"]
            encrypted = fmd.ItemV2(str(raw.get("clientItemIdHex", "")),
                                   int(raw.get("unixMillis", 0)),
                                   str(raw.get("ciphertext64", "")))  # fmt: skip
        for extra in ("password", "confirm_name"):
            if not isinstance(body.get(extra, ""), str):
                raise TypeError(extra)
    except (ValueError, TypeError, OverflowError):
        return _private({"errors": {"command": "invalid"}}, 400)
    try:
        fmd.send_from_dashboard(
            session=db, keyring=keyring, clock=clock, user=user, device=device,
            keyword=keyword, signed=signed, encrypted=encrypted,
            password=body.get("password"), confirm_name=body.get("confirm_name"),
        )  # fmt: skip
    except (ValidationFailed, fmd.FmdError) as exc:
        # Only a wrong password stays written (the throttle counts it); nothing else does.
        if isinstance(exc, fmd.FmdError):
            db.rollback()
        else:
            rollback_unless_kept(db, exc)
        catalog = translations(language(request))
        errors = getattr(exc, "errors", None) or {"command": str(exc)}
        return _private({"errors": {k: catalog.gettext(v) for k, v in errors.items()}}, 422)
    return _private({"sent": keyword})
