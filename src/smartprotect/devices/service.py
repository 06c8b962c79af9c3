"""Enrolling devices with the owner's permission, and what they report when they check in."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.dml import Insert

from smartprotect.accounts.models import User
from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.commands import notify
from smartprotect.commands.models import REDELIVER_AFTER, Command
from smartprotect.commands.models import State as CommandState
from smartprotect.db import (
    ArrayStatement,
    BulkWrite,
    DriverRead,
    array_of,
    time_ordered_id,
    unnested,
)
from smartprotect.devices.known import Known, KnownDevices, Learned
from smartprotect.devices.models import (
    AccessGeneration,
    Capability,
    Device,
    DeviceLocation,
    EnrollmentCode,
    TheftIncident,
)
from smartprotect.devices.schemas import CheckIn, EnrollRequest, LocationFix, LocationRead
from smartprotect.errors import NotAuthenticated, NotFound, SmartProtectError, ValidationFailed
from smartprotect.i18n import N_
from smartprotect.mail import render
from smartprotect.mail import service as mail
from smartprotect.mail.links import Links
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, ConsentAction, Purpose
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.policy import service as policy
from smartprotect.security import hash_token, new_token

ENROLLMENT_CODE_TTL = timedelta(minutes=15)
# Unambiguous when read aloud or typed: no 0/O, 1/I/L.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
CODE_GROUP = 4
DEVICE_CREDENTIAL_PREFIX = "spdc_"
# A device's clock may run a little ahead of ours; more than this is a bad fix.
MAX_CLOCK_SKEW = timedelta(minutes=2)
DEVICES_PER_USER = 50

CAPABILITY_PURPOSE: dict[Capability, Purpose] = {
    Capability.LOCATE: Purpose.DEVICE_LOCATE,
    Capability.RING: Purpose.DEVICE_RING,
    Capability.LOCK: Purpose.DEVICE_LOCK,
    Capability.WIPE: Purpose.DEVICE_WIPE,
    Capability.REPORT_ACCOUNTS: Purpose.DEVICE_ACCOUNTS,
}


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


# A text this close to a code's shape is taken for one, mistyped if it is not one.
CODE_LIKE = re.compile(r"^[A-Za-z0-9\s-]+$")
CODE_LENGTH_SLACK = 2


def looks_like_code(text: str) -> bool:
    """Whether a text may be an enrollment code, mistyped or not: letters and digits (any,
    even those codes never hold), grouped by dashes or spaces or not, a character or two
    more or fewer."""
    if not CODE_LIKE.match(text):
        return False
    return abs(len(normalise_code(text)) - CODE_LENGTH) <= CODE_LENGTH_SLACK


def scope_of(device_id: uuid.UUID) -> str:
    return f"device:{device_id}"


def create_enrollment_code(
    *,
    session: Session,
    keyring: Keyring,
    user: User,
    device_name: str,
    capabilities: list[Capability],
    clock: Clock,
) -> tuple[EnrollmentCode, str]:
    """A one-time code, valid for 15 minutes, that enrolls one device with these permissions."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    now = clock.now()
    code = EnrollmentCode(
        user_id=user.id,
        code_hash=hash_token(raw),
        device_name=device_name,
        capabilities=sorted({c.value for c in capabilities}),
        created_at=now,
        expires_at=now + ENROLLMENT_CODE_TTL,
    )
    session.add(code)
    session.flush()
    audit.record_event(
        session=session, clock=clock, action=Tag.DEVICE_ENROLLMENT_CODE_CREATED,
        actor=audit.user_actor(secret=keyring.secret, user_id=user.id), secret=keyring.secret,
        subject_id=user.id, details={"capabilities": code.capabilities},
    )  # fmt: skip
    shown = "-".join(raw[i : i + CODE_GROUP] for i in range(0, CODE_LENGTH, CODE_GROUP))
    return code, shown


