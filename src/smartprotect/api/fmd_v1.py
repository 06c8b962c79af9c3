"""The FMD server protocol, API v1, as the FMD Android app (0.15) and FMD clients call it.

Mounted under /api/v1 beside our own API (no path is shared), and at the root as FMD
servers do (the app reads `/version` there). Bodies are JSON whose keys are
matched without regard to case, as FMD's Go server does; refusals (`FmdError`) are the
protocol's plain text with its status codes, not problem documents (`refusal`).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Scope

from smartprotect.audit.tags import Tag
from smartprotect.config import Settings
from smartprotect.deps import ClockDep, DbSession, KeyringDep, SettingsDep, client_address
from smartprotect.fmd import push
from smartprotect.fmd import service as fmd
from smartprotect.fmd.models import FmdAccount, ItemKind
from smartprotect.fmd.service import FmdError
from smartprotect.security import hash_token

router = APIRouter(tags=["fmd"])


def refusal(exc: FmdError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return PlainTextResponse(f"{exc}\n", status_code=exc.status_code, headers=headers)


async def _body(request: Request) -> dict[str, Any]:
    return _parsed(await request.body())


def _parsed(body: bytes) -> dict[str, Any]:
    """A protocol body, its keys lower-cased (FMD's Go server matches them regardless)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise FmdError(400, "Invalid JSON") from None
    if not isinstance(data, dict):
        raise FmdError(400, "Invalid JSON")
    return {str(key).lower(): value for key, value in data.items()}


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key.lower(), "")
    if not isinstance(value, str):
        raise FmdError(400, "Invalid JSON")
    return value


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key.lower(), 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FmdError(400, "Invalid JSON")
    return value


def open_registration(settings: Settings) -> fmd.OpenRegistration | None:
    """Whether, and with which token, phones may register accounts of nobody's device."""
    if not settings.fmd_open_registration:
        return None
    token = settings.fmd_open_registration_token
    return fmd.OpenRegistration(token.get_secret_value() if token is not None else None)


def _package(idt: str, data: str) -> JSONResponse:
    return JSONResponse({"IDT": idt, "Data": data})


async def _signed_in(request: Request, db, clock) -> tuple[dict[str, Any], FmdAccount]:
    """The body, and the account its access token (`IDT`) is for."""
    data = await _body(request)
    return data, fmd.account_for_token(session=db, clock=clock, token=_text(data, "IDT"))


@router.get("/version", response_class=PlainTextResponse)
def version() -> Response:
    """The FMD protocol version served (the app needs at least 0.9.0)."""
    return PlainTextResponse(fmd.PROTOCOL_VERSION)


@router.put("/device")
async def register(
    request: Request, db: DbSession, clock: ClockDep, keyring: KeyringDep, settings: SettingsDep
) -> Response:
    """Register the phone, with an enrollment code from its owner's dashboard as the
    registration token (or, if the operator opened registration, as on FMD servers)."""
    data = await _body(request)
    with fmd.throttled(session=db, keyring=keyring, clock=clock, client=client_address(request),
                       name=_text(data, "requestedUsername")) as count:  # fmt: skip
        account = fmd.register(
            session=db, keyring=keyring, clock=clock,
            registration_token=_text(data, "registrationToken"),
            requested_username=_text(data, "requestedUsername"),
            hashed_password=_text(data, "hashedPassword"),
            public_key=_text(data, "pubkey"), private_key=_text(data, "privkey"),
            open_registration=open_registration(settings), count_attempt=count,
        )  # fmt: skip
    return JSONResponse({"DeviceId": account.username})


@router.post("/device")
async def delete_device(
    request: Request, db: DbSession, clock: ClockDep, keyring: KeyringDep
) -> Response:
    """Delete the phone's account, with its locations, pictures and sessions."""
    _data, account = await _signed_in(request, db, clock)
    fmd.audit_event(session=db, keyring=keyring, clock=clock, account=account,
                    action=Tag.FMD_DELETED)  # fmt: skip
    fmd.delete_account(session=db, account=account)
    return Response(status_code=200)


@router.put("/salt")
async def salt(request: Request, db: DbSession) -> Response:
    username = _text(await _body(request), "IDT")
    return _package(username, fmd.salt_of(session=db, username=username))


