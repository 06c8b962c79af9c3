"""The FMD server protocol, API v2 (fmd-server 0.17), for clients of protocol v2.

Mounted at /api/v2. Clients authenticate with `Authorization: Bearer <token>` from login or
registration. Everything a v2 client stores is encrypted by it: the master key under a key
from the password, and each command, location and picture under its own key; the server
keeps and hands back ciphertext only. Refusals are plain text with the protocol's statuses,
as in v1 (`fmd_v1.refusal`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from smartprotect.api.fmd_v1 import _body, _count, _text, open_registration
from smartprotect.audit.tags import Tag
from smartprotect.deps import ClockDep, DbSession, KeyringDep, SettingsDep, client_address
from smartprotect.fmd import service as fmd
from smartprotect.fmd.models import FmdAccount, ItemKind
from smartprotect.fmd.service import FmdError

router = APIRouter(tags=["fmd"])
# A v2 upload may carry several items; a picture's alone may be 15 MiB.
ITEMS_BODY_LIMIT = 1024 * 1024
PICTURES_BODY_LIMIT = fmd.PICTURE_BODY_LIMIT + 64 * 1024


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise FmdError(400, "missing or malformed Authorization header")
    return header.removeprefix("Bearer ")


def _account(request: Request, db: DbSession, clock: ClockDep) -> FmdAccount:
    return fmd.account_for_token(session=db, clock=clock, token=_token(request))


SignedIn = Annotated[FmdAccount, Depends(_account)]


def _json(value: Any) -> JSONResponse:
    return JSONResponse(value)


# -- account management ---------------------------------------------------------------------


@router.get("/account/{name}/salt")
def salt(name: str, db: DbSession) -> Response:
    """The salt of the account's password hash, and the protocol its client encrypts with
    (1: fall back to API v1 to log in)."""
    account = fmd.account_named(session=db, username=name)
    if account is None:
        raise FmdError(404, "account not found")
    return _json({"salt64": account.salt, "protoVersion": account.protocol_version})


@router.post("/account/login")
async def log_in(request: Request, db: DbSession, clock: ClockDep, keyring: KeyringDep) -> Response:
    """A new access token, and the encrypted master key (empty for a v1 account); a refused
    attempt counts toward the lock."""
    data = await _body(request)
    with fmd.throttled(session=db, keyring=keyring, clock=clock, client=client_address(request),
                       name=_text(data, "username")):  # fmt: skip
        token, account = fmd.log_in(
            session=db, keyring=keyring, clock=clock, username=_text(data, "username"),
            client_hash=fmd.v2_password(_text(data, "passwordHash64")),
            seconds=_count(data, "sessionDurationSeconds"),
        )  # fmt: skip
    return _json({"accessToken": token, "encMasterKey64": account.master_key or ""})


@router.post("/account/register")
async def register(
    request: Request, db: DbSession, clock: ClockDep, keyring: KeyringDep, settings: SettingsDep
) -> Response:
    """Register a v2 account, with an enrollment code from its owner's dashboard as the
    registration token (or, if the operator opened registration, as on FMD servers); the
    answer is a first access token."""
    data = await _body(request)
    with fmd.throttled(session=db, keyring=keyring, clock=clock, client=client_address(request),
                       name=_text(data, "username")) as count:  # fmt: skip
        account = fmd.register_v2(
            session=db, keyring=keyring, clock=clock,
            registration_token=_text(data, "registrationToken"),
            username=_text(data, "username"), salt64=_text(data, "salt64"),
            password_hash64=_text(data, "passwordHash64"),
            protocol_version=_count(data, "protoVersion"),
            master_key64=_text(data, "encMasterKey64"),
            open_registration=open_registration(settings), count_attempt=count,
        )  # fmt: skip
    return _json({"accessToken": fmd.open_session(session=db, clock=clock, account=account)})


@router.post("/account/logout")
def log_out(request: Request, db: DbSession, _account: SignedIn) -> Response:
    """End this access token."""
    fmd.close_session(session=db, token=_token(request))
    return Response(status_code=200)


@router.delete("/account")
def delete_account(
    account: SignedIn, db: DbSession, clock: ClockDep, keyring: KeyringDep
) -> Response:
    """Delete the phone's account: the device, with its items and sessions."""
    fmd.audit_event(session=db, keyring=keyring, clock=clock, account=account,
                    action=Tag.FMD_DELETED)  # fmt: skip
    fmd.delete_account(session=db, account=account)
    return Response(status_code=200)


# -- account settings -----------------------------------------------------------------------


@router.get("/account/push_url")
def push_url(account: SignedIn) -> Response:
    return _json({"url": account.push_url or ""})


