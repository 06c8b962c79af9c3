"""The consent ledger: recording grants and withdrawals, and answering what is allowed now."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, func, select, true
from sqlalchemy.orm import Session

from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.errors import PermissionDenied, ValidationFailed
from smartprotect.i18n import N_
from smartprotect.privacy.consent.models import Channel, ConsentAction, ConsentEvent, Purpose
from smartprotect.privacy.consent.purposes import OPTIONAL, REQUIRED, TERMS
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring
from smartprotect.security import keyed_hash

USER_AGENT_MAX = 512

PURPOSE_LABELS: dict[Purpose, str] = {purpose: terms.label for purpose, terms in TERMS.items()}
REQUIRED_AT_REGISTRATION = REQUIRED
OPTIONAL_AT_REGISTRATION = OPTIONAL


def ip_hash(*, keyring: Keyring, client_ip: str | None) -> str | None:
    if not client_ip:
        return None
    return keyed_hash(secret=keyring.secret, purpose="consent-ip", value=client_ip)


def record(
    *,
    session: Session,
    keyring: Keyring,
    subject_id: uuid.UUID,
    purpose: Purpose,
    action: ConsentAction,
    policy_document_id: uuid.UUID,
    channel: Channel,
    actor: str,
    clock: Clock,
    user_agent: str | None = None,
    client_ip: str | None = None,
    scope: str | None = None,
) -> ConsentEvent:
    """Append one grant or withdrawal to the ledger, and audit it."""
    uid = uuid.uuid4()
    sealed = None
    if user_agent:
        sealed = keys.encrypt_field(
            session=session,
            master=keyring.master,
            subject_id=subject_id,
            table=ConsentEvent.__tablename__,
            column="sealed_user_agent",
            row_id=uid,
            plaintext=user_agent[:USER_AGENT_MAX],
        )
    event = ConsentEvent(
        uid=uid,
        sealed_user_agent=sealed,
        subject_id=subject_id,
        scope=scope,
        purpose=purpose,
        action=action,
        policy_document_id=policy_document_id,
        channel=channel,
        actor=actor,
        occurred_at=clock.now(),
        ip_hash=ip_hash(keyring=keyring, client_ip=client_ip),
    )
    session.add(event)
    session.flush()
    audit.record_event(
        session=session,
        clock=clock,
        action=Tag.CONSENT_GRANTED if action is ConsentAction.GRANT else Tag.CONSENT_WITHDRAWN,
        actor=actor,
        secret=keyring.secret,
        subject_id=subject_id,
        purpose=purpose.value,
        details={"channel": channel.value, "consent_event": event.id, "scope": scope},
    )
    return event


# Asks for the events of every scope: the account's and each device's.
EVERY_SCOPE = "*"


def _in_scope(scope: str | None):
    if scope == EVERY_SCOPE:
        return true()
    return ConsentEvent.scope.is_(None) if scope is None else ConsentEvent.scope == scope


def _events(*, session: Session, subject_id: uuid.UUID, scope: str | None = None):
    return session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.subject_id == subject_id, _in_scope(scope))
        .order_by(ConsentEvent.id)
    )


def current_state(
    *, session: Session, subject_id: uuid.UUID, scope: str | None = None
) -> dict[Purpose, bool]:
    """Each purpose's state now, derived from the latest event about it (none: not given)."""
    state = dict.fromkeys(Purpose, False)
    for event in _events(session=session, subject_id=subject_id, scope=scope):
        state[event.purpose] = event.action is ConsentAction.GRANT
    return state


def is_permitted(
    *, session: Session, subject_id: uuid.UUID, purpose: Purpose, scope: str | None = None
) -> bool:
    """May we process this subject's data for this purpose now (on this device, if scoped)?"""
    ask = Ask(subject_id, purpose, scope)
    return ask in permitted(session=session, asks=[ask])


class Ask(NamedTuple):
    """One question for `permitted`: this subject, this purpose, this scope (or the account)."""

    subject_id: uuid.UUID
    purpose: Purpose
    scope: str | None = None


