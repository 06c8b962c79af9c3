"""Request-scoped dependencies: the database session, settings, clock and current user."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.types import Scope

from smartprotect.accounts import service as accounts
from smartprotect.accounts.models import User
from smartprotect.clock import Clock
from smartprotect.config import Settings
from smartprotect.devices import service as devices
from smartprotect.devices.models import Device
from smartprotect.errors import NotAuthenticated
from smartprotect.i18n import N_
from smartprotect.privacy.keys.master import Keyring


async def database_turn(request: Request) -> AsyncIterator[None]:
    """Wait (without holding a worker thread) until this request may use the database."""
    async with request.app.state.db_gate:
        yield


def get_db(
    request: Request, _turn: Annotated[None, Depends(database_turn, scope="function")]
) -> Iterator[Session]:
    """One session per request, committed once when the handler returns without error."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
        session.commit()
        request.app.state.after_commit(session)
    except BaseException as exc:
        if getattr(exc, "keeps_transaction", False):
            session.commit()  # e.g. a wrong password: the failed attempt must count
            request.app.state.after_commit(session)
        else:
            session.rollback()
        raise
    finally:
        session.close()


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def get_keyring(request: Request) -> Keyring:
    return request.app.state.keyring


# "function" scope: commit before the response is sent, so a client never sees a
# success whose writes are then lost.
DbSession = Annotated[Session, Depends(get_db, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
KeyringDep = Annotated[Keyring, Depends(get_keyring)]


def session_cookie_name(settings: Settings) -> str:
    # __Host- binds the cookie to this exact origin over HTTPS.
    return "__Host-sp_session" if settings.secure_cookies else "sp_session"


def get_optional_user(
    request: Request, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> User | None:
    raw = request.cookies.get(session_cookie_name(settings))
    if not raw:
        return None
    return accounts.user_for_session(session=db, raw_token=raw, clock=clock)


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def bearer_token(request: Request) -> str | None:
    """The secret of an 'Authorization: Bearer <secret>' header, if there is one."""
    return bearer_of(request.scope)


def bearer_of(scope: Scope) -> str | None:
    """`bearer_token` from the raw ASGI headers (lower-cased names), without building a
    Request: the check-in path asks it of every request."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, raw = value.decode("latin-1").partition(" ")
            return raw.strip() if scheme.lower() == "bearer" and raw.strip() else None
    return None


def get_api_user(request: Request, db: DbSession, clock: ClockDep) -> User:
    raw = bearer_token(request)
    if raw is None:
        raise NotAuthenticated(N_("Send a personal API token as 'Authorization: Bearer <token>'."))
    user = accounts.user_for_api_token(session=db, raw_token=raw, clock=clock)
    if user is None:
        raise NotAuthenticated(N_("The API token is invalid or revoked."))
    return user


ApiUser = Annotated[User, Depends(get_api_user)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


DEVICE_CREDENTIAL_MISSING = N_("Send the device credential as 'Authorization: Bearer <token>'.")


def get_device(request: Request, db: DbSession) -> Device:
    """The device a request comes from, by its credential."""
    raw = bearer_token(request)
    if raw is None:
        raise NotAuthenticated(DEVICE_CREDENTIAL_MISSING)
    device = devices.device_for_credential(session=db, raw=raw)
    if device is None:
        raise NotAuthenticated(devices.REFUSED_CREDENTIAL)
    return device


CurrentDevice = Annotated[Device, Depends(get_device)]
