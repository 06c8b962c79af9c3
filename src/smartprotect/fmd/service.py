"""The FMD server protocol's accounts, sessions, command slot and encrypted items.

An FMD account is a device of a Smart Protect account: the app registers with an
enrollment code its owner made on the dashboard (as its "registration token"), and the
device, its capabilities and their consent events come from that code, as for our agent.
Only if the operator opens registration (`OpenRegistration`) may a phone register an
account of nobody's, as on a plain FMD server; its user can later link it to a device of
theirs (`link`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from smartprotect.accounts.models import LOGIN_THROTTLE_WINDOW, LoginAttempt, User
from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.commands import service as commands
from smartprotect.db import BulkWrite, time_ordered_id
from smartprotect.devices import service as devices
from smartprotect.devices.known import KnownDevices
from smartprotect.devices.models import Capability, Device
from smartprotect.devices.schemas import EnrollRequest
from smartprotect.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    SmartProtectError,
    ValidationFailed,
)
from smartprotect.fmd import push
from smartprotect.fmd.models import FmdAccount, FmdItem, FmdSession, ItemKind
from smartprotect.i18n import N_
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, Purpose
from smartprotect.privacy.keys.master import Keyring
from smartprotect.security import hash_token, keyed_hash

# What `GET /version` answers: the FMD server release whose protocols (v1 and v2) this
# follows (the app needs 0.9.0 or later).
PROTOCOL_VERSION = "0.17.0"
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
GENERATED_NAME_LENGTH = 10
# As FMD servers: the newest 500 locations and 10 pictures of a phone are kept (within the
# year of clause 2.4; batched uploads trim locations once 50 more came, `PRUNE_SLACK`); a
# picture upload is at most 15 MiB.
# v2 commands wait until the phone deletes them: at most 100 of them (FMD keeps all).
KEPT = {ItemKind.LOCATION: 500, ItemKind.PICTURE: 10, ItemKind.COMMAND: 100}
PICTURE_BODY_LIMIT = 15 * 1024 * 1024
PASSWORD_SCHEME = "pw-v2:sha-512:"  # noqa: S105 - a scheme name
PASSWORD_CONTEXT = b"context:serverSidePasswordHash"
PROTOCOL_V2 = 2
ITEM_ID = re.compile(r"^[0-9a-fA-F]{32}$")
# A signed 64-bit column holds an item's time.
MAX_UNIX_MILLIS = 2**63 - 1


class FmdError(SmartProtectError):
    """A refusal in the protocol's own terms: a status and a plain-text message. What was
    written before it stands: a counted wrong password, the lock's "423" command, when the
    phone was last seen; nothing else is written before a refusal."""

    keeps_transaction = True

    def __init__(self, status_code: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


# Failed logins and registrations from one client (its address): past this many within the
# sign-in throttle's window, counted together with failed sign-ins on the site, it is refused
# with 429 until the window has passed. FMD's own lock (423) covers one account.
MAX_FAILURES_PER_CLIENT = 20
# The refusals that count: unknown account, wrong password, locked, wrong registration token.
COUNTED = {401, 403, 404, 423}


@contextmanager
def throttled(
    *, session: Session, keyring: Keyring, clock: Clock, client: str, name: str
) -> Iterator[Callable[[], None]]:
    """Refuse a client that failed too often; count this attempt if it is refused. Yields
    the counting function, for attempts that count though they succeed (`register`)."""
    now = clock.now()
    client_key = keyed_hash(secret=keyring.secret, purpose="login-client", value=client)
    if session.get_bind().dialect.name == "postgresql":
        # One client's attempts one after the other, so that a burst of parallel guesses
        # cannot all pass the count before any is recorded (SQLite's write lock already
        # serialises them).
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": client_key}
        )
    failures = session.scalar(
        select(func.count()).select_from(LoginAttempt)
        .where(LoginAttempt.client_key == client_key,
               LoginAttempt.attempted_at > now - LOGIN_THROTTLE_WINDOW)
    )  # fmt: skip
    if failures >= MAX_FAILURES_PER_CLIENT:
        seconds = int(LOGIN_THROTTLE_WINDOW.total_seconds())
        raise FmdError(429, "Too many failed attempts, try again later", retry_after=seconds)

    def count() -> None:
        session.add(LoginAttempt(
            account_key=keyed_hash(secret=keyring.secret, purpose="fmd-account", value=name),
            client_key=client_key, attempted_at=now,
        ))  # fmt: skip
        session.flush()

    try:
        yield count
    except FmdError as exc:
        if exc.status_code in COUNTED:
            count()
        raise


@dataclass(frozen=True)
class OpenRegistration:
    """The operator lets phones register accounts of no Smart Protect user: with this
    registration token, or with any (None) that is not an enrollment code's."""

    token: str | None = None

    def admits(self, registration_token: str) -> bool:
        if self.token is not None:
            return hmac.compare_digest(registration_token.encode(), self.token.encode())
        # What may be a mistyped or expired enrollment code is refused, never taken for an
        # open registration: its user meant the phone to be a device of theirs.
        return not devices.looks_like_code(registration_token)


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
    open_registration: OpenRegistration | None = None,
    count_attempt: Callable[[], None] | None = None,
) -> FmdAccount:
    """Create a protocol-v1 FMD account (the app's) as a device of the owner of the
    enrollment code it carries (or of nobody, if open registration admits its token: that
    counts as an attempt of the client, `count_attempt` from `throttled`)."""
    return _create_account(
        session=session, keyring=keyring, clock=clock, registration_token=registration_token,
        open_registration=open_registration, count_attempt=count_attempt,
        username=requested_username, salt=_salt_of(hashed_password),
        password_hash=server_password_hash(hashed_password), private_key=private_key,
        public_key=public_key, protocol_version=1, master_key=None,
    )  # fmt: skip