def enroll(
    *, session: Session, keyring: Keyring, request: EnrollRequest, clock: Clock
) -> tuple[Device, str]:
    """Exchange a code for a device credential; returns the device and the raw credential."""
    now = clock.now()
    code = session.scalar(
        select(EnrollmentCode)
        .where(EnrollmentCode.code_hash == hash_token(normalise_code(request.code)))
        .with_for_update()
    )
    if code is None or code.used_at is not None or code.expires_at <= now:
        raise NotFound(N_("This enrollment code is unknown, expired or already used."))
    user = session.get(User, code.user_id)
    if user is None:
        raise NotFound(N_("This enrollment code is unknown, expired or already used."))
    code.used_at = now
    allowed = {c.value for c in request.allowed}
    return add_device(
        session=session, keyring=keyring, clock=clock, user=user, name=code.device_name,
        platform=request.platform, agent_version=request.agent_version,
        capabilities=[c for c in code.capabilities if c in allowed], channel=Channel.APP,
    )  # fmt: skip


def add_device(
    *, session: Session, keyring: Keyring, clock: Clock, user: User, name: str, platform: str,
    agent_version: str, capabilities: Collection[str], channel: Channel,
) -> tuple[Device, str]:  # fmt: skip
    """A new device of the user permitting these capabilities, each choice recorded as
    consent (given through `channel`); returns the device and its raw credential."""
    now = clock.now()
    capabilities = sorted(set(capabilities))
    raw = new_token(DEVICE_CREDENTIAL_PREFIX)
    device = Device(
        user_id=user.id,
        name=name,
        platform=platform,
        agent_version=agent_version,
        credential_hash=hash_token(raw),
        capabilities=capabilities,
        enrolled_at=now,
        lost=False,
    )
    session.add(device)
    session.flush()
    revision = policy.in_force(session=session)
    actor = audit.user_actor(secret=keyring.secret, user_id=user.id)
    if revision is not None:
        document = policy.document_of(revision, user.language)
        # Every capability is a choice on this device: granted ones and refused ones alike.
        for capability, purpose in CAPABILITY_PURPOSE.items():
            consent.record(
                session=session, keyring=keyring, subject_id=user.id, purpose=purpose,
                action=(
                    ConsentAction.GRANT if capability.value in capabilities
                    else ConsentAction.WITHDRAW
                ),
                policy_document_id=document.id, channel=channel, actor=actor, clock=clock,
                scope=scope_of(device.id),
            )  # fmt: skip
    audit.record_event(
        session=session, clock=clock, action=Tag.DEVICE_ENROLLED, actor=actor,
        secret=keyring.secret, subject_id=user.id,
        details={"device": str(device.id), "platform": device.platform,
                 "capabilities": capabilities},
    )  # fmt: skip
    return device, raw


def device_for_credential(*, session: Session, raw: str) -> Device | None:
    """The enrolled, unrevoked device a credential belongs to."""
    device = session.scalar(select(Device).where(Device.credential_hash == hash_token(raw)))
    if device is None or device.revoked_at is not None:
        return None
    return device


def may(*, session: Session, device: Device, capability: Capability) -> bool:
    """Whether the device may do this now: recorded on enrollment and still consented (the
    owner can withdraw it)."""
    return device.permits(capability) and consent.is_permitted(
        session=session,
        subject_id=device.user_id,
        purpose=CAPABILITY_PURPOSE[capability],
        scope=scope_of(device.id),
    )


@dataclass(frozen=True)
class Report:
    """One check-in as it arrives: the hash of the credential it came with, and what it says."""

    credential_hash: str
    report: CheckIn


@dataclass
class CheckInOutcome:
    """What became of one check-in: refused with `error`, or stored."""

    error: SmartProtectError | None = None
    device_id: uuid.UUID | None = None
    lost: bool = False
    locations_stored: int = 0
    accounts_stored: bool = False
    # Pending commands, signed (filled by the caller once the check-in is stored).
    commands: list[dict] = field(default_factory=list)
    # Whether the device has queued commands, or is lost and its owner not yet told it is
    # back: those check-ins need the slower, per-device follow-up.
    needs_follow_up: bool = False


REFUSED_CREDENTIAL = N_("The device credential is invalid or revoked.")


def _future_fix(report: CheckIn, now) -> ValidationFailed | None:
    for i, fix in enumerate(report.locations):
        if fix.fixed_at > now + MAX_CLOCK_SKEW:
            return ValidationFailed(
                {f"locations.{i}.fixed_at": N_("This fix is time-stamped in the future.")}
            )
    return None


# The check-in path's statements, built once: every check-in runs them.
_devices = Device.__table__.c
_locations = DeviceLocation.__table__.c
_DEVICES_BY_CREDENTIAL = select(
    _devices.id, _devices.user_id, _devices.credential_hash, _devices.capabilities,
    _devices.lost, _devices.found_notified_at,
).where(
    _devices.credential_hash.in_(bindparam("hashes", expanding=True)),
    _devices.revoked_at.is_(None),
)  # fmt: skip


