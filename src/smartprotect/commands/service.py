"""Issuing commands to devices, delivering them signed, and following their states."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from smartprotect.accounts import service as accounts
from smartprotect.accounts.models import User
from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.commands import notify
from smartprotect.commands.models import (
    REDELIVER_AFTER,
    TERMINAL,
    TRANSITIONS,
    Command,
    Kind,
    State,
)
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability, Device
from smartprotect.errors import (
    Conflict,
    NotFound,
    PasswordIncorrect,
    PermissionDenied,
    ValidationFailed,
)
from smartprotect.i18n import N_
from smartprotect.mail import render
from smartprotect.mail import service as mail
from smartprotect.mail.links import Links
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring

COMMAND_TTL = timedelta(days=7)
DESTRUCTIVE = frozenset({Kind.WIPE})
DEVICE_ENDED = N_("This device has been wiped or removed; it takes no more commands.")
LOCK_MESSAGE_MAX = 200
KIND_LABELS: dict[Kind, str] = {
    Kind.LOCATE: N_("Locate"),
    Kind.RING: N_("Ring"),
    Kind.LOCK: N_("Lock"),
    Kind.UNLOCK: N_("Unlock"),
    Kind.WIPE: N_("Wipe"),
}
STATE_LABELS: dict[State, str] = {
    State.QUEUED: N_("queued"),
    State.DELIVERED: N_("delivered"),
    State.RUNNING: N_("running"),
    State.SUCCEEDED: N_("succeeded"),
    State.FAILED: N_("failed"),
    State.CANCELLED: N_("cancelled"),
    State.EXPIRED: N_("expired"),
}
KIND_CAPABILITY: dict[Kind, Capability] = {
    Kind.LOCATE: Capability.LOCATE,
    Kind.RING: Capability.RING,
    Kind.LOCK: Capability.LOCK,
    Kind.UNLOCK: Capability.LOCK,
    Kind.WIPE: Capability.WIPE,
}


def signed_payload(command: Command, params: dict[str, Any]) -> dict[str, Any]:
    """The fields a device checks, in the canonical order the signature covers."""
    return {
        "device_id": str(command.device_id),
        "command_id": str(command.id),
        "kind": command.kind.value,
        "params": params,
        "expires_at": command.expires_at.isoformat(),
    }


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(payload: dict[str, Any], key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.sign(canonical(payload))).decode()


def _seal(session, keyring, device: Device, command_id, params) -> bytes | None:
    if not params:
        return None
    return keys.encrypt_field(
        session=session, master=keyring.master, subject_id=device.user_id,
        table=Command.__tablename__, column="sealed_params", row_id=command_id,
        plaintext=json.dumps(params, ensure_ascii=False),
    )  # fmt: skip


def params_of(*, session: Session, keyring: Keyring, device: Device, command: Command) -> dict:
    if command.sealed_params is None:
        return {}
    return json.loads(
        keys.decrypt_field(
            session=session, master=keyring.master, subject_id=device.user_id,
            table=Command.__tablename__, column="sealed_params", row_id=command.id,
            ciphertext=command.sealed_params,
        )
    )  # fmt: skip


def _audit(session, keyring, clock, device: Device, command: Command, tag: Tag, actor: str,
           **details) -> None:  # fmt: skip
    audit.record_event(
        session=session, clock=clock, action=tag, actor=actor, secret=keyring.secret,
        subject_id=device.user_id,
        details={"device": str(device.id), "command": str(command.id),
                 "kind": command.kind.value, "state": command.state.value, **details},
    )  # fmt: skip


def _mail_owner(session: Session, device: Device, template: str, clock: Clock, links: Links,
                **context) -> None:  # fmt: skip
    """The owner hears of every step of a wipe, whoever started it."""
    owner = session.get(User, device.user_id)
    if owner is None:
        return
    subject, body = render.render(
        template, language=owner.language, device=device.name,
        link=links.to(f"/devices/{device.id}", owner.language), **context,
    )  # fmt: skip
    mail.enqueue_for(session=session, user=owner, subject=subject, body_text=body, clock=clock)


def issue(
    *,
    session: Session,
    keyring: Keyring,
    user: User,
    device: Device,
    kind: Kind,
    clock: Clock,
    links: Links,
    message: str | None = None,
    phone: str | None = None,
    password: str | None = None,
    confirm_name: str | None = None,
) -> Command:
    """Queue a command for a device, enforcing its permissions and the wipe's safety checks."""
    if device.user_id != user.id:
        raise PermissionDenied(N_("No such device."))
    if device.revoked_at is not None:
        raise Conflict(DEVICE_ENDED)
    if not devices.may(session=session, device=device, capability=KIND_CAPABILITY[kind]):
        raise PermissionDenied(N_("You have not permitted this on the device."))
    params: dict[str, Any] = {}
    if kind is Kind.LOCK:
        if message and len(message) > LOCK_MESSAGE_MAX:
            raise ValidationFailed({"message": N_("Use at most 200 characters.")})
        params = {"message": (message or "").strip(), "phone": (phone or "").strip()}
    if kind is Kind.WIPE:
        confirm_wipe(session=session, keyring=keyring, user=user, device=device,
                     password=password, confirm_name=confirm_name, clock=clock)  # fmt: skip
    now = clock.now()
    # From here on the device stays as it is read now: a wipe issued at the same moment
    # waits and then finds this one pending, and a wipe completing meanwhile is seen (the
    # device revoked) rather than missed (on SQLite the write lock already orders them).
    _lock_device(session, device)
    if device.revoked_at is not None:
        raise Conflict(DEVICE_ENDED)
    _expire(session=session, keyring=keyring, device=device, clock=clock)
    if kind in DESTRUCTIVE and session.scalar(
        select(Command.id).where(
            Command.device_id == device.id,
            Command.kind.in_(DESTRUCTIVE),
            Command.state.not_in(TERMINAL),
        )
    ):
        raise Conflict(N_("A wipe is already pending for this device."))
    command_id = uuid.uuid4()
    command = Command(
        id=command_id,
        device_id=device.id,
        kind=kind,
        sealed_params=_seal(session, keyring, device, command_id, params),
        state=State.QUEUED,
        issued_at=now,
        expires_at=now + COMMAND_TTL,
        issued_by=audit.user_actor(secret=keyring.secret, user_id=user.id),
    )
    session.add(command)
    session.flush()
    _audit(session, keyring, clock, device, command, Tag.COMMAND_ISSUED, command.issued_by)
    notify.announce(session=session, device_id=device.id)
    if kind is Kind.WIPE:
        _mail_owner(session, device, "wipe_issued", clock, links)
    return command