def register_v2(
    *,
    session: Session,
    keyring: Keyring,
    clock: Clock,
    registration_token: str,
    username: str,
    salt64: str,
    password_hash64: str,
    protocol_version: int,
    master_key64: str,
    open_registration: OpenRegistration | None = None,
    count_attempt: Callable[[], None] | None = None,
) -> FmdAccount:
    """Create a protocol-v2 FMD account as a device of the owner of the enrollment code it
    carries (or of nobody, if open registration admits its token)."""
    if not registration_token.strip() and open_registration is None:
        raise FmdError(401, "Registration Token not valid")
    if protocol_version != PROTOCOL_V2:
        raise FmdError(400, f"invalid protoVersion: {protocol_version}, expected {PROTOCOL_V2}")
    client_hash = v2_password(password_hash64)
    _check_base64(salt64, "salt")
    _check_base64(master_key64, "encrypted master key")
    return _create_account(
        session=session, keyring=keyring, clock=clock, registration_token=registration_token,
        open_registration=open_registration, count_attempt=count_attempt, username=username,
        salt=salt64,
        password_hash=server_password_hash(client_hash),
        private_key="", public_key="", protocol_version=PROTOCOL_V2, master_key=master_key64,
    )  # fmt: skip


def v2_password(password_hash64: str) -> str:
    """The v2 client's key (K_auth) as the server hashes it: hex, so that two base64
    spellings of the same bytes are one password (as FMD does)."""
    return _check_base64(password_hash64, "password hash").hex()


def _check_base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise FmdError(400, f"{what} is invalid base64") from None


def _create_account(
    *, session: Session, keyring: Keyring, clock: Clock, registration_token: str,
    open_registration: OpenRegistration | None, count_attempt: Callable[[], None] | None,
    username: str, salt: str, password_hash: str, private_key: str, public_key: str,
    protocol_version: int, master_key: str | None,
) -> FmdAccount:  # fmt: skip
    ownerless = open_registration is not None and open_registration.admits(registration_token)
    if not ownerless and not registration_token.strip():
        raise FmdError(401, "Registration Token not valid")
    if not username:
        # As FMD's server: a client that asks for no name gets a random one.
        username = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(GENERATED_NAME_LENGTH))
    if not USERNAME.match(username):
        raise FmdError(400, "Failed to create username: the requested username must be "
                            "alphanumeric and at most 64 characters")  # fmt: skip
    if len(salt) > 64:
        raise FmdError(400, "salt is too long")
    if session.scalar(select(FmdAccount.id).where(FmdAccount.username == username)):
        raise FmdError(400, "Failed to create username: the requested username is not available")
    device_id = None
    if not ownerless:
        try:
            device, _credential = devices.enroll(
                session=session, keyring=keyring, clock=clock,
                request=EnrollRequest(code=registration_token, platform=PLATFORM,
                                      agent_version=f"fmd-v{protocol_version}"),
            )  # fmt: skip
        except (SmartProtectError, ValidationError):
            raise FmdError(401, "Registration Token not valid") from None
        device_id = device.id
    now = clock.now()
    account = FmdAccount(
        device_id=device_id, username=username, protocol_version=protocol_version, salt=salt,
        password_hash=password_hash, private_key=private_key, public_key=public_key,
        master_key=master_key, failed_logins=0, created_at=now, provided_at=now,
    )  # fmt: skip
    session.add(account)
    session.flush()
    if ownerless:
        audit_event(session=session, keyring=keyring, clock=clock, account=account,
                    action=Tag.FMD_REGISTERED_OPEN)  # fmt: skip
        if count_attempt is not None:
            count_attempt()  # so that one client cannot make accounts without end
    return account