def _insert_new_fixes(dialect: str) -> Insert:
    """Fixes, but none a device has sent before (it sends them again when the answer that
    they were stored was lost): one per device and time."""
    insert_of = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    return insert_of(DeviceLocation.__table__).on_conflict_do_nothing(
        index_elements=["device_id", "fixed_at"]
    )


_FIX_COLUMNS = ("id", "device_id", "fixed_at", "received_at", "sealed")
_STORE_FIX = BulkWrite(_insert_new_fixes, columns=_FIX_COLUMNS)
# What a device did not report this time stays as it was.
_REPORTED = (("battery_percent", "battery"), ("agent_version", "version"),
             ("sealed_accounts", "accounts"), ("accounts_reported_at", "accounts_at"))  # fmt: skip
_CHANGE_KEYS = ("device", "seen", *(name for _, name in _REPORTED))
_SEEN = BulkWrite(
    update(Device.__table__)
    .where(_devices.id == bindparam("device"))
    .values(
        last_seen_at=bindparam("seen", type_=_devices.last_seen_at.type),
        **{
            column: func.coalesce(bindparam(name, type_=_devices[column].type), _devices[column])
            for column, name in _REPORTED
        },
    ),
)
# Raised by triggers whenever what `devices.known` keeps could change.
_ACCESS_GENERATION = DriverRead(lambda _: select(AccessGeneration.__table__.c.value))
_commands = Command.__table__.c


def _waiting_now() -> ColumnElement[bool]:
    """A command to hand over: queued, or delivered and to be handed over again (no report
    came) or that has run out of time."""
    return or_(
        _commands.state == CommandState.QUEUED,
        and_(_commands.state == CommandState.DELIVERED,
             or_(_commands.expires_at <= bindparam("now", type_=_commands.expires_at.type),
                 _commands.sent_at <= bindparam("resend_before", type_=_commands.sent_at.type))),
    )  # fmt: skip


def _waiting(n: int):
    """Which of n devices have commands waiting (`_waiting_now`)."""
    items = [bindparam(f"item_{i}", type_=_commands.device_id.type) for i in range(n)]
    return select(_commands.device_id).where(_commands.device_id.in_(items), _waiting_now())


_WAITING = DriverRead(_waiting)


def _check_in_over_arrays() -> Select:
    """A batch's writes on PostgreSQL, as one statement over its rows' columns as arrays
    (`ArrayStatement`): its fixes inserted in the order given and its devices updated, then
    which of them have commands waiting. One statement is one transaction: the batch runs
    in autocommit mode (`CheckInWriter`), with no BEGIN and COMMIT round trips.

    The update takes the devices' rows in the order the planner visits them: mostly in id
    order (the batch is sorted), but not always (a bitmap scan visits them as they lie in
    the table). Locking them first in id order cost a third more of the database's time a
    check-in (measured); a deadlock needs another transaction taking two of the same devices
    at once in the other order (two devices each checking in twice at the same moment), and
    the database ends it by failing one of the two: a failed batch is written check-in by
    check-in (`group_commit`)."""
    new_fixes = unnested("new_fixes", **{c: _locations[c].type for c in _FIX_COLUMNS})
    store_fixes = _insert_new_fixes("postgresql").from_select(
        _FIX_COLUMNS, select(*[new_fixes.c[c] for c in _FIX_COLUMNS])
    )
    changes = unnested("changes", device=_devices.id.type, seen=_devices.last_seen_at.type,
                       **{name: _devices[column].type for column, name in _REPORTED})  # fmt: skip
    batch_devices = array_of("device", _devices.id.type)
    seen = (
        update(Device.__table__)
        # The ids matched against the index as well: the rows are found by it, not by
        # reading the whole table to join it with the batch's.
        .where(_devices.id == any_(batch_devices), _devices.id == changes.c.device)
        .values(last_seen_at=changes.c.seen,
                **{column: func.coalesce(changes.c[name], _devices[column])
                   for column, name in _REPORTED})
    )  # fmt: skip
    # A data-modifying WITH runs once whether or not it is read; the SELECT sees the
    # commands as they stood when the statement began.
    return (
        select(_commands.device_id)
        .where(_commands.device_id == any_(batch_devices), _waiting_now())
        .add_cte(store_fixes.cte("stored_fixes"))
        .add_cte(seen.cte("seen_devices"))
    )


