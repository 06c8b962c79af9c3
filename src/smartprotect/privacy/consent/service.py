"""Recording consent events and answering what a user has consented to now."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartprotect.clock import Clock
from smartprotect.i18n import N_
from smartprotect.privacy.consent.models import Channel, ConsentAction, ConsentEvent, Purpose

USER_AGENT_MAX = 255

PURPOSE_LABELS: dict[Purpose, str] = {
    Purpose.PROCESSING_AND_STORAGE: N_("Processing and storage of personal data (clause 3.1)"),
    Purpose.CROSS_BORDER_TRANSFER: N_("Transfer to third parties, also abroad (clause 3.1)"),
    Purpose.MARKETING_EMAIL: N_("News and offers by email (clause 3.2)"),
    Purpose.MARKETING_SMS: N_("News and offers by SMS (clause 3.2)"),
}

# Clause 3.1 is one consent covering both processing/storage and cross-border transfer.
REQUIRED_AT_REGISTRATION: tuple[Purpose, ...] = (
    Purpose.PROCESSING_AND_STORAGE,
    Purpose.CROSS_BORDER_TRANSFER,
)
OPTIONAL_AT_REGISTRATION: tuple[Purpose, ...] = (Purpose.MARKETING_EMAIL, Purpose.MARKETING_SMS)


def record(
    *,
    session: Session,
    user_id: uuid.UUID,
    purpose: Purpose,
    action: ConsentAction,
    policy_document_id: uuid.UUID,
    channel: Channel,
    clock: Clock,
    user_agent: str | None = None,
) -> ConsentEvent:
    """Append one grant or withdrawal."""
    event = ConsentEvent(
        user_id=user_id,
        purpose=purpose,
        action=action,
        policy_document_id=policy_document_id,
        channel=channel,
        occurred_at=clock.now(),
        user_agent=(user_agent or None) and user_agent[:USER_AGENT_MAX],
    )
    session.add(event)
    session.flush()
    return event


def current_state(*, session: Session, user_id: uuid.UUID) -> dict[Purpose, bool]:
    """Each purpose's state, derived from the latest event about it."""
    state = dict.fromkeys(Purpose, False)
    events = session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.user_id == user_id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
    )
    for event in events:
        state[event.purpose] = event.action is ConsentAction.GRANT
    return state


def is_permitted(*, session: Session, user_id: uuid.UUID, purpose: Purpose) -> bool:
    """May we process this user's data for this purpose now?"""
    return current_state(session=session, user_id=user_id)[purpose]