@router.post("/account/push_url")
async def set_push_url(request: Request, account: SignedIn) -> Response:
    """The phone's UnifiedPush endpoint, woken (without data) when a command waits."""
    account.push_url = _text(await _body(request), "url")[:2048] or None
    return Response(status_code=200)


@router.post("/account/password")
async def change_password(
    request: Request, account: SignedIn, db: DbSession, clock: ClockDep, keyring: KeyringDep
) -> Response:
    """A new password (salt, hash and re-encrypted master key); every session ends and the
    answer carries a new one."""
    data = await _body(request)
    token = fmd.change_password_v2(
        session=db, clock=clock, account=account, salt64=_text(data, "newSalt64"),
        password_hash64=_text(data, "newPasswordHash64"),
        master_key64=_text(data, "newEncMasterKey64"),
    )  # fmt: skip
    fmd.audit_event(session=db, keyring=keyring, clock=clock, account=account,
                    action=Tag.FMD_PASSWORD_CHANGED)  # fmt: skip
    return _json({"accessToken": token})


# -- encrypted data -------------------------------------------------------------------------


def _items_of(data: dict[str, Any]) -> list[fmd.ItemV2]:
    items = data.get("items")
    if not isinstance(items, list):
        raise FmdError(400, "Invalid JSON")
    parsed = []
    for raw in items:
        if not isinstance(raw, dict):
            raise FmdError(400, "Invalid JSON")
        item = {str(key).lower(): value for key, value in raw.items()}
        parsed.append(fmd.ItemV2(_text(item, "clientItemIdHex"), _count(item, "unixMillis"),
                                 _text(item, "ciphertext64")))  # fmt: skip
    return parsed


def _item_json(item: fmd.ItemV2) -> dict[str, Any]:
    return {"clientItemIdHex": item.client_item_id, "unixMillis": item.unix_millis,
            "ciphertext64": item.ciphertext64}  # fmt: skip


def _add_item_routes(kind: ItemKind, *, body_limit: int) -> None:
    """One data type's routes: list, upload, delete all, delete one."""

    def every_item(account: SignedIn, db: DbSession) -> Response:
        items = fmd.items_v2(session=db, account=account, kind=kind)
        return _json({"items": [_item_json(item) for item in items]})

    async def upload(
        request: Request, account: SignedIn, db: DbSession, clock: ClockDep, keyring: KeyringDep
    ) -> Response:
        items = _items_of(await _body(request))
        fmd.add_items_v2(session=db, clock=clock, account=account, kind=kind, items=items)
        if kind == ItemKind.COMMAND and items:
            # Only that commands came: they are encrypted, the server cannot say which.
            fmd.audit_event(session=db, keyring=keyring, clock=clock, account=account,
                            action=Tag.FMD_COMMAND_RECEIVED,
                            details={"command": "encrypted", "count": len(items)})  # fmt: skip
        return Response(status_code=200)

    def delete_all(account: SignedIn, db: DbSession) -> Response:
        fmd.delete_items(session=db, account=account, kind=kind)
        return Response(status_code=200)

    def delete_one(item_id: str, account: SignedIn, db: DbSession) -> Response:
        fmd.delete_item_v2(session=db, account=account, kind=kind, item_id=item_id)
        return Response(status_code=200)

    path = f"/data/{kind.value}"
    router.add_api_route(path, every_item, methods=["GET"], name=f"v2_{kind}s")
    router.add_api_route(path, upload, methods=["POST"], name=f"v2_upload_{kind}s",
                         max_body_size=body_limit)  # fmt: skip
    router.add_api_route(f"{path}/all", delete_all, methods=["DELETE"], name=f"v2_delete_{kind}s")
    router.add_api_route(f"{path}/{{item_id}}", delete_one, methods=["DELETE"],
                         name=f"v2_delete_{kind}")  # fmt: skip


for _kind in ItemKind:
    _add_item_routes(
        _kind, body_limit=PICTURES_BODY_LIMIT if _kind == ItemKind.PICTURE else ITEMS_BODY_LIMIT
    )


@router.api_route("/data/{kind}", methods=["GET", "POST"], include_in_schema=False)
@router.api_route("/data/{kind}/{item_id}", methods=["DELETE"], include_in_schema=False)
def unknown_kind(kind: str) -> Response:
    raise FmdError(400, f"unknown data type {kind}"[:100])


# -- other ----------------------------------------------------------------------------------


@router.get("/tileServerUrl")
def tile_server_url(settings: SettingsDep) -> Response:
    """The map tiles FMD clients should use: ours, from the settings (v2: plain text)."""
    return PlainTextResponse(settings.map_tile_url or "")


@router.get("/version")
def version() -> Response:
    return PlainTextResponse(fmd.PROTOCOL_VERSION)
