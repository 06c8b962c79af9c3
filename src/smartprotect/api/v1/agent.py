"""The device agent's API: enrollment and check-in, authenticated by the device credential."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from pydantic import BaseModel

from smartprotect.commands import service as commands
from smartprotect.commands.models import State
from smartprotect.deps import ClockDep, CurrentDevice, DbSession, KeyringDep, SettingsDep
from smartprotect.devices import service as devices
from smartprotect.devices.schemas import CheckIn, CheckInResponse, EnrollRequest, EnrollResponse
from smartprotect.mail.links import Links
from smartprotect.signing import public_text

router = APIRouter(prefix="/agent", tags=["agent"])


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


@router.post("/check-in", response_model=CheckInResponse)
def check_in(
    request: Request,
    body: CheckIn,
    device: CurrentDevice,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
) -> CheckInResponse:
    """Report location, battery and (if permitted) accounts; the answer carries any pending
    commands, signed, and says when to come back."""
    stored, accounts_stored = devices.check_in(
        session=db, keyring=keyring, device=device, report=body, clock=clock
    )
    links = Links(base_url=settings.base_url)
    devices.notify_if_found(session=db, device=device, clock=clock, links=links)
    pending = commands.deliver(
        session=db, keyring=keyring, device=device, key=request.app.state.command_key,
        clock=clock, links=links,
    )  # fmt: skip
    return CheckInResponse(
        commands=pending,
        check_in_after_seconds=devices.next_check_in(
            device,
            check_in_seconds=settings.check_in_seconds,
            lost_check_in_seconds=settings.lost_check_in_seconds,
        ),
        locations_stored=stored,
        accounts_stored=accounts_stored,
    )


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