def confirm_wipe(
    *, session: Session, keyring: Keyring, user: User, device: Device, password: str | None,
    confirm_name: str | None, clock: Clock,
) -> None:  # fmt: skip
    """A wipe's safety check: the owner re-enters their password (throttled) and types the
    device's name."""
    errors: dict[str, str] = {}
    password_wrong = False
    try:
        accounts.confirm_password(session=session, keyring=keyring, user=user,
                                  password=password or "", clock=clock)  # fmt: skip
    except PasswordIncorrect as exc:
        errors.update(exc.errors)
        password_wrong = True
    if (confirm_name or "").strip() != device.name:
        errors["confirm_name"] = N_("Type the device's name exactly as shown.")
    if errors:
        # A wrong password must stay counted by the throttle (PasswordIncorrect is kept).
        raise (PasswordIncorrect if password_wrong else ValidationFailed)(errors)


def _lock_device(session: Session, device: Device) -> None:
    """Read the device again and hold its row until the transaction ends (PostgreSQL;
    SQLite's write lock holds everything), always before its commands' rows, as check-ins'
    follow-ups do. New commands can still refer to it meanwhile (no key change)."""
    session.refresh(device, with_for_update={"key_share": True})


def _expire(*, session: Session, keyring: Keyring, device: Device, clock: Clock) -> None:
    now = clock.now()
    for command in session.scalars(
        select(Command).where(
            Command.device_id == device.id,
            Command.state.in_((State.QUEUED, State.DELIVERED)),
            Command.expires_at <= now,
        )
    ):
        command.state = State.EXPIRED
        command.finished_at = now
        _audit(session, keyring, clock, device, command, Tag.COMMAND_STATE, "server")


def _move(command: Command, to: State, now: datetime) -> None:
    if to not in TRANSITIONS.get(command.state, frozenset()):
        raise Conflict(
            N_("A command cannot go from %(from_)s to %(to)s."),
            from_=command.state.value,
            to=to.value,
        )
    command.state = to
    if to is State.DELIVERED:
        command.delivered_at = now
    elif to is State.RUNNING:
        command.started_at = now
    elif to in TERMINAL:
        command.finished_at = now


def get_command(*, session: Session, device: Device, command_id: uuid.UUID) -> Command:
    """One of the device's commands; another device's command is as good as missing."""
    command = session.get(Command, command_id)
    if command is None or command.device_id != device.id:
        raise NotFound(N_("No such command for this device."))
    return command