@router.put("/requestAccess")
async def request_access(
    request: Request, db: DbSession, clock: ClockDep, keyring: KeyringDep
) -> Response:
    """Log in with the app's Argon2id hash; a refused attempt counts toward the lock."""
    data = await _body(request)
    username = _text(data, "IDT")
    with fmd.throttled(session=db, keyring=keyring, clock=clock, client=client_address(request),
                       name=username):  # fmt: skip
        token, _ = fmd.log_in(session=db, keyring=keyring, clock=clock, username=username,
                              client_hash=_text(data, "Data"),
                              seconds=_count(data, "SessionDurationSeconds"))  # fmt: skip
    return _package(username, token)


@router.put("/key")
async def private_key(request: Request, db: DbSession, clock: ClockDep) -> Response:
    """The private key, as the app wrapped it (also the app's connectivity check)."""
    data, account = await _signed_in(request, db, clock)
    return _package(_text(data, "IDT"), account.private_key)


@router.put("/pubKey")
async def public_key(request: Request, db: DbSession, clock: ClockDep) -> Response:
    data, account = await _signed_in(request, db, clock)
    return _package(_text(data, "IDT"), account.public_key)


@router.post("/password")
async def change_password(
    request: Request, db: DbSession, clock: ClockDep, keyring: KeyringDep
) -> Response:
    """A new password and re-wrapped private key; every session, this one too, ends."""
    data, account = await _signed_in(request, db, clock)
    fmd.audit_event(session=db, keyring=keyring, clock=clock, account=account,
                    action=Tag.FMD_PASSWORD_CHANGED)  # fmt: skip
    fmd.change_password(session=db, clock=clock, account=account,
                        client_hash=_text(data, "hashedPassword"),
                        private_key=_text(data, "privkey"))  # fmt: skip
    return _package(_text(data, "IDT"), "true")


@router.put("/command")
async def take_command(request: Request, db: DbSession, clock: ClockDep) -> Response:
    """The waiting command for the phone, emptied from its slot as it is read."""
    data, account = await _signed_in(request, db, clock)
    command = fmd.take_command(session=db, account=account)
    return JSONResponse({"IDT": _text(data, "IDT"), "Data": command.data,
                         "UnixTime": command.unix_time, "CmdSig": command.signature})  # fmt: skip


@router.post("/command")
async def put_command(
    request: Request, db: DbSession, clock: ClockDep, keyring: KeyringDep
) -> Response:
    """A command signed by an FMD client for the phone, which is woken to fetch it."""
    data, account = await _signed_in(request, db, clock)
    command = fmd.Command(_text(data, "Data"), _count(data, "UnixTime"), _text(data, "CmdSig"))
    if fmd.set_command(account=account, command=command):
        push.wake_after_commit(db, account.push_url)
        # Its keyword only: the rest may be a lock message or the phone's wipe PIN.
        fmd.audit_event(session=db, keyring=keyring, clock=clock, account=account,
                        action=Tag.FMD_COMMAND_RECEIVED,
                        details={"command": command.data.split(" ", 1)[0][:32]})  # fmt: skip
    return Response(status_code=200)


@router.put("/push")
async def set_push(request: Request, db: DbSession, clock: ClockDep) -> Response:
    data, account = await _signed_in(request, db, clock)
    account.push_url = _text(data, "Data")[:2048] or None
    return Response(status_code=200)


@router.post("/push")
async def get_push(request: Request, db: DbSession, clock: ClockDep) -> Response:
    _data, account = await _signed_in(request, db, clock)
    return PlainTextResponse(account.push_url or "")


@router.post("/location")
async def upload_location(request: Request, db: DbSession, clock: ClockDep) -> Response:
    """Store an encrypted location as the app sent it."""
    data, account = await _signed_in(request, db, clock)
    fmd.add_item(session=db, clock=clock, account=account, kind=ItemKind.LOCATION,
                 data=fmd.stored_location(_text(data, "Data")))  # fmt: skip
    return Response(status_code=200)


@router.put("/location")
async def read_location(request: Request, db: DbSession, clock: ClockDep) -> Response:
    data, account = await _signed_in(request, db, clock)
    stored = fmd.item_at(session=db, account=account, kind=ItemKind.LOCATION,
                         index=_index(_text(data, "Data")))  # fmt: skip
    return Response(stored, media_type="application/json")


