"""The FMD server protocol's accounts, sessions, command slot and encrypted items.

An FMD account is always a device of a Smart Protect account: the app registers with an
enrollment code its owner made on the dashboard (as its "registration token"), and the
device, its capabilities and their consent events come from that code, as for our agent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.devices import service as devices
from smartprotect.devices.models import Device
from smartprotect.devices.schemas import EnrollRequest
from smartprotect.errors import SmartProtectError
from smartprotect.fmd import push
from smartprotect.fmd.models import FmdAccount, FmdItem, FmdSession, ItemKind
from smartprotect.privacy.keys.master import Keyring
from smartprotect.security import hash_token, keyed_hash

# What `GET /version` answers: the FMD server release whose protocol this follows (the app
# needs 0.9.0 or later).
PROTOCOL_VERSION = "0.14.2"
PLATFORM = "fmd-android"
# Sessions: 15 minutes unless the app asks for longer, never more than a week.
DEFAULT_SESSION = timedelta(seconds=900)
MAX_SESSION = timedelta(days=7)
# Token alphabet and length as FMD's (no 0/O, 1/l/I).
TOKEN_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105
TOKEN_LENGTH = 32
# Brute force: from the sixth wrong password in a row, logins are refused for 10 minutes and
# the phone is told (the unsigned command "423").
MAX_FAILED_LOGINS = 5
LOCK_DURATION = timedelta(minutes=10)
LOCKED_COMMAND = "423"
USERNAME = re.compile(r"^[-_a-zA-Z0-9]{1,64}$")
# As FMD servers: the newest 500 locations and 10 pictures of a phone are kept (within the
# year of clause 2.4); a picture upload is at most 15 MiB.
KEPT = {ItemKind.LOCATION: 500, ItemKind.PICTURE: 10}
PICTURE_BODY_LIMIT = 15 * 1024 * 1024
PASSWORD_SCHEME = "pw-v2:sha-512:"  # noqa: S105 - a scheme name
PASSWORD_CONTEXT = b"context:serverSidePasswordHash"


class FmdError(SmartProtectError):
    """A refusal in the protocol's own terms: a status and a plain-text message. What was
    written before it stands: a counted wrong password, the lock's "423" command, when the
    phone was last seen; nothing else is written before a refusal."""

    keeps_transaction = True

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class Command:
    data: str
    unix_time: int
    signature: str


def server_password_hash(client_hash: str) -> str:
    """How the server keeps the app's Argon2id login hash: that hash is already slow to
    guess, so one SHA-512 under a context string (FMD's own scheme, `pw-v2`)."""
    digest = hashlib.sha512(PASSWORD_CONTEXT + client_hash.encode()).digest()
    return PASSWORD_SCHEME + base64.b64encode(digest).decode().rstrip("=")


def _salt_of(client_hash: str) -> str:
    parts = client_hash.split("$")
    return parts[4] if len(parts) == 6 else ""


def register(
    *,
    session: Session,
    keyring: Keyring,
    clock: Clock,
    registration_token: str,
    requested_username: str,
    hashed_password: str,
    public_key: str,
    private_key: str,
) -> FmdAccount:
    """Create the FMD account as a device of the owner of the enrollment code it carries."""
    if not registration_token.strip():
        raise FmdError(401, "Registration Token not valid")
    if not USERNAME.match(requested_username):
        raise FmdError(400, "Failed to create username: the requested username must be "
                            "alphanumeric and at most 64 characters")  # fmt: skip
    if session.scalar(select(FmdAccount.id).where(FmdAccount.username == requested_username)):
        raise FmdError(400, "Failed to create username: the requested username is not available")
    try:
        device, _credential = devices.enroll(
            session=session, keyring=keyring, clock=clock,
            request=EnrollRequest(code=registration_token, platform=PLATFORM,
                                  agent_version="fmd"),
        )  # fmt: skip
    except (SmartProtectError, ValidationError):
        raise FmdError(401, "Registration Token not valid") from None
    account = FmdAccount(
        device_id=device.id, username=requested_username, salt=_salt_of(hashed_password),
        password_hash=server_password_hash(hashed_password), private_key=private_key,
        public_key=public_key, failed_logins=0, created_at=clock.now(),
    )  # fmt: skip
    session.add(account)
    session.flush()
    return account


# The actor of what an FMD client does: the phone's account, named by a pseudonym.
def _actor(keyring: Keyring, account: FmdAccount) -> str:
    return "fmd:" + keyed_hash(secret=keyring.secret, purpose="fmd-actor",
                               value=account.username)[:16]  # fmt: skip


def audit_event(
    *, session: Session, keyring: Keyring, clock: Clock, account: FmdAccount, action: Tag,
    details: dict | None = None,
) -> None:  # fmt: skip
    """Record what happened to an FMD phone, for its owner (never a command's parameters)."""
    owner = session.scalar(select(Device.user_id).where(Device.id == account.device_id))
    audit.record_event(
        session=session, clock=clock, action=action, actor=_actor(keyring, account),
        secret=keyring.secret, subject_id=owner,
        details={"device": str(account.device_id), **(details or {})},
    )  # fmt: skip


def account_named(*, session: Session, username: str) -> FmdAccount | None:
    if not USERNAME.match(username):
        raise FmdError(400, "Invalid FMD ID")
    return session.scalar(select(FmdAccount).where(FmdAccount.username == username))


def salt_of(*, session: Session, username: str) -> str:
    """The login salt; empty for an unknown name, as FMD answers."""
    account = account_named(session=session, username=username)
    return account.salt if account is not None else ""


def log_in(
    *, session: Session, keyring: Keyring, clock: Clock, username: str, client_hash: str,
    seconds: int,
) -> tuple[str, FmdAccount]:  # fmt: skip
    """A new access token, or the protocol's refusal (404, 423 locked, 403 wrong password).
    A refused attempt is counted: the caller commits it."""
    account = account_named(session=session, username=username)
    if account is None:
        raise FmdError(404, "Account not found")
    now = clock.now()
    if account.locked_until is not None and account.locked_until <= now:
        account.failed_logins, account.locked_until = 0, None
    if account.failed_logins > MAX_FAILED_LOGINS:
        set_command(account=account, command=Command(LOCKED_COMMAND, 0, ""))
        push.wake_after_commit(session, account.push_url)
        audit_event(session=session, keyring=keyring, clock=clock, account=account,
                    action=Tag.FMD_LOCKED)  # fmt: skip
        raise FmdError(423, "Account is locked")
    if not hmac.compare_digest(account.password_hash, server_password_hash(client_hash)):
        account.failed_logins += 1
        account.locked_until = now + LOCK_DURATION  # the window slides with each failure
        audit_event(session=session, keyring=keyring, clock=clock, account=account,
                    action=Tag.FMD_LOGIN_FAILED,
                    details={"failures": account.failed_logins})  # fmt: skip
        raise FmdError(403, "Access denied")
    account.failed_logins, account.locked_until = 0, None
    duration = timedelta(seconds=seconds) if seconds > 0 else DEFAULT_SESSION
    token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
    session.add(FmdSession(account_id=account.id, token_hash=hash_token(token), created_at=now,
                           expires_at=now + min(duration, MAX_SESSION)))  # fmt: skip
    session.flush()
    return token, account


def account_for_token(*, session: Session, clock: Clock, token: str) -> FmdAccount:
    """The account an access token is for, or 401."""
    found = session.execute(
        select(FmdAccount, FmdSession.expires_at, Device.revoked_at)
        .join(FmdSession, FmdSession.account_id == FmdAccount.id)
        .join(Device, Device.id == FmdAccount.device_id)
        .where(FmdSession.token_hash == hash_token(token))
    ).first()
    if found is None or found.expires_at <= clock.now() or found.revoked_at is not None:
        raise FmdError(401, "Access token not valid")
    account = found[0]
    session.execute(
        Device.__table__.update().where(Device.id == account.device_id)
        .values(last_seen_at=clock.now())
    )  # fmt: skip
    return account


def change_password(
    *, session: Session, account: FmdAccount, client_hash: str, private_key: str
) -> None:
    """A new password (and the private key wrapped under it); every session ends."""
    account.salt = _salt_of(client_hash)
    account.password_hash = server_password_hash(client_hash)
    account.private_key = private_key
    session.execute(delete(FmdSession).where(FmdSession.account_id == account.id))


def set_command(*, account: FmdAccount, command: Command) -> bool:
    """Put a command in the account's one slot (replacing any); True if the phone should be
    woken for it."""
    account.command = command.data or None
    account.command_time = command.unix_time if command.data else None
    account.command_signature = command.signature if command.data else None
    return bool(command.data)


def take_command(*, account: FmdAccount) -> Command:
    """The waiting command, emptied from the slot as it is read."""
    command = Command(account.command or "", account.command_time or 0,
                      account.command_signature or "")  # fmt: skip
    set_command(account=account, command=Command("", 0, ""))
    return command


def add_item(*, session: Session, clock: Clock, account: FmdAccount, kind: ItemKind,
             data: str) -> None:  # fmt: skip
    """Store an encrypted location or picture as uploaded, keeping the newest `KEPT`."""
    session.add(FmdItem(account_id=account.id, kind=kind, data=data, uploaded_at=clock.now()))
    session.flush()
    newest = (
        select(FmdItem.id)
        .where(FmdItem.account_id == account.id, FmdItem.kind == kind)
        .order_by(FmdItem.uploaded_at.desc(), FmdItem.id.desc())
        .limit(KEPT[kind])
    )
    session.execute(
        delete(FmdItem).where(FmdItem.account_id == account.id, FmdItem.kind == kind,
                              FmdItem.id.not_in(newest)),
        execution_options={"synchronize_session": False},
    )  # fmt: skip


def _items(account: FmdAccount, kind: ItemKind):
    return (
        select(FmdItem.data)
        .where(FmdItem.account_id == account.id, FmdItem.kind == kind)
        .order_by(FmdItem.uploaded_at, FmdItem.id)
    )


def items(*, session: Session, account: FmdAccount, kind: ItemKind) -> list[str]:
    """Every stored item of a kind, oldest first."""
    return list(session.scalars(_items(account, kind)))


def count_items(*, session: Session, account: FmdAccount, kind: ItemKind) -> int:
    return session.scalar(
        select(func.count()).select_from(FmdItem)
        .where(FmdItem.account_id == account.id, FmdItem.kind == kind)
    )  # fmt: skip


def item_at(*, session: Session, account: FmdAccount, kind: ItemKind, index: int) -> str:
    """The item at a 0-based index, oldest first; -1 is the newest."""
    size = count_items(session=session, account=account, kind=kind)
    if index == -1:
        index = size - 1
    if not 0 <= index < size:
        raise FmdError(400, "requested index is out of bounds")
    return session.scalar(_items(account, kind).offset(index).limit(1))


def delete_items(*, session: Session, account: FmdAccount, kind: ItemKind) -> None:
    session.execute(delete(FmdItem).where(FmdItem.account_id == account.id, FmdItem.kind == kind))


def delete_account(*, session: Session, account: FmdAccount) -> uuid.UUID:
    """Delete the device with everything of it (its FMD account, sessions and items)."""
    device = session.get(Device, account.device_id)
    session.delete(device)
    session.flush()
    return account.device_id