_CHECK_IN_OVER_ARRAYS = ArrayStatement(_check_in_over_arrays())


def _write_batch(
    *, session: Session, fixes: list[dict[str, Any]], changes: list[dict[str, Any]], now
) -> set[uuid.UUID]:
    """Store a batch's fixes and its devices' changes; which of the devices have commands
    waiting."""
    resend_before = now - REDELIVER_AFTER
    if session.connection().dialect.name == "postgresql":
        rows = _CHECK_IN_OVER_ARRAYS.execute(
            session, now=now, resend_before=resend_before,
            **{key: [fix[key] for fix in fixes] for key in _FIX_COLUMNS},
            **{key: [change[key] for change in changes] for key in _CHANGE_KEYS},
        )  # fmt: skip
    else:
        _STORE_FIX.execute(session, fixes)
        _SEEN.execute(session, changes)
        rows = _WAITING.all(session, items=[change["device"] for change in changes], now=now,
                            resend_before=resend_before)  # fmt: skip
    return {device_id for (device_id,) in rows}


def check_in_many(
    *,
    session: Session,
    keyring: Keyring,
    reports: Sequence[Report],
    clock: Clock,
    known: KnownDevices | None = None,
) -> list[CheckInOutcome]:
    """Store a batch of check-ins in one transaction, with a fixed number of queries however
    many there are; one outcome per report, in order. A refused report (unknown or revoked
    credential, a fix from the future) changes nothing; nothing a device was not permitted
    to report is kept. With `known`, what earlier batches learned is used while the access
    counter says it still holds (`devices.known`)."""
    now = clock.now()
    learned = (known or KnownDevices()).at(access_generation(session=session))
    unknown = {item.credential_hash for item in reports} - learned.devices.keys()
    if unknown:
        _learn(session=session, keyring=keyring, hashes=unknown, learned=learned)
    outcomes = [CheckInOutcome() for _ in reports]
    accepted: list[tuple[CheckInOutcome, CheckIn, Known]] = []
    for outcome, item in zip(outcomes, reports, strict=True):
        device = learned.devices.get(item.credential_hash)
        outcome.error = (
            NotAuthenticated(REFUSED_CREDENTIAL) if device is None
            else _future_fix(item.report, now)
        )  # fmt: skip
        if outcome.error is None:
            outcome.device_id, outcome.lost = device.id, device.lost
            outcome.needs_follow_up = device.owner_to_be_told
            accepted.append((outcome, item.report, device))
    if not accepted:
        return outcomes

    fixes: list[dict[str, Any]] = []
    seen: dict[uuid.UUID, dict[str, Any]] = {}
    for outcome, report, device in accepted:
        change = seen.get(device.id)
        if change is None:
            change = seen[device.id] = {"device": device.id, "seen": now, "battery": None,
                                        "version": None, "accounts": None,
                                        "accounts_at": None}  # fmt: skip
        if report.battery_percent is not None:
            change["battery"] = report.battery_percent
        if report.agent_version:
            change["version"] = report.agent_version
        if report.locations and device.may_locate:
            cipher = _cipher_of(learned, device)
            fixes.extend(_sealed_fix(cipher, device, fix, now) for fix in report.locations)
            outcome.locations_stored = len(report.locations)
        if report.accounts is not None and device.may_report_accounts:
            change["accounts"] = keys.seal_with(
                _cipher_of(learned, device), table=Device.__tablename__,
                column="sealed_accounts", row_id=device.id,
                plaintext=json.dumps(sorted(set(report.accounts))),
            )  # fmt: skip
            change["accounts_at"] = now
            outcome.accounts_stored = True
    # In (device, time) order, as the unique index holds them: two batches storing the same
    # resent fixes wait for each other in one order, and cannot deadlock. Devices in id
    # order: row by row, two batches touching the same devices take them in one order (on
    # PostgreSQL one statement takes them: `_check_in_over_arrays`).
    fixes.sort(key=_fix_order)
    changes = [seen[device_id] for device_id in sorted(seen, key=_id_order)]
    waiting = _write_batch(session=session, fixes=fixes, changes=changes, now=now)
    _forget_cached(session, seen)
    for outcome, _, _ in accepted:
        outcome.needs_follow_up |= outcome.device_id in waiting
    return outcomes


