"""The consent ledger: append-only, state derived from events, stated as the law asks."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from smartprotect.audit.models import AuditEvent
from smartprotect.db import unit_of_work
from smartprotect.errors import PermissionDenied
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, ConsentAction, ConsentEvent, Purpose
from smartprotect.privacy.consent.purposes import OPERATOR, TERMS
from smartprotect.privacy.keys import service as keys

UA = "Mozilla/5.0 (X11; Linux x86_64) Chromium/156"


@pytest.fixture
def subject(db, clock, keyring) -> uuid.UUID:
    subject_id = uuid.uuid4()
    keys.create_key(session=db, master=keyring.master, subject_id=subject_id, clock=clock)
    db.commit()
    return subject_id


def _change(db, clock, keyring, subject, policy_id, purpose, granted, channel=Channel.WEB):
    return consent.change(
        session=db, keyring=keyring, subject_id=subject, purpose=purpose, granted=granted,
        policy_document_id=policy_id, channel=channel, actor="user:test", clock=clock,
        user_agent=UA, client_ip="203.0.113.7",
    )  # fmt: skip


def test_state_is_derived_from_the_latest_event(db, clock, keyring, subject, published_policy):
    policy_id = published_policy["en"]
    assert not consent.is_permitted(session=db, subject_id=subject, purpose=Purpose.MARKETING_SMS)
    _change(db, clock, keyring, subject, policy_id, Purpose.MARKETING_SMS, True)
    assert consent.is_permitted(session=db, subject_id=subject, purpose=Purpose.MARKETING_SMS)
    # Withdrawing in the same instant still wins: events are ordered by insertion.
    _change(
        db, clock, keyring, subject, policy_id, Purpose.MARKETING_SMS, False, Channel.EMAIL_LINK
    )
    assert not consent.is_permitted(session=db, subject_id=subject, purpose=Purpose.MARKETING_SMS)
    state = consent.current_state(session=db, subject_id=subject)
    assert state[Purpose.MARKETING_SMS] is False and state[Purpose.ANALYTICS_COOKIES] is False


def test_a_change_to_the_same_state_writes_nothing(db, clock, keyring, subject, published_policy):
    policy_id = published_policy["en"]
    assert _change(db, clock, keyring, subject, policy_id, Purpose.ANALYTICS_COOKIES, False) is None
    assert _change(db, clock, keyring, subject, policy_id, Purpose.ANALYTICS_COOKIES, True)
    assert _change(db, clock, keyring, subject, policy_id, Purpose.ANALYTICS_COOKIES, True) is None


def test_required_consents_cannot_be_toggled_off(db, clock, keyring, subject, published_policy):
    with pytest.raises(PermissionDenied):
        _change(
            db, clock, keyring, subject, published_policy["en"],
            Purpose.PROCESSING_AND_STORAGE, False,
        )  # fmt: skip


def test_events_record_everything_the_ledger_promises(
    db, clock, keyring, subject, published_policy
):
    _change(db, clock, keyring, subject, published_policy["en"], Purpose.MARKETING_EMAIL, True)
    clock.advance(timedelta(days=3))
    _change(
        db, clock, keyring, subject, published_policy["en"], Purpose.MARKETING_EMAIL, False,
        Channel.EMAIL_LINK,
    )  # fmt: skip
    event = db.scalar(select(ConsentEvent).order_by(ConsentEvent.id))
    assert event.actor == "user:test" and event.channel is Channel.WEB
    assert event.policy_document_id == published_policy["en"]
    # Personal data only sealed or hashed.
    assert UA.encode() not in event.sealed_user_agent
    assert event.ip_hash and "203.0.113.7" not in event.ip_hash
    history = consent.history(session=db, keyring=keyring, subject_id=subject)
    assert [(h.action, h.channel) for h in history] == [
        (ConsentAction.GRANT, Channel.WEB),
        (ConsentAction.WITHDRAW, Channel.EMAIL_LINK),
    ]
    assert history[0].user_agent == UA
    assert history[1].occurred_at - history[0].occurred_at == timedelta(days=3)
    tags = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.action.like("privacy:consent:%"))
        .order_by(AuditEvent.seq)
    ).all()
    assert tags == ["privacy:consent:grant", "privacy:consent:withdraw"]


def test_the_database_refuses_to_rewrite_the_ledger(
    session_factory, clock, keyring, published_policy
):
    subject_id = uuid.uuid4()
    with unit_of_work(session_factory) as session:
        keys.create_key(session=session, master=keyring.master, subject_id=subject_id, clock=clock)
        _change(
            session, clock, keyring, subject_id, published_policy["en"],
            Purpose.MARKETING_EMAIL, True,
        )  # fmt: skip
    for statement in (
        "UPDATE consent_events SET action = 'withdraw'",
        "DELETE FROM consent_events",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            unit_of_work(session_factory) as session,
        ):
            session.execute(text(statement))
    with session_factory() as session:
        assert consent.is_permitted(
            session=session, subject_id=subject_id, purpose=Purpose.MARKETING_EMAIL
        )


def test_published_policy_texts_and_acceptances_are_append_only(
    session_factory, clock, keyring, published_policy
):
    from smartprotect.privacy.policy import service as policy

    with unit_of_work(session_factory) as session:
        policy.record_acceptance(
            session=session, keyring=keyring, subject_id=uuid.uuid4(),
            document=policy.get_document(session=session, document_id=published_policy["en"]),
            channel=Channel.WEB, actor="user:test", clock=clock,
        )  # fmt: skip
    for statement in (
        "UPDATE policy_documents SET text = 'softer terms'",
        "DELETE FROM policy_documents",
        "DELETE FROM policy_acceptances",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            unit_of_work(session_factory) as session,
        ):
            session.execute(text(statement))


@pytest.mark.parametrize("purpose", list(Purpose))
def test_every_consent_states_what_the_law_asks(purpose):
    terms = TERMS[purpose]
    assert OPERATOR and terms.label and terms.statement and terms.term
    assert terms.data or purpose in (Purpose.DEVICE_RING, Purpose.DEVICE_LOCK, Purpose.DEVICE_WIPE)
    assert isinstance(terms.third_parties, bool) and isinstance(terms.abroad, bool)
    assert terms.clause in {"1.5", "2.2", "3.1", "3.2"}


def test_the_purposes_the_issue_requires_exist():
    assert {p.value for p in Purpose} >= {
        "processing_and_storage", "cross_border_transfer", "marketing_email", "marketing_sms",
        "analytics_cookies",
    }  # fmt: skip
    assert TERMS[Purpose.CROSS_BORDER_TRANSFER].abroad
    assert not TERMS[Purpose.MARKETING_EMAIL].required


def test_many_questions_are_answered_at_once_each_by_its_latest_event(
    db, clock, keyring, subject, published_policy
):
    policy_id = published_policy["en"]
    other = uuid.uuid4()
    for purpose, granted in ((Purpose.MARKETING_SMS, True), (Purpose.MARKETING_EMAIL, True),
                             (Purpose.MARKETING_EMAIL, False)):  # fmt: skip
        _change(db, clock, keyring, subject, policy_id, purpose, granted)
    for scope, action in (("device:a", ConsentAction.GRANT), ("device:b", ConsentAction.GRANT),
                          ("device:b", ConsentAction.WITHDRAW)):  # fmt: skip
        consent.record(
            session=db, keyring=keyring, subject_id=subject, purpose=Purpose.DEVICE_LOCATE,
            action=action, policy_document_id=policy_id, channel=Channel.APP, actor="system",
            clock=clock, scope=scope,
        )  # fmt: skip
    Ask = consent.Ask
    asks = [
        Ask(subject, Purpose.MARKETING_SMS),
        Ask(subject, Purpose.MARKETING_EMAIL),
        Ask(subject, Purpose.DEVICE_LOCATE, "device:a"),
        Ask(subject, Purpose.DEVICE_LOCATE, "device:b"),
        # A device's consent is not the account's, nor another device's, nor another subject's.
        Ask(subject, Purpose.DEVICE_LOCATE),
        Ask(subject, Purpose.DEVICE_LOCATE, "device:c"),
        Ask(other, Purpose.DEVICE_LOCATE, "device:a"),
        Ask(subject, Purpose.MARKETING_SMS, "device:a"),
    ]
    assert consent.permitted(session=db, asks=asks) == {asks[0], asks[2]}
    assert consent.permitted(session=db, asks=[]) == set()
    for ask in asks:
        assert consent.is_permitted(
            session=db, subject_id=ask.subject_id, purpose=ask.purpose, scope=ask.scope
        ) == (ask in (asks[0], asks[2]))
