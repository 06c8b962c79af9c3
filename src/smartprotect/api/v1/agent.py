"""The device agent's API: enrollment and check-in, authenticated by the device credential."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from typing import Literal, TypeVar

from fastapi import APIRouter, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from smartprotect.commands import service as commands
from smartprotect.commands.models import State
from smartprotect.commands.schemas import SignedCommand
from smartprotect.db import KEYRING, once_more_if_lost
from smartprotect.deps import (
    DEVICE_CREDENTIAL_MISSING,
    ClockDep,
    CurrentDevice,
    DbSession,
    KeyringDep,
    SettingsDep,
    bearer_of,
    bearer_token,
)
from smartprotect.devices import service as devices
from smartprotect.devices.models import Device
from smartprotect.devices.schemas import CheckIn, CheckInResponse, EnrollRequest, EnrollResponse
from smartprotect.errors import NotAuthenticated
from smartprotect.mail.links import Links
from smartprotect.security import hash_token
from smartprotect.signing import public_text

router = APIRouter(prefix="/agent", tags=["agent"])
CHECK_IN_PATH = "/api/v1/agent/check-in"
log = logging.getLogger(__name__)
T = TypeVar("T")


@router.post("/enroll", status_code=status.HTTP_201_CREATED, response_model=EnrollResponse)
def enroll(
    request: Request,
    body: EnrollRequest,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
) -> EnrollResponse:
    """Exchange a one-time enrollment code for this device's credential (shown only here)."""
    device, credential = devices.enroll(session=db, keyring=keyring, request=body, clock=clock)
    return EnrollResponse(
        device_id=device.id,
        credential=credential,
        capabilities=device.capabilities,
        command_public_key=public_text(request.app.state.command_key.public_key()),
        check_in_seconds=settings.check_in_seconds,
    )


async def check_in(request: Request) -> Response:
    """Report location, battery and (if permitted) accounts; the answer carries any pending
    commands, signed, and says when to come back.

    The busiest endpoint, so a plain Starlette route, without dependency injection; and
    usually answered even before the middleware stack (`api.fast_path`).
    """
    body = await answer_check_in(request.scope, await request.body())
    return Response(body, media_type="application/json")


async def answer_check_in(scope: Scope, body: bytes) -> bytes:
    """Store a check-in through the group-commit writer and answer (the JSON body) once its
    batch has committed; raises what refuses it."""
    raw = bearer_of(scope)
    if raw is None:
        raise NotAuthenticated(DEVICE_CREDENTIAL_MISSING)
    try:
        report = CheckIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
    state = scope["app"].state
    outcome = await state.check_ins.submit(
        devices.Report(credential_hash=hash_token(raw), report=report)
    )
    if outcome.error is not None:
        raise outcome.error
    after = devices.next_check_in(
        outcome,
        check_in_seconds=state.settings.check_in_seconds,
        lost_check_in_seconds=state.settings.lost_check_in_seconds,
    )
    if not outcome.commands:
        # Most check-ins: the answer is three numbers, formatted without a model.
        stored = (after, outcome.locations_stored, _JSON_BOOL[outcome.accounts_stored])
        return _QUIET_ANSWER % stored
    answer = CheckInResponse(
        commands=outcome.commands,
        check_in_after_seconds=after,
        locations_stored=outcome.locations_stored,
        accounts_stored=outcome.accounts_stored,
    )
    return answer.model_dump_json().encode()


# `CheckInResponse` with no commands, as its model_dump_json writes it (a test compares).
_QUIET_ANSWER = (
    b'{"check_in_after_seconds":%d,"locations_stored":%d,"accounts_stored":%s,"commands":[]}'
)
_JSON_BOOL = {True: b"true", False: b"false"}


class CommandReport(BaseModel):
    state: Literal[State.RUNNING, State.SUCCEEDED, State.FAILED]
    result: dict[str, int | str | bool | None] | None = None


