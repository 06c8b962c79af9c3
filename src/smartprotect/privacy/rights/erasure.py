"""Erasure (clause 7.1): deleting a whole account, leaving nothing readable behind.

The subject's data key is destroyed first, so whatever was sealed with it (here, in a copy
of the database or a backup) can no longer be opened; then every row about them is
deleted. What the law obliges us to keep (a legal hold in force) is first copied, for the
held categories only, into a record sealed with the hold's own key and naming the subject
by id alone; the user is told what was kept, until when, and why. On SQLite, deleted
content is overwritten (`secure_delete`) and the write-ahead log is emptied once the
erasure has committed (`db.scrub_after_commit`), so no copy survives in the database files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from smartprotect.accounts.models import LoginAttempt, User
from smartprotect.accounts.service import confirm_password, throttle_account_key, user_actor
from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.db import request_scrub
from smartprotect.mail.models import OutboxMessage
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.retention.models import HeldRecord, LegalHold
from smartprotect.privacy.retention.rules import Category
from smartprotect.privacy.rights.export import document, stream_json


@dataclass(frozen=True)
class Kept:
    """Data kept past erasure: which categories, until when, on what ground."""

    categories: list[str]
    until: datetime
    reason: str


@dataclass
class ErasureReport:
    erased_at: datetime
    kept: list[Kept] = field(default_factory=list)


def close_account(
    *, session: Session, keyring: Keyring, user: User, password: str, clock: Clock
) -> ErasureReport:
    """Erase an account at its owner's request, confirmed by their password."""
    confirm_password(session=session, keyring=keyring, user=user, password=password, clock=clock)
    return erase_account(session=session, keyring=keyring, user=user, clock=clock)


def erase_account(*, session: Session, keyring: Keyring, user: User, clock: Clock) -> ErasureReport:
    """Delete the account and all of its data; keep only what a legal hold in force holds."""
    now = clock.now()
    report = ErasureReport(erased_at=now)
    holds = list(session.scalars(select(LegalHold).where(
        LegalHold.subject_id == user.id, LegalHold.released_at.is_(None), LegalHold.ends_at > now,
    )))  # fmt: skip
    if holds:
        # Read once, while the subject's key still opens their data.
        everything = json.loads("".join(stream_json(
            document(session=session, keyring=keyring, user=user, now=now))))  # fmt: skip
        for hold in holds:
            _keep(session, keyring, clock, hold, everything)
            report.kept.append(Kept(categories=hold.categories, until=hold.ends_at,
                                    reason=hold.reason))  # fmt: skip
    actor = user_actor(keyring=keyring, user=user)
    audit.record_event(
        session=session, clock=clock, action=Tag.ACCOUNT_CLOSED, actor=actor,
        secret=keyring.secret, subject_id=user.id,
        details={"kept_for_holds": [str(hold.id) for hold in holds]},
    )  # fmt: skip
    # Opened while the key still opens it: failed sign-ins are keyed on the address.
    throttle_key = throttle_account_key(secret=keyring.secret, email=user.email)
    keys.destroy_key(session=session, subject_id=user.id, clock=clock)
    audit.record_event(session=session, clock=clock, action=Tag.KEY_DESTROYED, actor=actor,
                       secret=keyring.secret, subject_id=user.id)  # fmt: skip
    # The account's mail goes with it (to any address it had); mail queued to its current
    # address before mail was filed by account, too. Not by a pending address: that one is
    # unconfirmed, and may be anyone's.
    session.execute(
        delete(OutboxMessage).where(
            or_(OutboxMessage.user_id == user.id,
                OutboxMessage.recipient_index == user.email_index)),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    session.execute(
        delete(LoginAttempt).where(LoginAttempt.account_key == throttle_key),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    # Sessions, tokens, profile items, devices with their locations and commands go with it.
    session.delete(user)
    session.flush()
    request_scrub(session)
    return report


# What of the export each category keeps: minimal, and nothing that names the person unless
# the held category is itself such an identifier.
_HELD_PARTS: dict[Category, Any] = {
    Category.NAMES: lambda d: {k: d["profile"][k] for k in
                               ("last_name", "first_name", "patronymic", "names_provided_at")},
    Category.PASSPORT: lambda d: {"passport": d["profile"]["passport"]},
    Category.EMAIL: lambda d: {"email": d["account"]["email"],
                               "email_provided_at": d["account"]["email_provided_at"]},
    Category.PHONE: lambda d: {"phone": d["account"]["phone"],
                               "phone_provided_at": d["account"]["phone_provided_at"]},
    Category.DEVICE_ACCOUNTS: lambda d: {"devices": [{"id": x["id"], "accounts": x["accounts"]}
                                                     for x in d["devices"]]},
    Category.GEOLOCATION: lambda d: {"locations": [{"device_id": x["id"], "points": x["locations"]}
                                                   for x in d["devices"]]},
    Category.OTHER: lambda d: {"other_information": d["profile"]["other_information"],
                               "commands": [{"device_id": x["id"], "commands": x["commands"]}
                                            for x in d["devices"]]},
    Category.TECHNICAL: lambda d: {"technical": d["technical"]},
}  # fmt: skip


def _keep(session: Session, keyring: Keyring, clock: Clock, hold: LegalHold, data: dict) -> None:
    kept: dict[str, Any] = {"subject_id": data["subject_id"], "hold": str(hold.id)}
    for category in hold.categories:
        kept.update(_HELD_PARTS[Category(category)](data))
    # The hold's own key: it outlives the subject's, and is destroyed when the hold ends.
    if not keys.key_exists(session=session, subject_id=hold.id):
        keys.create_key(session=session, master=keyring.master, subject_id=hold.id, clock=clock)
    record = HeldRecord(hold_id=hold.id, subject_id=hold.subject_id, categories=hold.categories,
                        sealed=b"", kept_at=clock.now())  # fmt: skip
    session.add(record)
    session.flush()
    record.sealed = keys.encrypt_field(
        session=session, master=keyring.master, subject_id=hold.id,
        table=HeldRecord.__tablename__, column="sealed", row_id=record.id,
        plaintext=json.dumps(kept, ensure_ascii=False),
    )  # fmt: skip


def open_held_record(*, session: Session, keyring: Keyring, record: HeldRecord) -> dict:
    """What a hold kept, for the authority that asked for it (DPO's tooling)."""
    return json.loads(keys.decrypt_field(
        session=session, master=keyring.master, subject_id=record.hold_id,
        table=HeldRecord.__tablename__, column="sealed", row_id=record.id,
        ciphertext=record.sealed,
    ))  # fmt: skip
