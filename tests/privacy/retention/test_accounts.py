"""Clause 2.4 for the account's own items: names, the phone number and a device's reported
accounts are emptied a year after they were given; an account whose address was last given a
year ago is erased whole, never sooner than a month after its owner was reminded; signing in
or confirming the details restarts the year."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from smartprotect.accounts.models import User
from smartprotect.devices import service as devices
from smartprotect.devices.schemas import CheckIn
from smartprotect.mail.models import OutboxMessage
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.retention.job import RENEWAL_NOTICE
from smartprotect.privacy.retention.rules import RETENTION
from smartprotect.profile import service as profile
from smartprotect.profile.schemas import NamesUpdate
from tests.helpers import add_device, add_owner
from tests.privacy.retention.test_job import _run

DAY = timedelta(days=1)


@pytest.fixture
def owner(db, clock, keyring, published_policy):
    user = add_owner(db, clock=clock, keyring=keyring, email_provided_at=clock.now(),
                     phone_provided_at=clock.now())  # fmt: skip
    profile.change_names(session=db, keyring=keyring, user=user, clock=clock,
                         names=NamesUpdate(last_name="Сейткали", first_name="Айгерим"))  # fmt: skip
    db.commit()
    return user


def _reload(db, user_id):
    db.expire_all()
    return db.get(User, user_id)


def test_names_and_phone_are_emptied_a_year_after_they_were_given(
    db, session_factory, clock, owner
):
    clock.advance(200 * DAY)
    owner.email_provided_at = clock.now()  # a sign-in gave the address again; nothing else
    db.commit()
    clock.advance(RETENTION - 199 * DAY)  # names and number are now 366 days old
    _run(session_factory, clock)
    user = _reload(db, owner.id)
    assert (user.last_name, user.first_name, user.names_provided_at) == (None, None, None)
    assert (user.phone, user.phone_provided_at) == ("", None)
    assert user.email == "owner@example.kz"  # the account stays


def test_a_device_s_accounts_are_emptied_a_year_after_they_were_reported(
    db, session_factory, clock, keyring, owner
):
    phone = add_device(db, keyring=keyring, clock=clock, owner=owner,
                       capabilities=("locate", "report_accounts"))  # fmt: skip
    devices.check_in_many(session=db, keyring=keyring, clock=clock, reports=[devices.Report(
        credential_hash=phone.credential_hash, report=CheckIn(accounts=["aigerim"]))])  # fmt: skip
    db.commit()
    assert phone.accounts_reported_at == clock.now()
    clock.advance(RETENTION + DAY)
    owner_id, phone_id = owner.id, phone.id
    # Keep the account itself: its owner signs in now and then.
    user = _reload(db, owner_id)
    user.email_provided_at = user.phone_provided_at = clock.now()
    db.commit()
    _run(session_factory, clock)
    db.expire_all()
    device = db.get(type(phone), phone_id)
    assert device.sealed_accounts is None and device.accounts_reported_at is None


def test_an_account_is_reminded_then_erased_at_its_year(db, session_factory, clock, keyring, owner):
    owner_id, email = owner.id, owner.email
    clock.advance(RETENTION - RENEWAL_NOTICE + DAY)
    result = _run(session_factory, clock)
    assert result.reminded == 1
    reminder = db.scalars(select(OutboxMessage)).all()[-1]
    # The date told is the day the reminder is a month old (and the address past its year).
    assert reminder.recipient == email and "will be deleted on 2027-01-02" in reminder.subject
    assert "/account/profile#renew" in reminder.body_text
    assert _run(session_factory, clock).reminded == 0  # once
    clock.advance(RENEWAL_NOTICE - DAY)  # a year old today, the reminder not yet a month
    _run(session_factory, clock)
    assert _reload(db, owner_id) is not None
    clock.advance(DAY)
    result = _run(session_factory, clock)
    assert _reload(db, owner_id) is None
    assert not keys.key_exists(session=db, subject_id=owner_id)
    assert result.by_category()["email"]["destroyed"] == 1


def test_an_account_never_reminded_is_told_first_and_erased_a_month_later(
    db, session_factory, clock, owner
):
    # Past its year already when retention first runs (an account from before this rule).
    clock.advance(RETENTION + 100 * DAY)
    result = _run(session_factory, clock)
    assert result.reminded == 1 and _reload(db, owner.id) is not None
    reminder = db.scalars(select(OutboxMessage)).all()[-1]
    assert (clock.now() + RENEWAL_NOTICE).strftime("%Y-%m-%d") in reminder.subject
    clock.advance(RENEWAL_NOTICE)
    _run(session_factory, clock)
    assert _reload(db, owner.id) is None


def test_signing_in_or_confirming_keeps_the_account(db, session_factory, clock, keyring, owner):
    clock.advance(RETENTION - DAY)
    profile.renew(session=db, keyring=keyring, user=owner, clock=clock)
    db.commit()
    clock.advance(2 * DAY)
    _run(session_factory, clock)
    assert _reload(db, owner.id) is not None
    assert db.scalar(select(func.count()).select_from(User)) == 1


def test_reminders_go_out_a_batch_at_a_time(db, session_factory, clock, keyring, owner,
                                            monkeypatch):  # fmt: skip
    from smartprotect.privacy.retention import job

    for n in range(2):
        add_owner(db, clock=clock, keyring=keyring, email=f"more{n}@example.kz",
                  email_provided_at=clock.now())  # fmt: skip
    db.commit()
    monkeypatch.setattr(job, "ACCOUNTS_CHUNK", 2)
    clock.advance(RETENTION - RENEWAL_NOTICE + DAY)
    assert _run(session_factory, clock).reminded == 3
    assert _run(session_factory, clock).reminded == 0