@router.post("/commands/{command_id}/state", status_code=status.HTTP_204_NO_CONTENT)
def report_command(
    command_id: uuid.UUID,
    body: CommandReport,
    device: CurrentDevice,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
) -> Response:
    """Report that a command started, succeeded or failed (sending it again is harmless)."""
    commands.report(
        session=db, keyring=keyring, device=device, command_id=command_id, state=body.state,
        result=body.result, clock=clock, links=Links(base_url=settings.base_url),
    )  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def one_transaction(state, work: Callable[[Session], T]) -> T:
    """Run `work` in a transaction of its own and commit it, without blocking the event loop.

    Thousands of devices hold long-polls and each comes back with a database turn, so on
    PostgreSQL these turns go through the asyncio engine (the same code, in a greenlet):
    they wait for the database without holding a worker thread each. On SQLite they wait
    for the single write lock at the database gate, then run in a worker thread."""

    def unit(session: Session) -> T:
        result = work(session)
        session.commit()
        try:
            state.after_commit(session)
        except Exception:
            log.exception("after a long-poll's transaction")
        return result

    if state.async_engine is not None:

        async def transaction() -> T:
            async with AsyncSession(
                state.async_engine, expire_on_commit=False, info={KEYRING: state.keyring}
            ) as session:
                return await session.run_sync(unit)

        return await once_more_if_lost(transaction)

    def in_thread() -> T:
        with state.session_factory() as session:
            try:
                return unit(session)
            except BaseException:
                session.rollback()
                raise

    async with state.db_gate:
        return await run_in_threadpool(in_thread)


LONG_POLL_MAX_SECONDS = 60
# Timeouts come up to this fraction early (see poll_commands).
JITTER = 0.1


class PollResponse(BaseModel):
    commands: list[SignedCommand]
    # "immediate": already waiting; "notification": woken by a new command; "timeout".
    woken_by: Literal["immediate", "notification", "timeout"]


@router.get("/commands", response_model=PollResponse)
async def poll_commands(
    request: Request, wait: float = Query(default=30, ge=0, le=LONG_POLL_MAX_SECONDS)
) -> PollResponse:
    """Long-poll: answers at once with pending commands, or as soon as one is queued (on any
    server instance), or empty after `wait` seconds. Holds no database transaction while it
    waits."""
    state = request.app.state
    raw = bearer_token(request)
    if raw is None:
        raise NotAuthenticated(DEVICE_CREDENTIAL_MISSING)

    def take(session: Session, device_id: uuid.UUID | None) -> tuple[uuid.UUID | None, list]:
        """The device (by id, or by its credential) and its queued commands, delivered."""
        if device_id is None:
            device = devices.device_for_credential(session=session, raw=raw)
        else:
            device = session.get(Device, device_id)
        if device is None or device.revoked_at is not None:
            return None, []
        return device.id, commands.deliver(
            session=session, keyring=state.keyring, device=device, key=state.command_key,
            clock=state.clock, links=Links(base_url=state.settings.base_url),
        )  # fmt: skip

    async def in_turn(device_id: uuid.UUID | None):
        return await one_transaction(state, lambda session: take(session, device_id))

    # One database turn authenticates and looks; a command announced after the look began
    # (before this poll subscribed) is noticed by its wake-up's number.
    mark = state.notifier.mark()
    device_id, pending = await in_turn(None)
    if device_id is None:
        raise NotAuthenticated(devices.REFUSED_CREDENTIAL)
    if pending:
        return PollResponse(commands=pending, woken_by="immediate")
    event = state.notifier.subscribe(device_id)
    if state.notifier.woken_since(device_id, mark):
        event.set()
    try:
        try:
            # Answered a little early at random, so that devices that connected together do
            # not all come back at the same instant.
            timeout = wait * random.uniform(1 - JITTER, 1)  # noqa: S311 (not a secret)
            await asyncio.wait_for(event.wait(), timeout=timeout)
        except TimeoutError:
            if state.engine.dialect.name == "postgresql":
                # Every instance hears of every command: none was queued.
                return PollResponse(commands=[], woken_by="timeout")
            # SQLite: another process on the same file cannot announce its commands.
            _, pending = await in_turn(device_id)
            return PollResponse(commands=pending, woken_by="timeout")
        _, pending = await in_turn(device_id)
        return PollResponse(commands=pending, woken_by="notification")
    finally:
        state.notifier.unsubscribe(device_id, event)