@router.post("/picture", max_body_size=fmd.PICTURE_BODY_LIMIT + 64 * 1024)
async def upload_picture(request: Request, db: DbSession, clock: ClockDep) -> Response:
    """Store an encrypted picture as the app sent it (up to 15 MiB; FMD keeps it raw)."""
    data, account = await _signed_in(request, db, clock)
    fmd.add_item(session=db, clock=clock, account=account, kind=ItemKind.PICTURE,
                 data=_text(data, "Data"))  # fmt: skip
    return Response(status_code=200)


@router.put("/picture")
async def read_picture(request: Request, db: DbSession, clock: ClockDep) -> Response:
    data, account = await _signed_in(request, db, clock)
    stored = fmd.item_at(session=db, account=account, kind=ItemKind.PICTURE,
                         index=_index(_text(data, "Data")))  # fmt: skip
    return PlainTextResponse(stored)


def _add_listing(kind: ItemKind, *, every: str, count: str, delete: str) -> None:
    """A kind's routes that differ only by it: all items, how many, delete them all."""

    async def every_item(request: Request, db: DbSession, clock: ClockDep) -> Response:
        _data, account = await _signed_in(request, db, clock)
        return JSONResponse(fmd.items(session=db, account=account, kind=kind))

    async def item_count(request: Request, db: DbSession, clock: ClockDep) -> Response:
        _data, account = await _signed_in(request, db, clock)
        return _package("", str(fmd.count_items(session=db, account=account, kind=kind)))

    async def delete_every_item(request: Request, db: DbSession, clock: ClockDep) -> Response:
        _data, account = await _signed_in(request, db, clock)
        fmd.delete_items(session=db, account=account, kind=kind)
        return Response(status_code=200)

    # FMD's server answers these whatever the method; its clients differ (the web client
    # posts, the fmd-api client puts).
    for path, route, name in ((every, every_item, f"all_{kind}s"),
                              (count, item_count, f"{kind}_count"),
                              (delete, delete_every_item, f"delete_{kind}s")):  # fmt: skip
        for method in ("POST", "PUT"):
            router.add_api_route(path, route, methods=[method], name=f"{name}_{method.lower()}")


_add_listing(ItemKind.LOCATION, every="/locations", count="/locationDataSize",
             delete="/locations/delete")  # fmt: skip
_add_listing(ItemKind.PICTURE, every="/pictures", count="/pictureSize",
             delete="/pictures/delete")  # fmt: skip


@router.get("/tileServerUrl")
def tile_server_url(settings: SettingsDep) -> Response:
    """The map tiles FMD clients should use: ours, from the settings."""
    return JSONResponse({"TileServerUrl": settings.map_tile_url or ""})


def _index(text: str) -> int:
    # As FMD's server (strconv.Atoi, its error ignored): anything not a number reads as 0.
    try:
        return int(text)
    except ValueError:
        return 0


# -- the phone's busiest calls, answered ahead of the middleware stack (api.fast_path) -------


def _call(body: bytes, *, upload: bool) -> tuple[fmd.PhoneCall, str]:
    """The call a body makes, and its access token; raises for anything unusual."""
    data = _parsed(body)
    token, blob = data.get("idt"), data.get("data", "")
    if not isinstance(token, str) or not token or not isinstance(blob, str):
        raise ValueError("not the protocol's body")
    return fmd.PhoneCall(token_hash=hash_token(token), blob=blob if upload else None), token


async def answer_location_upload(scope: Scope, body: bytes) -> bytes:
    """Store an app's encrypted location through the group-commit writer (`upload_location`
    is the same, one at a time); raises for anything unusual, which that route answers."""
    call, _token = _call(body, upload=True)
    # A refused call (FmdError) is raised here.
    await scope["app"].state.phone_calls.submit(call)
    return b""


async def answer_command_poll(scope: Scope, body: bytes) -> bytes:
    """The app's poll of its command slot (as `take_command`), through the writer."""
    call, token = _call(body, upload=False)
    command = await scope["app"].state.phone_calls.submit(call)
    return json.dumps({"IDT": token, "Data": command.data, "UnixTime": command.unix_time,
                       "CmdSig": command.signature}).encode()  # fmt: skip


# Where the app sends them: under /api/v1 (app 0.15) and at the root (older apps).
FAST_ROUTES = {
    (method, prefix + path): answer
    for prefix in ("/api/v1", "")
    for method, path, answer in (("POST", "/location", answer_location_upload),
                                 ("PUT", "/command", answer_command_poll))
}  # fmt: skip
