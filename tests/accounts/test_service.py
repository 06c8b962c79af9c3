"""Accounts: registration with consents, verification, sign-in throttle, resets, API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from smartprotect.accounts import service as accounts
from smartprotect.accounts.models import ApiToken, EmailToken, LoginAttempt, User, WebSession
from smartprotect.accounts.schemas import RegistrationConsents, UserCreate
from smartprotect.accounts.service import create_user
from smartprotect.errors import (
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
    ValidationFailed,
)
from smartprotect.mail.models import OutboxMessage
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, ConsentAction, ConsentEvent, Purpose
from smartprotect.privacy.keys.master import Keyring, LocalMasterKey
from smartprotect.privacy.policy.models import PolicyAcceptance
from tests.conftest import TEST_MASTER_KEY, TEST_SECRET, link_in
from tests.helpers import PASSWORD

LINKS = accounts.Links(base_url="https://testserver")
KEYRING = Keyring(master=LocalMasterKey(TEST_MASTER_KEY), secret=TEST_SECRET)
EMAIL = "aigerim@example.kz"


def _register(db, clock, policy_id, **consent_overrides):
    data = UserCreate(email=EMAIL, phone="+77012345678", password=PASSWORD, language="en")
    consents = RegistrationConsents(
        policy_document_id=policy_id,
        **{"accept_policy": True, "consent_processing": True, **consent_overrides},
    )
    return accounts.register(
        session=db,
        data=data,
        consents=consents,
        channel=Channel.WEB,
        clock=clock,
        links=LINKS,
        keyring=KEYRING,
        user_agent="pytest-browser/1.0",
        client_ip="10.1.2.3",
    )


def _verified_user(db, clock, policy_id) -> User:
    user = _register(db, clock, policy_id)
    user.email_verified_at = clock.now()
    db.flush()
    return user


def test_registration_records_acceptance_and_consents_as_timestamped_events(
    db, clock, published_policy
):
    user = _register(db, clock, published_policy["en"], marketing_email=True)
    db.flush()

    acceptance = db.scalar(select(PolicyAcceptance).where(PolicyAcceptance.subject_id == user.id))
    assert acceptance.document_id == published_policy["en"]
    assert acceptance.accepted_at == clock.now()
    events = db.scalars(select(ConsentEvent).where(ConsentEvent.subject_id == user.id)).all()
    assert {(e.purpose, e.action) for e in events} == {
        (Purpose.PROCESSING_AND_STORAGE, ConsentAction.GRANT),
        (Purpose.CROSS_BORDER_TRANSFER, ConsentAction.GRANT),
        (Purpose.MARKETING_EMAIL, ConsentAction.GRANT),
        # The unticked box is recorded as the choice it was.
        (Purpose.MARKETING_SMS, ConsentAction.WITHDRAW),
    }
    assert all(e.occurred_at == clock.now() and e.channel is Channel.WEB for e in events)
    state = consent.current_state(session=db, subject_id=user.id)
    assert state[Purpose.MARKETING_EMAIL] and not state[Purpose.MARKETING_SMS]


def test_marketing_consent_is_off_unless_given(db, clock, published_policy):
    user = _register(db, clock, published_policy["en"])
    assert not consent.is_permitted(session=db, subject_id=user.id, purpose=Purpose.MARKETING_EMAIL)
    assert consent.is_permitted(
        session=db, subject_id=user.id, purpose=Purpose.PROCESSING_AND_STORAGE
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"accept_policy": False}, "accept_policy"),
        ({"consent_processing": False}, "consent_processing"),
    ],
)
def test_registration_requires_acceptance_and_the_clause_3_1_consent(
    db, clock, published_policy, overrides, field
):
    with pytest.raises(ValidationFailed) as error:
        _register(db, clock, published_policy["en"], **overrides)
    assert field in error.value.errors
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_registration_is_refused_without_a_published_policy(db, clock):
    import uuid

    with pytest.raises(PermissionDenied):
        _register(db, clock, uuid.uuid4())


def test_registration_against_a_superseded_revision_is_refused(
    db, clock, published_policy, session_factory
):
    from smartprotect.privacy.policy import service as policy

    clock.advance(timedelta(days=1))
    policy.publish_revision(
        session=db, keyring=KEYRING, version="2026-11", texts={"en": "New", "ru": "Новая"},
        clock=clock,
    )  # fmt: skip
    with pytest.raises(ValidationFailed) as error:
        _register(db, clock, published_policy["en"])
    assert "policy" in error.value.errors


def test_password_is_stored_as_argon2id(db, clock, published_policy):
    user = _register(db, clock, published_policy["en"])
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_duplicate_registration_mails_the_owner_instead_of_revealing_the_account(
    db, clock, published_policy
):
    _register(db, clock, published_policy["en"])
    assert _register(db, clock, published_policy["en"]) is None
    assert db.scalar(select(func.count()).select_from(User)) == 1
    subjects = [message.subject for message in db.scalars(select(OutboxMessage))]
    assert "You already have a Platinum Protection account" in subjects


def test_verification_link_works_once(db, clock, published_policy, deliver, mailbox):
    user = _register(db, clock, published_policy["en"])
    db.commit()
    deliver()
    raw = link_in(mailbox.last_to(EMAIL), "/verify-email/").rsplit("/", 1)[1]

    accounts.verify_email(session=db, raw_token=raw, clock=clock, keyring=KEYRING)
    assert user.email_verified_at == clock.now()
    with pytest.raises(NotFound):
        accounts.verify_email(session=db, raw_token=raw, clock=clock, keyring=KEYRING)


def test_verification_link_expires(db, clock, published_policy, deliver, mailbox):
    _register(db, clock, published_policy["en"])
    db.commit()
    deliver()
    raw = link_in(mailbox.last_to(EMAIL), "/verify-email/").rsplit("/", 1)[1]
    clock.advance(accounts.VERIFY_EMAIL_TTL + timedelta(seconds=1))
    with pytest.raises(NotFound):
        accounts.verify_email(session=db, raw_token=raw, clock=clock, keyring=KEYRING)


def test_only_the_hash_of_an_email_token_is_stored(db, clock, published_policy, deliver, mailbox):
    _register(db, clock, published_policy["en"])
    db.commit()
    deliver()
    raw = link_in(mailbox.last_to(EMAIL), "/verify-email/").rsplit("/", 1)[1]
    stored = db.scalars(select(EmailToken.token_hash)).all()
    assert raw not in stored and len(stored) == 1


def test_links_are_mailed_at_most_once_per_cool_down(db, clock, published_policy):
    _register(db, clock, published_policy["en"])
    for _ in range(3):
        accounts.resend_verification(session=db, email=EMAIL, clock=clock, links=LINKS)
        accounts.request_password_reset(
            session=db, email=EMAIL, clock=clock, links=LINKS, keyring=KEYRING
        )
        _register(db, clock, published_policy["en"])  # "you already have an account"
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 3
    clock.advance(accounts.EMAIL_COOLDOWN)
    accounts.request_password_reset(
        session=db, email=EMAIL, clock=clock, links=LINKS, keyring=KEYRING
    )
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 4


def _login(db, clock, password=PASSWORD, email=EMAIL, client="10.0.0.1"):
    return accounts.authenticate(
        session=db, email=email, password=password, client=client, keyring=KEYRING, clock=clock
    )


def test_unverified_accounts_cannot_sign_in(db, clock, published_policy):
    _register(db, clock, published_policy["en"])
    with pytest.raises(PermissionDenied):
        _login(db, clock)


def test_sign_in_is_throttled_after_repeated_failures(db, clock, published_policy):
    _verified_user(db, clock, published_policy["en"])
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT_AND_CLIENT):
        with pytest.raises(NotAuthenticated):
            _login(db, clock, password="wrong password!")
    # Even the right password is refused from that client while the throttle holds...
    with pytest.raises(TooManyAttempts) as error:
        _login(db, clock)
    assert error.value.retry_after_seconds == accounts.LOGIN_THROTTLE_WINDOW.total_seconds()
    # ...while the owner, elsewhere, still gets in: a stranger cannot lock them out.
    assert _login(db, clock, client="192.0.2.50").email == EMAIL
    # And the throttled client is let in once the window has passed.
    clock.advance(accounts.LOGIN_THROTTLE_WINDOW + timedelta(seconds=1))
    assert _login(db, clock).email == EMAIL
    assert db.scalar(select(func.count()).select_from(LoginAttempt)) == 0


def test_guessing_one_account_from_many_clients_is_throttled(db, clock, published_policy):
    _verified_user(db, clock, published_policy["en"])
    for number in range(accounts.MAX_FAILURES_PER_ACCOUNT):
        with pytest.raises(NotAuthenticated):
            _login(db, clock, password="wrong password!", client=f"198.51.100.{number}")
    with pytest.raises(TooManyAttempts):
        _login(db, clock, client="203.0.113.9")


def test_one_client_guessing_many_accounts_is_throttled(db, clock, published_policy):
    _verified_user(db, clock, published_policy["en"])
    for number in range(accounts.MAX_FAILURES_PER_CLIENT):
        with pytest.raises(NotAuthenticated):
            _login(db, clock, email=f"victim{number}@example.kz", password="guess guess")
    with pytest.raises(TooManyAttempts):
        _login(db, clock)
    # Another client is not affected.
    assert _login(db, clock, client="10.9.9.9").email == EMAIL


def test_throttle_keeps_no_address_in_clear(db, clock, published_policy):
    with pytest.raises(NotAuthenticated):
        _login(db, clock, password="wrong password!")
    attempt = db.scalar(select(LoginAttempt))
    assert EMAIL not in attempt.account_key and "10.0.0.1" not in attempt.client_key


def test_sessions_expire(db, clock, published_policy):
    user = _verified_user(db, clock, published_policy["en"])
    raw = accounts.start_session(session=db, user=user, clock=clock)
    assert accounts.user_for_session(session=db, raw_token=raw, clock=clock) is user
    clock.advance(accounts.SESSION_MAX_AGE)
    assert accounts.user_for_session(session=db, raw_token=raw, clock=clock) is None


def test_password_reset_changes_the_password_and_ends_every_session(
    db, clock, published_policy, deliver, mailbox
):
    user = _verified_user(db, clock, published_policy["en"])
    accounts.start_session(session=db, user=user, clock=clock)
    accounts.request_password_reset(
        session=db, email=EMAIL.upper(), clock=clock, links=LINKS, keyring=KEYRING
    )
    db.commit()
    deliver()
    raw = link_in(mailbox.last_to(EMAIL), "/password-reset/").rsplit("/", 1)[1]

    new_password = "a brand new passphrase"
    accounts.reset_password(
        session=db,
        raw_token=raw,
        password=new_password,
        password_confirm=new_password,
        clock=clock,
        keyring=KEYRING,
    )
    assert db.scalar(select(func.count()).select_from(WebSession)) == 0
    assert _login(db, clock, password=new_password).id == user.id
    with pytest.raises(NotAuthenticated):
        _login(db, clock, password=PASSWORD)
    with pytest.raises(NotFound):
        accounts.reset_password(
            session=db,
            raw_token=raw,
            password="another one 123",
            password_confirm="another one 123",
            clock=clock,
            keyring=KEYRING,
        )


def test_password_reset_for_an_unknown_address_sends_nothing(db, clock):
    accounts.request_password_reset(
        session=db, email="nobody@example.kz", clock=clock, links=LINKS, keyring=KEYRING
    )
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_api_tokens_are_hashed_and_revocable(db, clock, published_policy):
    user = _verified_user(db, clock, published_policy["en"])
    token, raw = accounts.create_api_token(
        session=db, user=user, name="backup script", clock=clock, keyring=KEYRING
    )
    assert raw.startswith(accounts.API_TOKEN_PREFIX)
    assert raw not in db.scalars(select(ApiToken.token_hash)).all()
    assert accounts.user_for_api_token(session=db, raw_token=raw, clock=clock) is user

    accounts.revoke_api_token(
        session=db, user=user, token_id=token.id, clock=clock, keyring=KEYRING
    )
    assert accounts.user_for_api_token(session=db, raw_token=raw, clock=clock) is None


def test_a_user_cannot_revoke_another_users_token(db, clock, published_policy):
    owner = _verified_user(db, clock, published_policy["en"])
    token, _ = accounts.create_api_token(
        session=db, user=owner, name="mine", clock=clock, keyring=KEYRING
    )
    other = create_user(
        session=db, keyring=KEYRING, clock=clock,
        email="other@example.kz",
        phone="+77019998877",
        password_hash="x",
        language="en",
        created_at=clock.now(),
        password_changed_at=clock.now(),
    )  # fmt: skip
    with pytest.raises(NotFound):
        accounts.revoke_api_token(
            session=db, user=other, token_id=token.id, clock=clock, keyring=KEYRING
        )