def _latest_grants(*, scoped: bool):
    """The granted (subject, purpose, scope) among those asked, each judged by its latest
    event; built once, as every check-in asks it."""
    events = ConsentEvent.__table__.c
    in_scope = (
        events.scope.in_(bindparam("scopes", expanding=True))
        if scoped
        else (events.scope.is_(None))
    )
    latest = (
        select(func.max(events.id))
        .where(
            events.subject_id.in_(bindparam("subjects", expanding=True)),
            events.purpose.in_(bindparam("purposes", expanding=True)),
            in_scope,
        )
        .group_by(events.subject_id, events.purpose, events.scope)
    )
    return select(events.subject_id, events.purpose, events.scope).where(
        events.id.in_(latest), events.action == ConsentAction.GRANT
    )


_SCOPED_GRANTS = _latest_grants(scoped=True)
_ACCOUNT_GRANTS = _latest_grants(scoped=False)


def permitted(*, session: Session, asks: Iterable[Ask]) -> set[Ask]:
    """Which of these are permitted now, each by the latest event about it, in one query
    (two if some are scoped to a device and some are not)."""
    asks = set(asks)
    granted: set[Ask] = set()
    for statement, chosen in (
        (_SCOPED_GRANTS, [ask for ask in asks if ask.scope is not None]),
        (_ACCOUNT_GRANTS, [ask for ask in asks if ask.scope is None]),
    ):
        if not chosen:
            continue
        params = {
            "subjects": list({ask.subject_id for ask in chosen}),
            "purposes": list({ask.purpose for ask in chosen}),
        }
        if statement is _SCOPED_GRANTS:
            params["scopes"] = list({ask.scope for ask in chosen})
        granted.update(Ask(*row) for row in session.execute(statement, params))
    return asks & granted


@dataclass(frozen=True)
class HistoryEntry:
    purpose: Purpose
    action: ConsentAction
    channel: Channel
    occurred_at: datetime
    policy_document_id: uuid.UUID
    user_agent: str | None
    scope: str | None = None  # None: the account; "device:<id>": one device


def history(
    *, session: Session, keyring: Keyring, subject_id: uuid.UUID, scope: str | None = None
) -> list[HistoryEntry]:
    """Every consent event of a subject (in `scope`: the account's by default, or
    EVERY_SCOPE), oldest first, with sealed fields opened."""
    entries = []
    for event in _events(session=session, subject_id=subject_id, scope=scope):
        user_agent = None
        if event.sealed_user_agent is not None:
            user_agent = keys.decrypt_field(
                session=session,
                master=keyring.master,
                subject_id=subject_id,
                table=ConsentEvent.__tablename__,
                column="sealed_user_agent",
                row_id=event.uid,
                ciphertext=event.sealed_user_agent,
            )
        entries.append(
            HistoryEntry(
                purpose=event.purpose,
                action=event.action,
                channel=event.channel,
                occurred_at=event.occurred_at,
                policy_document_id=event.policy_document_id,
                user_agent=user_agent,
                scope=event.scope,
            )
        )
    return entries


def change(
    *,
    session: Session,
    keyring: Keyring,
    subject_id: uuid.UUID,
    purpose: Purpose,
    granted: bool,
    policy_document_id: uuid.UUID,
    channel: Channel,
    actor: str,
    clock: Clock,
    user_agent: str | None = None,
    client_ip: str | None = None,
) -> ConsentEvent | None:
    """Grant or withdraw an optional consent; a no-op when it is already in that state."""
    if purpose in REQUIRED:
        raise PermissionDenied(
            N_("This consent is the condition of the service. To withdraw it, close your account.")
        )
    if purpose not in OPTIONAL:
        raise ValidationFailed({"purpose": N_("This value is not valid.")})
    if is_permitted(session=session, subject_id=subject_id, purpose=purpose) == granted:
        return None
    return record(
        session=session,
        keyring=keyring,
        subject_id=subject_id,
        purpose=purpose,
        action=ConsentAction.GRANT if granted else ConsentAction.WITHDRAW,
        policy_document_id=policy_document_id,
        channel=channel,
        actor=actor,
        clock=clock,
        user_agent=user_agent,
        client_ip=client_ip,
    )
