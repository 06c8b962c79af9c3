"""The owner's devices and commands over the API (personal API tokens)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from smartprotect.commands import service as commands
from smartprotect.commands.models import Kind, State
from smartprotect.deps import ApiUser, ClockDep, DbSession, KeyringDep, SettingsDep
from smartprotect.devices import service as devices
from smartprotect.devices.schemas import LocationRead
from smartprotect.mail.links import Links

router = APIRouter(prefix="/devices", tags=["devices"])


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    platform: str
    capabilities: list[str]
    enrolled_at: datetime
    last_seen_at: datetime | None
    battery_percent: int | None
    lost: bool
    revoked_at: datetime | None


class CommandCreate(BaseModel):
    kind: Kind
    message: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    password: str | None = Field(default=None, max_length=256)
    confirm_name: str | None = Field(default=None, max_length=100)


class CommandRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: Kind
    state: State
    issued_at: datetime
    expires_at: datetime
    delivered_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    result: dict | None


@router.get("", response_model=list[DeviceRead])
def list_devices(db: DbSession, user: ApiUser) -> list[DeviceRead]:
    """The account's devices."""
    return [DeviceRead.model_validate(d) for d in devices.devices_of(session=db, user=user)]


@router.get("/{device_id}/locations", response_model=list[LocationRead])
def device_locations(
    device_id: uuid.UUID, db: DbSession, keyring: KeyringDep, user: ApiUser
) -> list[LocationRead]:
    """Where the device has been, newest first."""
    device = devices.get_device(session=db, user=user, device_id=device_id)
    return devices.locations(session=db, keyring=keyring, device=device)


@router.get("/{device_id}/commands", response_model=list[CommandRead])
def device_commands(
    device_id: uuid.UUID, db: DbSession, keyring: KeyringDep, clock: ClockDep, user: ApiUser
) -> list[CommandRead]:
    """The device's commands and their states, newest first."""
    device = devices.get_device(session=db, user=user, device_id=device_id)
    history = commands.history(session=db, keyring=keyring, device=device, clock=clock)
    return [CommandRead.model_validate(c) for c in history]


@router.post(
    "/{device_id}/commands", status_code=status.HTTP_201_CREATED, response_model=CommandRead
)
def issue_command(
    device_id: uuid.UUID,
    body: CommandCreate,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
    user: ApiUser,
) -> CommandRead:
    """Queue a command; a wipe needs the password and the device's name."""
    device = devices.get_device(session=db, user=user, device_id=device_id)
    command = commands.issue(
        session=db, keyring=keyring, user=user, device=device, kind=body.kind, clock=clock,
        links=Links(base_url=settings.base_url), message=body.message, phone=body.phone,
        password=body.password, confirm_name=body.confirm_name,
    )  # fmt: skip
    return CommandRead.model_validate(command)


@router.post("/{device_id}/commands/{command_id}/cancel", response_model=CommandRead)
def cancel_command(
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    db: DbSession,
    clock: ClockDep,
    keyring: KeyringDep,
    user: ApiUser,
) -> CommandRead:
    """Cancel a command the device has not fetched yet."""
    device = devices.get_device(session=db, user=user, device_id=device_id)
    command = commands.get_command(session=db, device=device, command_id=command_id)
    return CommandRead.model_validate(
        commands.cancel(session=db, keyring=keyring, user=user, command=command, clock=clock)
    )