# The actor of what an FMD client does: the phone's account, named by a pseudonym.
def _actor(keyring: Keyring, account: FmdAccount) -> str:
    return "fmd:" + keyed_hash(secret=keyring.secret, purpose="fmd-actor",
                               value=account.username)[:16]  # fmt: skip


def audit_event(
    *, session: Session, keyring: Keyring, clock: Clock, account: FmdAccount, action: Tag,
    details: dict | None = None,
) -> None:  # fmt: skip
    """Record what happened to an FMD phone, for its owner (never a command's parameters).
    An account of nobody's is named by its pseudonym only."""
    owner = None
    if account.device_id is not None:
        owner = session.scalar(select(Device.user_id).where(Device.id == account.device_id))
        details = {"device": str(account.device_id), **(details or {})}
    audit.record_event(
        session=session, clock=clock, action=action, actor=_actor(keyring, account),
        secret=keyring.secret, subject_id=owner, details=details or {},
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
    account.provided_at = now
    return open_session(session=session, clock=clock, account=account, seconds=seconds), account


def open_session(*, session: Session, clock: Clock, account: FmdAccount, seconds: int = 0) -> str:
    """A new access token for the account (15 minutes unless asked for longer, at most 7
    days); only its hash is kept."""
    now = clock.now()
    # Clamped first: a client may ask for any number of seconds.
    seconds = min(seconds, int(MAX_SESSION.total_seconds()))
    duration = timedelta(seconds=seconds) if seconds > 0 else DEFAULT_SESSION
    token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
    session.add(FmdSession(account_id=account.id, token_hash=hash_token(token), created_at=now,
                           expires_at=now + min(duration, MAX_SESSION)))  # fmt: skip
    session.flush()
    return token


def close_session(*, session: Session, token: str) -> None:
    """End one access token (v2 logout)."""
    session.execute(delete(FmdSession).where(FmdSession.token_hash == hash_token(token)))


def account_for_token(*, session: Session, clock: Clock, token: str) -> FmdAccount:
    """The account an access token is for, or 401."""
    found = session.execute(
        select(FmdAccount, FmdSession.expires_at, Device.revoked_at)
        .join(FmdSession, FmdSession.account_id == FmdAccount.id)
        .outerjoin(Device, Device.id == FmdAccount.device_id)
        .where(FmdSession.token_hash == hash_token(token))
    ).first()
    if found is None or found.expires_at <= clock.now() or found.revoked_at is not None:
        raise FmdError(401, "Access token not valid")
    account = found[0]
    if account.device_id is not None:
        session.execute(
            Device.__table__.update().where(Device.id == account.device_id)
            .values(last_seen_at=clock.now())
        )  # fmt: skip
    return account


def change_password(
    *, session: Session, clock: Clock, account: FmdAccount, client_hash: str, private_key: str
) -> None:
    """A new password (and the private key wrapped under it); every session ends."""
    account.provided_at = clock.now()
    account.salt = _salt_of(client_hash)
    account.password_hash = server_password_hash(client_hash)
    account.private_key = private_key
    session.execute(delete(FmdSession).where(FmdSession.account_id == account.id))


def change_password_v2(
    *, session: Session, clock: Clock, account: FmdAccount, salt64: str, password_hash64: str,
    master_key64: str,
) -> str:  # fmt: skip
    """A new password: its salt, hash and the master key re-encrypted under it. Every session
    ends; the returned token opens a new one."""
    client_hash = v2_password(password_hash64)
    _check_base64(salt64, "salt")
    _check_base64(master_key64, "encrypted master key")
    if len(salt64) > 64:
        raise FmdError(400, "salt is too long")
    account.salt = salt64
    account.password_hash = server_password_hash(client_hash)
    account.master_key = master_key64
    account.provided_at = clock.now()
    session.execute(delete(FmdSession).where(FmdSession.account_id == account.id))
    return open_session(session=session, clock=clock, account=account)


def set_command(*, account: FmdAccount, command: Command) -> bool:
    """Put a command in the account's one slot (replacing any); True if the phone should be
    woken for it."""
    account.command = command.data or None
    account.command_time = command.unix_time if command.data else None
    account.command_signature = command.signature if command.data else None
    return bool(command.data)


def take_command(*, session: Session, account: FmdAccount) -> Command:
    """The waiting command, emptied from the slot as it is read."""
    # Read under the row's lock: two polls at once (PostgreSQL) must not both get it, and a
    # command queued meanwhile must not be emptied unread.
    session.refresh(account, with_for_update=True)
    command = Command(account.command or "", account.command_time or 0,
                      account.command_signature or "")  # fmt: skip
    set_command(account=account, command=Command("", 0, ""))
    return command


@dataclass(frozen=True)
class ItemV2:
    """An encrypted item as protocol v2 carries it."""

    client_item_id: str  # 32 hex digits
    unix_millis: int
    ciphertext64: str


def may_locate(*, session: Session, account: FmdAccount) -> bool:
    """Whether the owner lets this phone locate itself (and take pictures): its locations and
    pictures are kept only then, as agents' fixes are. An account of nobody's device keeps
    them as FMD servers do: its phone sends them by its user's choice."""
    if account.device_id is None:
        return True
    device = session.get(Device, account.device_id)
    return devices.may(session=session, device=device, capability=Capability.LOCATE)


def add_item(*, session: Session, clock: Clock, account: FmdAccount, kind: ItemKind,
             data: str) -> None:  # fmt: skip
    """Store an encrypted location or picture as uploaded (v1), keeping the newest `KEPT`;
    dropped unless the owner lets the phone locate."""
    if not may_locate(session=session, account=account):
        return
    session.add(FmdItem(account_id=account.id, kind=kind, data=data, uploaded_at=clock.now()))
    session.flush()
    _prune(session=session, account_id=account.id, kind=kind)


def add_items_v2(
    *, session: Session, clock: Clock, account: FmdAccount, kind: ItemKind, items: list[ItemV2]
) -> None:
    """Store v2 items as uploaded, keeping the newest `KEPT`; new commands wake the phone.
    Locations and pictures are dropped unless the owner lets the phone locate."""
    now = clock.now()
    for item in items:
        if not ITEM_ID.match(item.client_item_id):
            raise FmdError(400, "clientItemIdHex must be 32 hex digits")
        if item.unix_millis > MAX_UNIX_MILLIS:
            raise FmdError(400, "unixMillis is out of range")
        _check_base64(item.ciphertext64, "ciphertext")
    if kind != ItemKind.COMMAND and not may_locate(session=session, account=account):
        return
    for item in items:
        session.add(FmdItem(account_id=account.id, kind=kind, data=item.ciphertext64,
                            client_item_id=item.client_item_id.lower(),
                            unix_millis=item.unix_millis, uploaded_at=now))  # fmt: skip
    session.flush()
    _prune(session=session, account_id=account.id, kind=kind)
    if kind == ItemKind.COMMAND and items:
        push.wake_after_commit(session, account.push_url)


def _v2_items(account: FmdAccount, kind: ItemKind):
    return (
        select(FmdItem.client_item_id, FmdItem.unix_millis, FmdItem.data)
        .where(FmdItem.account_id == account.id, FmdItem.kind == kind)
        .order_by(FmdItem.uploaded_at, FmdItem.id)
    )


def _item_v2(row) -> ItemV2:
    return ItemV2(row.client_item_id or "", row.unix_millis or 0, row.data)


def items_v2(*, session: Session, account: FmdAccount, kind: ItemKind) -> list[ItemV2]:
    """Every stored v2 item of a kind, in the order they came."""
    return [_item_v2(row) for row in session.execute(_v2_items(account, kind))]


def item_v2_at(
    *, session: Session, account: FmdAccount, kind: ItemKind, index: int
) -> ItemV2 | None:
    """One stored v2 item by its place in the order they came (0 the oldest)."""
    if index < 0:
        return None
    row = session.execute(_v2_items(account, kind).offset(index).limit(1)).first()
    return None if row is None else _item_v2(row)


def delete_item_v2(*, session: Session, account: FmdAccount, kind: ItemKind, item_id: str) -> None:
    """Delete the item(s) with this client id; 404 if there is none."""
    if not ITEM_ID.match(item_id):
        raise FmdError(404, "message not found")
    deleted = session.execute(
        delete(FmdItem).where(FmdItem.account_id == account.id, FmdItem.kind == kind,
                              FmdItem.client_item_id == item_id.lower())
    ).rowcount  # fmt: skip
    if not deleted:
        raise FmdError(404, "message not found")


def _prune(*, session: Session, account_id: uuid.UUID, kind: ItemKind) -> None:
    newest = (
        select(FmdItem.id)
        .where(FmdItem.account_id == account_id, FmdItem.kind == kind)
        .order_by(FmdItem.uploaded_at.desc(), FmdItem.id.desc())
        .limit(KEPT[kind])
    )
    session.execute(
        delete(FmdItem).where(FmdItem.account_id == account_id, FmdItem.kind == kind,
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


def delete_account(*, session: Session, account: FmdAccount) -> None:
    """Delete the device with everything of it (its FMD account, sessions and items)."""
    # Under the row's lock: an account being linked meanwhile is deleted with its new device.
    session.refresh(account, with_for_update=True)
    session.delete(account if account.device_id is None
                   else session.get(Device, account.device_id))  # fmt: skip
    session.flush()


# How fresh the login proving the FMD password must be (the browser logs in just before).
LINK_PROOF_WINDOW = timedelta(minutes=2)
LINK_FAILED = N_("Signing in to this FMD account did not work. Check its ID and password.")


def link(
    *, session: Session, keyring: Keyring, clock: Clock, user: User, token: str,
    device_name: str, capabilities: list[Capability],
) -> Device:  # fmt: skip
    """Make an account of nobody's (open registration) a device of the user, who proved its
    password by logging in with it in the browser: the access token that login gave is the
    proof, and is ended here. The capabilities chosen are recorded as consent."""
    try:
        account = account_for_token(session=session, clock=clock, token=token)
    except FmdError:
        raise ValidationFailed({"fmd_id": LINK_FAILED}) from None
    opened = session.scalar(select(FmdSession.created_at)
                            .where(FmdSession.token_hash == hash_token(token)))  # fmt: skip
    if opened < clock.now() - LINK_PROOF_WINDOW:
        # Not a login just made in the browser (a phone's own week-long token, say).
        raise ValidationFailed({"fmd_id": LINK_FAILED})
    # Under the row's lock: two users linking the same phone at once cannot both have it.
    session.refresh(account, with_for_update=True)
    if account.device_id is not None:
        raise ValidationFailed({"fmd_id": N_(
            "This FMD account is already a device of a Smart Protect account.")})  # fmt: skip
    device, _credential = devices.add_device(
        session=session, keyring=keyring, clock=clock, user=user, name=device_name,
        platform=PLATFORM, agent_version=f"fmd-v{account.protocol_version}",
        capabilities=[c.value for c in capabilities], channel=Channel.WEB,
    )  # fmt: skip
    account.device_id = device.id
    close_session(session=session, token=token)
    session.flush()
    audit.record_event(
        session=session, clock=clock, action=Tag.FMD_LINKED,
        actor=audit.user_actor(secret=keyring.secret, user_id=user.id), secret=keyring.secret,
        subject_id=user.id, details={"device": str(device.id)},
    )  # fmt: skip
    return device


# The permission each FMD command needs, as our own commands do: its first word.
KEYWORD_CAPABILITY = {
    "locate": Capability.LOCATE,
    "camera": Capability.LOCATE,
    "ring": Capability.RING,
    "lock": Capability.LOCK,
    "delete": Capability.WIPE,
}


def account_of(*, session: Session, device: Device) -> FmdAccount:
    """The FMD account of one of the user's devices."""
    account = session.scalar(select(FmdAccount).where(FmdAccount.device_id == device.id))
    if account is None:
        raise NotFound(N_("No such device."))
    return account


def send_from_dashboard(
    *,
    session: Session,
    keyring: Keyring,
    clock: Clock,
    user: User,
    device: Device,
    keyword: str,
    signed: Command | None = None,
    encrypted: ItemV2 | None = None,
    password: str | None = None,
    confirm_name: str | None = None,
) -> None:
    """Queue a command the owner's browser signed (v1) or encrypted (v2) for an FMD phone,
    under the device's permissions and, for a wipe, its safety check; the phone is woken.

    For v1 the server reads the command and checks it is the keyword's. A v2 command is
    encrypted: the checks apply to the keyword the owner's page states, which the server
    cannot verify (the FMD password alone lets a client send any command through the
    protocol, as with any FMD server)."""
    account = account_of(session=session, device=device)
    capability = KEYWORD_CAPABILITY.get(keyword)
    if capability is None:
        raise ValidationFailed({"keyword": N_("This value is not valid.")})
    if device.revoked_at is not None:
        raise Conflict(N_("This device has been wiped or removed; it takes no more commands."))
    if not devices.may(session=session, device=device, capability=capability):
        raise PermissionDenied(N_("You have not permitted this on the device."))
    if capability is Capability.WIPE:
        commands.confirm_wipe(session=session, keyring=keyring, user=user, device=device,
                              password=password, confirm_name=confirm_name,
                              clock=clock)  # fmt: skip
    if account.protocol_version == PROTOCOL_V2:
        if encrypted is None:
            raise ValidationFailed({"item": N_("This value is not valid.")})
        add_items_v2(session=session, clock=clock, account=account, kind=ItemKind.COMMAND,
                     items=[encrypted])  # fmt: skip
    else:
        if signed is None or signed.data.split(" ", 1)[0] != keyword or not signed.signature:
            raise ValidationFailed({"command": N_("This value is not valid.")})
        set_command(account=account, command=signed)
        push.wake_after_commit(session, account.push_url)
    audit.record_event(
        session=session, clock=clock, action=Tag.FMD_COMMAND_RECEIVED,
        actor=audit.user_actor(secret=keyring.secret, user_id=user.id), secret=keyring.secret,
        subject_id=user.id, details={"device": str(device.id), "command": keyword},
    )  # fmt: skip


# -- the phone's busiest calls, many to a transaction (fmd.group_commit) ----------------------

# A phone's "last seen" is kept to the minute: a poll every few seconds need not write it.
LAST_SEEN_PRECISION = timedelta(minutes=1)
# Batched uploads trim a phone's locations to the newest `KEPT` once it has this many more:
# trimming at every upload cost more than the upload (a year's retention still applies).
PRUNE_SLACK = 50


@dataclass(frozen=True)
class PhoneCall:
    """A location upload (`blob` set) or a command poll (`blob` None), with the hash of the
    access token it came with."""

    token_hash: str
    blob: str | None = None


def stored_location(blob: str) -> str:
    """A v1 location as FMD clients read it back: a JSON object whose Data is the blob."""
    return json.dumps({"IDT": "", "Data": blob}, indent=1)


_sessions = FmdSession.__table__.c
_accounts = FmdAccount.__table__.c
_devices = Device.__table__.c
_SIGNED_IN = (
    select(_sessions.token_hash, _sessions.expires_at, _accounts.id, _accounts.device_id,
           _accounts.command, _devices.last_seen_at, _devices.user_id, _devices.capabilities)
    .join(FmdAccount.__table__, _accounts.id == _sessions.account_id)
    .outerjoin(Device.__table__, _devices.id == _accounts.device_id)
    .where(_sessions.token_hash.in_(bindparam("hashes", expanding=True)),
           _devices.revoked_at.is_(None))
)  # fmt: skip
_STORE_LOCATION = BulkWrite(
    insert(FmdItem.__table__), columns=("id", "account_id", "kind", "data", "uploaded_at")
)
_TAKEN = BulkWrite(
    update(FmdAccount.__table__).where(_accounts.id == bindparam("account"))
    .values(command=None, command_time=None, command_signature=None)
)  # fmt: skip
_SEEN = BulkWrite(
    update(Device.__table__).where(_devices.id == bindparam("device"))
    .values(last_seen_at=bindparam("seen", type_=_devices.last_seen_at.type))
)  # fmt: skip
# The slots a batch's polls found full, read again under their rows' locks (in id order, so
# that two batches cannot deadlock): what another batch took meanwhile is not handed out
# twice, and what was queued meanwhile is not emptied unread.
_SLOTS = (
    select(_accounts.id, _accounts.command, _accounts.command_time, _accounts.command_signature)
    .where(_accounts.id.in_(bindparam("accounts", expanding=True)))
    .order_by(_accounts.id)
    .with_for_update()
)
_LOCATION_COUNTS = (
    select(FmdItem.account_id, func.count())
    .where(FmdItem.account_id.in_(bindparam("accounts", expanding=True)),
           FmdItem.kind == ItemKind.LOCATION)
    .group_by(FmdItem.account_id)
)  # fmt: skip


def serve_many(
    *, session: Session, clock: Clock, calls: list[PhoneCall], known: KnownDevices | None = None
) -> list[object]:
    """Answer a batch of phones' uploads and polls in one transaction, with a fixed number of
    queries: per call its outcome (None for a stored upload, the taken `Command` for a
    poll) or the `FmdError` refusing it (which the writer raises to its caller), which
    changes nothing."""
    now = clock.now()
    found = {
        row.token_hash: row
        for row in session.execute(_SIGNED_IN, {"hashes": list({c.token_hash for c in calls})})
    }
    # Uploads are kept only while the owner lets the phone locate (as agents' fixes are);
    # the answer is kept between batches while the access counter stands still. An account
    # of nobody's device keeps them (`may_locate`).
    uploading = {
        row.device_id: row for call in calls
        if call.blob is not None and (row := found.get(call.token_hash)) is not None
        and row.device_id is not None
    }  # fmt: skip
    may_locate: dict[uuid.UUID, bool] = {}
    if uploading:
        generation = devices.access_generation(session=session)
        may_locate = (known or KnownDevices()).at(generation).may_locate
    asks = {
        device_id: consent.Ask(row.user_id, Purpose.DEVICE_LOCATE, devices.scope_of(device_id))
        for device_id, row in uploading.items()
        if device_id not in may_locate and Capability.LOCATE.value in row.capabilities
    }
    allowed = consent.permitted(session=session, asks=asks.values()) if asks else set()
    for device_id in uploading.keys() - may_locate.keys():
        may_locate[device_id] = asks.get(device_id) in allowed
    full = {row.id for row in found.values() if row.command}
    slots = (
        {row.id: row for row in session.execute(_SLOTS, {"accounts": sorted(full)})}
        if any(call.blob is None for call in calls) and full else {}
    )  # fmt: skip
    outcomes: list[object] = []
    stored: list[dict] = []
    taken: dict[uuid.UUID, dict] = {}
    seen: dict[uuid.UUID, dict] = {}
    uploaded: set[uuid.UUID] = set()
    for call in calls:
        row = found.get(call.token_hash)
        if row is None or row.expires_at <= now:
            outcomes.append(FmdError(401, "Access token not valid"))
            continue
        owned = row.device_id is not None
        if owned and (row.last_seen_at is None or row.last_seen_at <= now - LAST_SEEN_PRECISION):
            seen[row.device_id] = {"device": row.device_id, "seen": now}
        if call.blob is not None:
            if not owned or may_locate[row.device_id]:
                stored.append({"id": time_ordered_id(), "account_id": row.id,
                               "kind": ItemKind.LOCATION, "data": stored_location(call.blob),
                               "uploaded_at": now})  # fmt: skip
                uploaded.add(row.id)
            outcomes.append(None)
            continue
        slot = slots.get(row.id)
        if slot is not None and slot.command and row.id not in taken:
            # Read once: a second poll of the same phone in this batch finds the slot empty.
            taken[row.id] = {"account": row.id}
            outcomes.append(Command(slot.command, slot.command_time or 0,
                                    slot.command_signature or ""))  # fmt: skip
        else:
            outcomes.append(Command("", 0, ""))
    _STORE_LOCATION.execute(session, stored)
    _TAKEN.execute(session, [taken[account] for account in sorted(taken)])
    _SEEN.execute(session, [seen[device] for device in sorted(seen)])
    if uploaded:
        counts = session.execute(_LOCATION_COUNTS, {"accounts": list(uploaded)})
        for account_id, count in counts:
            if count > KEPT[ItemKind.LOCATION] + PRUNE_SLACK:
                _prune(session=session, account_id=account_id, kind=ItemKind.LOCATION)
    return outcomes
