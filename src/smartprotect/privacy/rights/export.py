"""Access (clause 5.4): everything the service holds about a user, as one document.

The document is built lazily: the long parts (a device's location history, the audit
events) are generators, so it can be streamed out as JSON or as HTML while it is read,
without holding a year of locations in memory. Its shape is `schema.EXPORT_SCHEMA`,
published at /privacy/export-schema.json.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartprotect.accounts.models import ApiToken, EmailToken, User, WebSession
from smartprotect.audit import service as audit
from smartprotect.audit.models import AuditEvent
from smartprotect.commands import service as commands
from smartprotect.commands.models import Command
from smartprotect.devices import service as devices
from smartprotect.devices.models import Device, DeviceLocation, EnrollmentCode
from smartprotect.fmd.models import FmdAccount, FmdItem
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.policy.models import PolicyAcceptance, PolicyDecline, PolicyDocument
from smartprotect.privacy.retention.rules import RETENTION
from smartprotect.profile import service as profile

EXPORT_FORMAT = "smartprotect-export/1"
# Rows fetched from the database at a time while streaming.
STREAM_BATCH = 1000


def document(*, session: Session, keyring: Keyring, user: User, now: datetime) -> dict[str, Any]:
    """Everything held about `user`; long lists are generators read from `session`."""
    data = profile.profile_of(session=session, keyring=keyring, user=user)
    return {
        "format": EXPORT_FORMAT,
        "generated_at": now,
        "retention": {"days": RETENTION.days,
                      "rule": "clause 2.4: kept 1 year from when each item was provided"},
        "subject_id": user.id,
        "account": {
            "email": user.email, "email_verified_at": user.email_verified_at,
            "email_provided_at": user.email_provided_at, "pending_email": user.pending_email,
            "phone": user.phone, "phone_provided_at": user.phone_provided_at,
            "phone_verified_at": user.phone_verified_at, "language": user.language,
            "created_at": user.created_at, "password_changed_at": user.password_changed_at,
        },
        "profile": {
            "last_name": user.last_name, "first_name": user.first_name,
            "patronymic": user.patronymic, "names_provided_at": user.names_provided_at,
            "passport": _passport(session, keyring, user),
            "other_information": data.other_information,
            "other_information_provided_at": data.other_provided_at,
        },
        "consents": {
            "current": {p.value: given for p, given in
                        consent.current_state(session=session, subject_id=user.id).items()},
            "history": [
                {"purpose": e.purpose, "scope": e.scope, "action": e.action,
                 "channel": e.channel, "occurred_at": e.occurred_at,
                 "policy_document_id": e.policy_document_id, "user_agent": e.user_agent}
                for e in consent.history(session=session, keyring=keyring, subject_id=user.id,
                                         scope=consent.EVERY_SCOPE)
            ],
        },
        "policy_answers": _policy_answers(session, user),
        "devices": [_device(session, keyring, device) for device in
                    devices.devices_of(session=session, user=user)],
        "audit_events": _audit_events(session, keyring, user),
        "technical": _technical(session, user),
    }  # fmt: skip


def _passport(session: Session, keyring: Keyring, user: User) -> dict[str, Any] | None:
    opened = profile.open_passport(session=session, keyring=keyring, user=user)
    if opened is None:
        return None
    return {"number": opened.number, "authority": opened.authority,
            "issued_on": opened.issued_on, "provided_at": opened.provided_at}  # fmt: skip


def _policy_answers(session: Session, user: User) -> list[dict[str, Any]]:
    answers = []
    kinds = ((PolicyAcceptance, PolicyAcceptance.accepted_at, "accepted"),
             (PolicyDecline, PolicyDecline.declined_at, "declined"))  # fmt: skip
    for model, moment, answer in kinds:
        rows = session.execute(
            select(model, PolicyDocument)
            .join(PolicyDocument, PolicyDocument.id == model.document_id)
            .where(model.subject_id == user.id)
            .order_by(moment)
        )
        for row, document_ in rows:
            answers.append({"answer": answer, "version": document_.version,
                            "language": document_.language, "channel": row.channel,
                            "at": getattr(row, f"{answer}_at")})  # fmt: skip
    return sorted(answers, key=lambda a: a["at"])


def _device(session: Session, keyring: Keyring, device: Device) -> dict[str, Any]:
    return {
        "id": device.id, "name": device.name, "platform": device.platform,
        "agent_version": device.agent_version, "capabilities": device.capabilities,
        "enrolled_at": device.enrolled_at, "last_seen_at": device.last_seen_at,
        "battery_percent": device.battery_percent, "lost": device.lost,
        "lost_since": device.lost_since, "revoked_at": device.revoked_at,
        "accounts": devices.accounts_of(session=session, keyring=keyring, device=device),
        "commands": [_command(session, keyring, device, c) for c in session.scalars(
            select(Command).where(Command.device_id == device.id).order_by(Command.issued_at))],
        "locations": _locations(session, keyring, device),
        "fmd": _fmd(session, device),
    }  # fmt: skip


FMD_DECRYPTION = (
    "Encrypted by the FMD app on the phone: each item is base64 of a 384-byte RSA-OAEP "
    "(SHA-256) encryption of an AES-256 key, a 12-byte IV and the AES-GCM ciphertext. The RSA "
    "private key is `private_key`: base64 of a 16-byte salt, a 12-byte IV and the AES-GCM "
    "encryption of the key (PKCS#8 PEM) under Argon2id('context:asymmetricKeyWrap' + FMD "
    "password, salt; t=1, p=4, m=128 MiB, 32 bytes). Smart Protect does not have the password."
)


FMD_V2_DECRYPTION = (
    "Encrypted by an FMD protocol v2 client (FMD Server Protocol v2). With U the username and "
    "h(U) its SHA-256: K_pwk = Argon2id('fmd_v2_password' + h(U) + password, `salt` (base64); "
    "t=1, p=4, m=128 MiB, 32 bytes); K_pmk = HKDF-SHA256(K_pwk, no salt, info "
    "'fmd_v2_premaster' + h(U)); the master key is the AES-256-GCM decryption of "
    "`encrypted_master_key` (base64 of IV 12 bytes + ciphertext) under K_pmk with associated "
    "data 'fmd_v2_master' + h(U). Each kind has a key HKDF-SHA256(master, info 'fmd_v2_kek_' + "
    "kind + h(U)). An item's ciphertext (base64) is IV + encrypted 32-byte item key + IV + "
    "encrypted data, AES-256-GCM, with associated data 'fmd_v2_dek_' (resp. 'fmd_v2_data_') + "
    "kind + h(U) + the 16-byte client_item_id + unix_millis (8 bytes, big-endian). Smart "
    "Protect does not have the password."
)


def _fmd(session: Session, device: Device) -> dict[str, Any] | None:
    """What the FMD protocol stored for a phone with an FMD client, as stored: ciphertext."""
    account = session.scalar(select(FmdAccount).where(FmdAccount.device_id == device.id))
    if account is None:
        return None
    items = session.execute(
        select(FmdItem.kind, FmdItem.uploaded_at, FmdItem.data, FmdItem.client_item_id,
               FmdItem.unix_millis)
        .where(FmdItem.account_id == account.id)
        .order_by(FmdItem.uploaded_at, FmdItem.id)
        .execution_options(yield_per=STREAM_BATCH)
    )  # fmt: skip
    v2 = account.protocol_version == 2
    return {
        "username": account.username, "protocol_version": account.protocol_version,
        "public_key": account.public_key, "private_key": account.private_key,
        "salt": account.salt, "encrypted_master_key": account.master_key,
        "how_to_decrypt": FMD_V2_DECRYPTION if v2 else FMD_DECRYPTION,
        "items": ({"kind": kind, "uploaded_at": at, "ciphertext": data,
                   "client_item_id": item_id, "unix_millis": millis}
                  for kind, at, data, item_id, millis in items),
    }  # fmt: skip


def _command(session: Session, keyring: Keyring, device: Device, command: Command) -> dict:
    return {
        "id": command.id, "kind": command.kind, "state": command.state,
        "parameters": commands.params_of(session=session, keyring=keyring, device=device,
                                         command=command),
        "issued_at": command.issued_at, "issued_by": command.issued_by,
        "expires_at": command.expires_at, "delivered_at": command.delivered_at,
        "started_at": command.started_at, "finished_at": command.finished_at,
        "result": command.result,
    }  # fmt: skip


def _locations(session: Session, keyring: Keyring, device: Device) -> Iterator[dict[str, Any]]:
    rows = session.execute(
        select(DeviceLocation.id, DeviceLocation.fixed_at, DeviceLocation.received_at,
               DeviceLocation.sealed)
        .where(DeviceLocation.device_id == device.id)
        .order_by(DeviceLocation.fixed_at)
        .execution_options(yield_per=STREAM_BATCH)
    )  # fmt: skip
    for row_id, fixed_at, received_at, sealed in rows:
        point = json.loads(keys.decrypt_field(
            session=session, master=keyring.master, subject_id=device.user_id,
            table=DeviceLocation.__tablename__, column="sealed", row_id=row_id, ciphertext=sealed,
        ))  # fmt: skip
        yield {**point, "fixed_at": fixed_at, "received_at": received_at}


def _audit_events(session: Session, keyring: Keyring, user: User) -> Iterator[dict[str, Any]]:
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.subject == audit.pseudonym(secret=keyring.secret, subject_id=user.id))
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for event in events:
        yield {
            "seq": event.seq, "occurred_at": event.occurred_at, "action": event.action,
            "actor": event.actor, "purpose": event.purpose, "details": event.details,
            "personal_details": audit.read_personal(session=session, master=keyring.master,
                                                    subject_id=user.id, event=event),
        }  # fmt: skip


def _technical(session: Session, user: User) -> dict[str, Any]:
    """Technical information (clause 2.2): how and when the user used the Site. Secrets
    (password, session and token hashes) are not the user's information and stay out."""

    def rows(model, *columns, order):
        query = select(*columns).where(model.user_id == user.id).order_by(order)
        return [dict(row._mapping) for row in session.execute(query)]

    return {
        "sign_in_sessions": rows(WebSession, WebSession.created_at, WebSession.last_seen_at,
                                 WebSession.expires_at, order=WebSession.created_at),
        "api_tokens": rows(ApiToken, ApiToken.name, ApiToken.prefix, ApiToken.created_at,
                           ApiToken.last_used_at, ApiToken.revoked_at, order=ApiToken.created_at),
        "email_links": rows(EmailToken, EmailToken.purpose,
                            EmailToken.created_at, EmailToken.expires_at, EmailToken.used_at,
                            order=EmailToken.created_at),
        "enrollment_codes": rows(EnrollmentCode, EnrollmentCode.device_name,
                                 EnrollmentCode.capabilities, EnrollmentCode.created_at,
                                 EnrollmentCode.expires_at, order=EnrollmentCode.created_at),
        "cookies": ["session (signed-in state)", "CSRF protection", "language choice"],
        "analytics": "none collected",
    }  # fmt: skip


# -- streaming JSON ------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def stream_json(value: Any, *, chunk_size: int = 64 * 1024) -> Iterator[str]:
    """`value` as JSON text, in chunks of about `chunk_size`, reading generators as it goes."""
    buffer: list[str] = []
    size = 0
    for piece in _encode(value):
        buffer.append(piece)
        size += len(piece)
        if size >= chunk_size:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def _encode(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("," if index else "") + json.dumps(str(key), ensure_ascii=False) + ":"
            yield from _encode(item)
        yield "}"
    elif isinstance(value, list | tuple) or (
        isinstance(value, Iterable) and not isinstance(value, str | bytes | dict)
    ):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ","
            yield from _encode(item)
        yield "]"
    else:
        yield json.dumps(_scalar(value), ensure_ascii=False)
