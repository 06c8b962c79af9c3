"""Phones running the free FMD (Find My Device) app, as devices of a Smart Protect account.

The app speaks the FMD server protocol and encrypts end to end: the server keeps what the
protocol gives it (the private key wrapped with a key derived from the FMD password, the
public key, encrypted locations and pictures) and can read none of it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Model, str_enum, time_ordered_id
from smartprotect.devices.models import Device
from smartprotect.privacy.retention.rules import Category, Rule, register


class FmdAccount(Model):
    """The FMD side of a device: its protocol user name and the keys the app made."""

    __tablename__ = "fmd_accounts"

    # None only under open registration (`Settings.fmd_open_registration`): an account of
    # no Smart Protect user, until one links it to a device of theirs.
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), unique=True
    )
    # The protocol's "DeviceId"/IDT (v1) or username (v2).
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # The FMD server protocol the account's client encrypts with: 1 (the app 0.15) or 2.
    protocol_version: Mapped[int] = mapped_column(default=1, server_default="1")
    # The salt of the client's Argon2id password hash (v1: from the PHC string it registered
    # with; v2: as it sent it), handed back so the client derives the same hash again.
    salt: Mapped[str] = mapped_column(String(64))
    # That hash, hashed once more here: the server never sees the password.
    password_hash: Mapped[str] = mapped_column(String(255))
    # Opaque to the server. v1: the private key, encrypted under the FMD password, and the
    # public key. v2: the account's master key, encrypted under a key from the password.
    private_key: Mapped[str] = mapped_column(Text)
    public_key: Mapped[str] = mapped_column(Text)
    master_key: Mapped[str | None] = mapped_column(Text)
    push_url: Mapped[str | None] = mapped_column(String(2048))
    # The one command slot: emptied once the app has read it.
    command: Mapped[str | None] = mapped_column(Text)
    command_time: Mapped[int | None] = mapped_column(BigInteger)
    command_signature: Mapped[str | None] = mapped_column(Text)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # When the client last gave its password hash (registering, logging in, changing it):
    # an account of no Smart Protect user is kept a year from then (clause 2.4).
    provided_at: Mapped[datetime]


class FmdSession(Model):
    """An access token the app logged in for; only its hash is kept."""

    __tablename__ = "fmd_sessions"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("fmd_accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ItemKind(enum.StrEnum):
    LOCATION = "location"
    PICTURE = "picture"
    # Protocol v2 only: commands are encrypted items too, waiting until the phone deletes them.
    COMMAND = "command"


class FmdItem(Model):
    """An encrypted location, picture or (v2) command as a client uploaded it (the server
    cannot open it)."""

    __tablename__ = "fmd_items"
    __table_args__ = (
        Index("ix_fmd_items_account_kind_uploaded", "account_id", "kind", "uploaded_at"),
        Index("ix_fmd_items_uploaded_at_id", "uploaded_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=time_ordered_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fmd_accounts.id", ondelete="CASCADE"))
    kind: Mapped[ItemKind] = mapped_column(str_enum(ItemKind, 16))
    data: Mapped[str] = mapped_column(Text)
    # Protocol v2: the id (32 hex digits) and time the client gave the item, both bound into
    # its encryption.
    client_item_id: Mapped[str | None] = mapped_column(String(32))
    unix_millis: Mapped[int | None] = mapped_column(BigInteger)
    # Its retention clock (clause 2.4).
    uploaded_at: Mapped[datetime]


def _accounts_of(ids):
    """The FMD accounts of these users' devices (which a legal hold on them spares)."""
    return (
        select(FmdAccount.id)
        .join(Device, Device.id == FmdAccount.device_id)
        .where(Device.user_id.in_(ids))
    )


register(Rule(Category.GEOLOCATION, FmdItem, FmdItem.uploaded_at,
              lambda ids: FmdItem.account_id.in_(_accounts_of(ids)),
              where=FmdItem.kind == ItemKind.LOCATION))  # fmt: skip
# Pictures, and v2 commands a phone never fetched.
register(Rule(Category.OTHER, FmdItem, FmdItem.uploaded_at,
              lambda ids: FmdItem.account_id.in_(_accounts_of(ids)),
              where=FmdItem.kind.in_([ItemKind.PICTURE, ItemKind.COMMAND])))  # fmt: skip
# An account of nobody's device (open registration) goes with everything of it a year after
# its phone last logged in; a device's account lives as long as the device.
register(Rule(Category.OTHER, FmdAccount, FmdAccount.provided_at, None,
              where=FmdAccount.device_id.is_(None)))  # fmt: skip
register(Rule(Category.TECHNICAL, FmdSession, FmdSession.created_at,
              lambda ids: FmdSession.account_id.in_(_accounts_of(ids))))  # fmt: skip