def _fix_order(row: dict[str, Any]) -> tuple[int, Any]:
    return row["device_id"].int, row["fixed_at"]


# A uuid's order (its number's, as PostgreSQL's bytewise one): comparing UUID objects runs
# Python code for each comparison, their numbers do not.
_id_order = attrgetter("int")


def access_generation(*, session: Session) -> int | None:
    """The access counter's value (`devices.known`), read in this session's transaction."""
    rows = _ACCESS_GENERATION.all(session)
    return rows[0][0] if rows else None


def _learn(*, session: Session, keyring: Keyring, hashes: set[str], learned: Learned) -> None:
    """Look up these credentials' devices, what their owners consent to, and the owners'
    keys: three queries for all of them."""
    rows = list(session.execute(_DEVICES_BY_CREDENTIAL, {"hashes": list(hashes)}))
    if not rows:
        return
    asks = [
        consent.Ask(row.user_id, CAPABILITY_PURPOSE[capability], scope_of(row.id))
        for row in rows
        for capability in (Capability.LOCATE, Capability.REPORT_ACCOUNTS)
        if capability.value in row.capabilities
    ]
    allowed = consent.permitted(session=session, asks=asks)
    owners = {row.user_id for row in rows} - learned.ciphers.keys()
    learned.ciphers.update(
        keys.ciphers_of(session=session, master=keyring.master, subject_ids=owners)
    )
    for row in rows:
        scope = scope_of(row.id)
        learned.devices[row.credential_hash] = Known(
            id=row.id,
            user_id=row.user_id,
            lost=row.lost,
            owner_to_be_told=row.lost and row.found_notified_at is None,
            may_locate=consent.Ask(row.user_id, Purpose.DEVICE_LOCATE, scope) in allowed,
            may_report_accounts=(
                consent.Ask(row.user_id, Purpose.DEVICE_ACCOUNTS, scope) in allowed
            ),
        )


def _cipher_of(learned: Learned, device: Known):
    cipher = learned.ciphers.get(device.user_id)
    if cipher is None:
        raise keys.KeyDestroyed(N_("This person's data has been erased."))
    return cipher


# What a stored fix holds, as JSON. Formatted, not json.dumps'd: this runs for every fix of
# every check-in, and validated coordinates, accuracy and method need no escaping.
_FIX_JSON = (
    '{{"latitude": {fix.latitude!r}, "longitude": {fix.longitude!r}, '
    '"accuracy_m": {fix.accuracy_m!r}, "method": "{method}"}}'
)


def _sealed_fix(cipher, device: Known, fix: LocationFix, now) -> dict:
    row_id = time_ordered_id()
    sealed = keys.seal_with(
        cipher, table=DeviceLocation.__tablename__, column="sealed", row_id=row_id,
        plaintext=_FIX_JSON.format(fix=fix, method=fix.method.value),
    )  # fmt: skip
    return {"id": row_id, "device_id": device.id, "fixed_at": fix.fixed_at, "received_at": now,
            "sealed": sealed}  # fmt: skip


def _forget_cached(session: Session, device_ids) -> None:
    """Bulk updates bypass the objects a session already holds: reload those on next use."""
    if not session.identity_map:
        return
    for device_id in device_ids:
        device = session.identity_map.get(identity_key(Device, device_id))
        if device is not None:
            session.expire(device)


def next_check_in(
    device: Device | CheckInOutcome, *, check_in_seconds: int, lost_check_in_seconds: int
) -> int:
    return lost_check_in_seconds if device.lost else check_in_seconds


def devices_of(*, session: Session, user: User) -> list[Device]:
    return list(
        session.scalars(
            select(Device).where(Device.user_id == user.id).order_by(Device.enrolled_at)
        )
    )


def get_device(*, session: Session, user: User, device_id: uuid.UUID) -> Device:
    """One of the user's devices; another user's device is as good as missing."""
    device = session.get(Device, device_id)
    if device is None or device.user_id != user.id:
        raise NotFound(N_("No such device."))
    return device