def cancel(
    *, session: Session, keyring: Keyring, user: User, command: Command, clock: Clock
) -> Command:
    """Cancel a command the device has not fetched yet."""
    device = session.get(Device, command.device_id)
    if device is None or device.user_id != user.id:
        raise PermissionDenied(N_("No such device."))
    # Read again, locked: a device fetching it right now (`deliver` locks it too) either
    # finished first, and it is no longer queued, or waits until the cancel is committed.
    session.refresh(command, with_for_update=True)
    if command.state is not State.QUEUED:
        raise Conflict(
            N_("The device has already fetched this command; it can no longer be cancelled.")
        )
    _move(command, State.CANCELLED, clock.now())
    _audit(session, keyring, clock, device, command, Tag.COMMAND_CANCELLED,
           audit.user_actor(secret=keyring.secret, user_id=user.id))  # fmt: skip
    return command


def deliver(
    *,
    session: Session,
    keyring: Keyring,
    device: Device,
    key: Ed25519PrivateKey,
    clock: Clock,
    links: Links,
) -> list[dict[str, Any]]:
    """The device's queued commands, marked delivered, each signed for this device only; with
    them, again, those delivered a while ago that it has not reported on."""
    now = clock.now()
    _expire(session=session, keyring=keyring, device=device, clock=clock)
    waiting = session.scalars(
        select(Command)
        .where(Command.device_id == device.id,
               or_(Command.state == State.QUEUED,
                   and_(Command.state == State.DELIVERED,
                        Command.sent_at <= now - REDELIVER_AFTER)))
        .order_by(Command.issued_at)
        .with_for_update()
    ).all()  # fmt: skip
    delivered = []
    for command in waiting:
        again = command.state is State.DELIVERED
        if not again:
            _move(command, State.DELIVERED, now)
        command.sent_at = now
        payload = signed_payload(
            command, params_of(session=session, keyring=keyring, device=device, command=command)
        )
        delivered.append({**payload, "signature": sign(payload, key)})
        _audit(session, keyring, clock, device, command, Tag.COMMAND_DELIVERED, "device",
               **({"again": True} if again else {}))  # fmt: skip
        if command.kind is Kind.WIPE and not again:
            _mail_owner(session, device, "wipe_fetched", clock, links)
    session.flush()
    return delivered


def report(
    *,
    session: Session,
    keyring: Keyring,
    device: Device,
    command_id: uuid.UUID,
    state: State,
    result: dict[str, Any] | None,
    clock: Clock,
    links: Links,
) -> Command:
    """A device reports progress on a command it was given."""
    _lock_device(session, device)  # a wipe's success revokes it
    command = session.get(Command, command_id, with_for_update=True)
    if command is None or command.device_id != device.id:
        raise PermissionDenied(N_("No such command for this device."))
    if command.state is state:
        return command  # a result sent again after a lost answer
    wiped = command.kind is Kind.WIPE and state is State.SUCCEEDED
    # What a wiped device had not fetched yet will never run: those commands are locked now,
    # before the audit log's head (as a delivery locks its commands before auditing them).
    left = session.scalars(
        select(Command)
        .where(Command.device_id == device.id, Command.state == State.QUEUED)
        .order_by(Command.issued_at)
        .with_for_update()
    ).all() if wiped else []  # fmt: skip
    _move(command, state, clock.now())
    command.result = result
    _audit(session, keyring, clock, device, command, Tag.COMMAND_STATE, "device")
    if wiped:
        # A wiped device is terminal: its credential stops working now.
        device.revoked_at = clock.now()
        for other in left:
            _move(other, State.CANCELLED, clock.now())
            _audit(session, keyring, clock, device, other, Tag.COMMAND_CANCELLED, "server")
        summary = result or {}
        _mail_owner(
            session, device, "wipe_completed", clock, links,
            files=summary.get("files_removed", "?"), failures=summary.get("failures", "?"),
        )  # fmt: skip
    session.flush()
    return command


def history(
    *, session: Session, keyring: Keyring, device: Device, clock: Clock, limit: int = 50
) -> list[Command]:
    """The device's commands, newest first; those past their time shown (and recorded) as
    expired, even if the device never came back."""
    _expire(session=session, keyring=keyring, device=device, clock=clock)
    session.flush()
    return list(
        session.scalars(
            select(Command)
            .where(Command.device_id == device.id)
            .order_by(Command.issued_at.desc())
            .limit(limit)
        )
    )
