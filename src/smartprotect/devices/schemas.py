"""What the dashboard and the agent send about devices, validated."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from smartprotect.accounts.schemas import TextInput
from smartprotect.commands.schemas import SignedCommand
from smartprotect.devices.models import Capability, LocationMethod
from smartprotect.i18n import N_
from smartprotect.validation import invalid, text_field

MAX_FIXES_PER_CHECK_IN = 100
MAX_ACCOUNTS = 50


class EnrollmentCodeCreate(TextInput):
    device_name: str = Field(min_length=1, max_length=100)
    capabilities: list[Capability] = Field(default_factory=list)

    @field_validator("device_name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise invalid("device_name", N_("Give the device a name."))
        return value


class EnrollRequest(TextInput):
    """The agent's half of enrollment: the code, and what this machine itself allows."""

    code: str = Field(min_length=1, max_length=32)
    platform: str = Field(min_length=1, max_length=32)
    agent_version: str | None = Field(default=None, max_length=32)
    # Capabilities the device's administrator allows locally (e.g. wipe only with --allow-wipe);
    # the device gets those the owner chose on the dashboard and the machine allows.
    allowed: list[Capability] = Field(default_factory=lambda: list(Capability))


class EnrollResponse(BaseModel):
    device_id: uuid.UUID
    credential: str
    capabilities: list[Capability]
    command_public_key: str
    check_in_seconds: int


class LocationFix(BaseModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    accuracy_m: float = Field(gt=0, le=100_000)
    method: LocationMethod
    fixed_at: AwareDatetime


class CheckIn(TextInput):
    battery_percent: int | None = Field(default=None, ge=0, le=100)
    agent_version: str | None = Field(default=None, max_length=32)
    # Fixes taken since the last check-in, oldest first (kept on the device while offline).
    locations: list[LocationFix] = Field(default_factory=list, max_length=MAX_FIXES_PER_CHECK_IN)
    accounts: list[str] | None = Field(default=None, max_length=MAX_ACCOUNTS)

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not name or len(name) > 64 for name in value):
            raise invalid("accounts", N_("Account names are 1 to 64 characters."))
        return None if value is None else [text_field(name) for name in value]


class CheckInResponse(BaseModel):
    # When to check in next: rarely to spare the battery, often in lost mode.
    check_in_after_seconds: int
    # How many of the fixes were kept (none unless locating is permitted).
    locations_stored: int
    # Whether the accounts were kept (only if reporting them is permitted).
    accounts_stored: bool
    # Commands waiting for the device, each now delivered.
    commands: list[SignedCommand] = Field(default_factory=list)


class LocationRead(BaseModel):
    latitude: float
    longitude: float
    accuracy_m: float
    method: LocationMethod
    fixed_at: datetime
    received_at: datetime