def locations(
    *, session: Session, keyring: Keyring, device: Device, limit: int = 500
) -> list[LocationRead]:
    """The device's reported fixes, newest first, opened with the owner's key."""
    rows = session.scalars(
        select(DeviceLocation)
        .where(DeviceLocation.device_id == device.id)
        .order_by(DeviceLocation.fixed_at.desc())
        .limit(limit)
    )
    result = []
    for row in rows:
        payload = json.loads(
            keys.decrypt_field(
                session=session, master=keyring.master, subject_id=device.user_id,
                table=DeviceLocation.__tablename__, column="sealed", row_id=row.id,
                ciphertext=row.sealed,
            )
        )  # fmt: skip
        result.append(LocationRead(**payload, fixed_at=row.fixed_at, received_at=row.received_at))
    return result


def accounts_of(*, session: Session, keyring: Keyring, device: Device) -> list[str] | None:
    if device.sealed_accounts is None:
        return None
    return json.loads(
        keys.decrypt_field(
            session=session, master=keyring.master, subject_id=device.user_id,
            table=Device.__tablename__, column="sealed_accounts", row_id=device.id,
            ciphertext=device.sealed_accounts,
        )
    )  # fmt: skip


def _region(latest: LocationRead | None) -> str:
    if latest is None:
        return "unknown"
    lat, lon = round(latest.latitude), round(latest.longitude)
    return f"{abs(lat)}{'N' if lat >= 0 else 'S'} {abs(lon)}{'E' if lon >= 0 else 'W'}"


def set_lost(
    *, session: Session, keyring: Keyring, user: User, device: Device, lost: bool, clock: Clock
) -> Device:
    """Mark a device lost (it then reports often) or found again."""
    if device.user_id != user.id:
        raise NotFound(N_("No such device."))
    if device.lost == lost:
        return device
    now = clock.now()
    device.lost = lost
    device.lost_since = now if lost else None
    device.found_notified_at = None
    if lost:
        latest = locations(session=session, keyring=keyring, device=device, limit=1)
        session.add(
            TheftIncident(
                reported_on=now.date(),
                region=_region(latest[0] if latest else None),
                platform=device.platform,
            )
        )
    audit.record_event(
        session=session, clock=clock,
        action=Tag.DEVICE_MARKED_LOST if lost else Tag.DEVICE_MARKED_FOUND,
        actor=audit.user_actor(secret=keyring.secret, user_id=user.id), secret=keyring.secret,
        subject_id=user.id, details={"device": str(device.id)},
    )  # fmt: skip
    # A device waiting on the server is woken to check in now: it learns its new reporting
    # interval (and, lost, reports where it is) at once, not at the end of its old one.
    notify.announce(session=session, device_id=device.id)
    session.flush()
    return device


def notify_if_found(*, session: Session, device: Device, clock: Clock, links: Links) -> bool:
    """Mail the owner, once, that their lost device has come back online."""
    if not device.lost or device.found_notified_at is not None:
        return False
    owner = session.get(User, device.user_id)
    if owner is None:
        return False
    subject, body = render.render(
        "device_found", language=owner.language, device=device.name,
        link=links.to(f"/devices/{device.id}", owner.language),
    )  # fmt: skip
    mail.enqueue_for(session=session, user=owner, subject=subject, body_text=body, clock=clock)
    device.found_notified_at = clock.now()
    return True


def set_permission(
    *,
    session: Session,
    keyring: Keyring,
    user: User,
    device: Device,
    capability: Capability,
    granted: bool,
    clock: Clock,
) -> None:
    """Turn one of a device's permissions off or back on (never beyond what it was enrolled
    with: a machine that did not allow wiping cannot be made to)."""
    if device.user_id != user.id:
        raise NotFound(N_("No such device."))
    if granted and not device.permits(capability):
        raise ValidationFailed(
            {"capability": N_("This device was not enrolled with that permission.")}
        )
    revision = policy.in_force(session=session)
    if revision is None:
        return
    scope = scope_of(device.id)
    purpose = CAPABILITY_PURPOSE[capability]
    if (
        consent.is_permitted(session=session, subject_id=user.id, purpose=purpose, scope=scope)
        == granted
    ):
        return
    consent.record(
        session=session, keyring=keyring, subject_id=user.id, purpose=purpose,
        action=ConsentAction.GRANT if granted else ConsentAction.WITHDRAW,
        policy_document_id=policy.document_of(revision, user.language).id, channel=Channel.WEB,
        actor=audit.user_actor(secret=keyring.secret, user_id=user.id), clock=clock, scope=scope,
    )  # fmt: skip
