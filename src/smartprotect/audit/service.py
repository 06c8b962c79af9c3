"""Recording audit events in a hash chain, verifying the chain and signing its head."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smartprotect.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from smartprotect.clock import Clock
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import MasterKey
from smartprotect.security import keyed_hash

HEAD_ID = 1
VERIFY_BATCH = 1000
SYSTEM = "system"
CLI = "cli"


def pseudonym(*, secret: str, subject_id: uuid.UUID) -> str:
    """The stable pseudonym of a subject in the audit log."""
    return keyed_hash(secret=secret, purpose="audit-subject", value=str(subject_id))


def user_actor(*, secret: str, user_id: uuid.UUID) -> str:
    return "user:" + pseudonym(secret=secret, subject_id=user_id)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def canonical_json(event) -> str:
    """The row's content in one deterministic form: sorted keys, no spaces, UTF-8."""
    body = {
        "seq": event.seq,
        "occurred_at": _timestamp(event.occurred_at),
        "actor": event.actor,
        "action": event.action,
        "subject": event.subject,
        "purpose": event.purpose,
        "details": event.details or {},
        "sealed_details": (
            base64.b64encode(event.sealed_details).decode() if event.sealed_details else None
        ),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, event) -> str:
    return hashlib.sha256((prev_hash + canonical_json(event)).encode("utf-8")).hexdigest()


def record_event(
    *,
    session: Session,
    clock: Clock,
    action: str,
    actor: str,
    secret: str,
    subject_id: uuid.UUID | None = None,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
    personal: dict[str, Any] | None = None,
    master: MasterKey | None = None,
) -> AuditEvent:
    """Append an event to the audit chain; personal details are sealed with the subject's key."""
    # Taking the head row first locks it (PostgreSQL) or the database (SQLite) until commit,
    # so concurrent writers queue up instead of forking the chain.
    seq, prev_hash = session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(last_seq=AuditChainHead.last_seq + 1)
        .returning(AuditChainHead.last_seq, AuditChainHead.head_hash)
    ).one()
    event = AuditEvent(
        seq=seq,
        occurred_at=clock.now(),
        actor=actor,
        action=str(action),
        subject=pseudonym(secret=secret, subject_id=subject_id) if subject_id else None,
        purpose=purpose,
        details=details or {},
        prev_hash=prev_hash,
    )
    if personal:
        if subject_id is None or master is None:
            raise ValueError("personal details need a subject and the master key")
        event.sealed_details = keys.encrypt_field(
            session=session,
            master=master,
            subject_id=subject_id,
            table=AuditEvent.__tablename__,
            column="sealed_details",
            row_id=seq,
            plaintext=json.dumps(personal, sort_keys=True, ensure_ascii=False),
        )
    event.hash = chain_hash(prev_hash, event)
    session.add(event)
    session.execute(
        update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(head_hash=event.hash)
    )
    session.flush()
    return event


def read_personal(
    *, session: Session, master: MasterKey, subject_id: uuid.UUID, event: AuditEvent
) -> dict[str, Any] | None:
    """The sealed details of an event about this subject."""
    if event.sealed_details is None:
        return None
    text = keys.decrypt_field(
        session=session,
        master=master,
        subject_id=subject_id,
        table=AuditEvent.__tablename__,
        column="sealed_details",
        row_id=event.seq,
        ciphertext=event.sealed_details,
    )
    return json.loads(text)


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None


def verify_chain(*, session: Session) -> Verification:
    """Walk the whole chain and report the first row whose hash or link does not match."""
    table = AuditEvent.__table__
    expected_prev = GENESIS_HASH
    checked = 0
    while True:
        # Plain rows, not ORM objects: the walk must not fill the session with the whole log.
        batch = session.execute(
            select(table).where(table.c.seq > checked).order_by(table.c.seq).limit(VERIFY_BATCH)
        ).all()
        for row in batch:
            if row.seq != checked + 1:
                return Verification(False, checked, expected_prev, checked + 1, "row missing")
            if row.prev_hash != expected_prev:
                return Verification(
                    False, checked, expected_prev, row.seq, "link to the previous row broken"
                )
            if chain_hash(row.prev_hash, row) != row.hash:
                return Verification(
                    False, checked, expected_prev, row.seq, "content does not match its hash"
                )
            expected_prev = row.hash
            checked = row.seq
        if len(batch) < VERIFY_BATCH:
            break
    head = session.get(AuditChainHead, HEAD_ID)
    if head is None or head.last_seq != checked or head.head_hash != expected_prev:
        return Verification(
            False, checked, expected_prev, checked + 1, "rows at the end of the chain are missing"
        )
    return Verification(True, checked, expected_prev)


def row_hash(*, session: Session, seq: int) -> str | None:
    return session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))
