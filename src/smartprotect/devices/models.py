"""Protected devices: enrollment codes, the devices themselves and their reported locations."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, select
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Base, Model, time_ordered_id
from smartprotect.privacy.retention.rules import Category, Rule, register


class Capability(enum.StrEnum):
    """What the owner lets the Application do on a device (clause 1.5)."""

    LOCATE = "locate"
    RING = "ring"
    LOCK = "lock"
    WIPE = "wipe"
    REPORT_ACCOUNTS = "report_accounts"


class EnrollmentCode(Model):
    """A one-time code the owner types into the agent; only its hash is kept."""

    __tablename__ = "enrollment_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_name: Mapped[str] = mapped_column(String(100))
    capabilities: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Device(Model):
    __tablename__ = "devices"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(32))
    agent_version: Mapped[str | None] = mapped_column(String(32))
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    capabilities: Mapped[list[str]] = mapped_column(JSON)
    enrolled_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]
    battery_percent: Mapped[int | None]
    # The OS accounts on the device (clause 2.3.4), sealed with the owner's key, and only
    # ever stored when the owner allowed the device to report them.
    sealed_accounts: Mapped[bytes | None] = mapped_column(LargeBinary)
    # When the device last reported them: their retention clock (clause 2.4).
    accounts_reported_at: Mapped[datetime | None]
    lost: Mapped[bool] = mapped_column(default=False)
    lost_since: Mapped[datetime | None]
    # Set when the owner was told a lost device came back, so they are told once.
    found_notified_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def permits(self, capability: Capability) -> bool:
        return capability.value in self.capabilities


class AccessGeneration(Base):
    """One row, one counter: raised by database triggers whenever a device's credential,
    revocation, capabilities, owner or lost state, a consent, or a data key changes, so that
    what the check-in path keeps between batches is known to be stale (`devices.known`)."""

    __tablename__ = "access_generation"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class TheftIncident(Model):
    """A device marked lost, kept for anonymized statistics (clause 6.1): no owner, no device,
    only the day and a coarse region."""

    __tablename__ = "theft_incidents"

    reported_on: Mapped[date]
    # The last known position rounded to a 1-degree cell ("43N 76E"), or "unknown".
    region: Mapped[str] = mapped_column(String(16))
    platform: Mapped[str] = mapped_column(String(32))


class LocationMethod(enum.StrEnum):
    GPS = "gps"
    WIFI = "wifi"
    CELL = "cell"
    IP = "ip"
    MANUAL = "manual"


class DeviceLocation(Model):
    """One reported fix (clause 2.3.6); coordinates, accuracy and method sealed together."""

    __tablename__ = "device_locations"
    __table_args__ = (
        # One fix per device and time: a fix sent again (the device never got the answer
        # that said it was stored) is kept once (`devices.service._STORE_FIX`).
        Index("ix_device_locations_device_fix", "device_id", "fixed_at", unique=True),
        # The retention job walks expired fixes in this order, a chunk after the other.
        Index("ix_device_locations_received_at_id", "received_at", "id"),
    )

    # Many rows a second: time-ordered ids keep the primary key's index appended to, not
    # rewritten at random places (the fix's time is stored beside it anyway).
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=time_ordered_id)

    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    # When the device took the fix, and when we received it (the retention clock).
    fixed_at: Mapped[datetime]
    received_at: Mapped[datetime]
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


def devices_of_subjects(ids):
    """The ids of these users' devices (for rules on tables keyed by device)."""
    return select(Device.id).where(Device.user_id.in_(ids))


register(Rule(Category.GEOLOCATION, DeviceLocation, DeviceLocation.received_at,
              lambda ids: DeviceLocation.device_id.in_(devices_of_subjects(ids))))  # fmt: skip
register(Rule(Category.DEVICE_ACCOUNTS, Device, Device.accounts_reported_at,
              lambda ids: Device.user_id.in_(ids),
              clear=("sealed_accounts", "accounts_reported_at")))  # fmt: skip
register(Rule(Category.TECHNICAL, EnrollmentCode, EnrollmentCode.created_at,
              lambda ids: EnrollmentCode.user_id.in_(ids)))  # fmt: skip
