"""The profile: sealed passport data, masked unless revealed (audited), each item with its
provided-at time, changed and deleted one by one."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.errors import ValidationFailed
from smartprotect.privacy.retention import service as retention
from smartprotect.privacy.retention.rules import RETENTION, Category, rules
from smartprotect.profile import service as profile
from smartprotect.profile.models import ProfileItem
from smartprotect.profile.schemas import NamesUpdate, PassportUpdate
from tests.helpers import add_owner

PASSPORT = PassportUpdate(number="N 12345678", authority="МВД РК", issued_on=date(2019, 5, 17))


@pytest.fixture
def user(db, clock, keyring, published_policy):
    return add_owner(db, clock=clock, keyring=keyring, email="aigerim@example.kz")


def _tags(db) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_passport_data_is_sealed_masked_and_every_reveal_audited(db, clock, keyring, user):
    profile.set_passport(session=db, keyring=keyring, user=user, passport=PASSPORT, clock=clock)
    raw = b"".join(db.scalars(select(ProfileItem.sealed)))
    assert b"12345678" not in raw and "МВД".encode() not in raw and b"2019-05-17" not in raw

    shown = profile.profile_of(session=db, keyring=keyring, user=user).passport
    assert shown.number == "•••••••78" and "МВД" not in shown.authority
    assert shown.issued_on == date(2019, 1, 1)
    assert Tag.PROFILE_PASSPORT_REVEALED not in _tags(db)

    revealed = profile.profile_of(session=db, keyring=keyring, user=user, reveal=True, clock=clock)
    assert (revealed.passport.number, revealed.passport.authority) == ("N12345678", "МВД РК")
    assert revealed.passport.issued_on == date(2019, 5, 17) and revealed.passport_revealed
    profile.profile_of(session=db, keyring=keyring, user=user, reveal=True, clock=clock)
    assert _tags(db).count(Tag.PROFILE_PASSPORT_REVEALED) == 2
    # The audit log says what happened to whom, never the values.
    for event in db.scalars(select(AuditEvent)):
        assert "12345678" not in str(event.details)


def test_bad_passport_data_is_refused(db, clock, keyring, user):
    with pytest.raises(ValueError):
        PassportUpdate(number="12", authority="x", issued_on=date(2019, 1, 1))
    with pytest.raises(ValueError):
        PassportUpdate(number="N12345678", authority=" ", issued_on=date(2019, 1, 1))
    future = PASSPORT.model_copy(update={"issued_on": clock.now().date() + timedelta(days=1)})
    with pytest.raises(ValidationFailed) as error:
        profile.set_passport(session=db, keyring=keyring, user=user, passport=future, clock=clock)
    assert "issued_on" in error.value.errors
    assert db.scalar(select(ProfileItem)) is None


def test_each_item_records_when_it_was_given_and_can_be_deleted(db, clock, keyring, user):
    profile.change_names(session=db, keyring=keyring, user=user, clock=clock,
                         names=NamesUpdate(last_name="Сейткали", first_name="Айгерим"))  # fmt: skip
    given = clock.now()
    clock.advance(timedelta(days=10))
    profile.set_passport(session=db, keyring=keyring, user=user, passport=PASSPORT, clock=clock)
    profile.set_other_information(session=db, keyring=keyring, user=user, clock=clock,
                                  text="Второй телефон у мамы")  # fmt: skip
    data = profile.profile_of(session=db, keyring=keyring, user=user)
    assert data.names_provided_at == given and data.passport.provided_at == clock.now()
    assert data.other_information == "Второй телефон у мамы"

    for item in (profile.Item.NAMES, profile.Item.PASSPORT, profile.Item.OTHER_INFORMATION):
        profile.delete_item(session=db, keyring=keyring, user=user, item=item, clock=clock)
    data = profile.profile_of(session=db, keyring=keyring, user=user)
    assert (data.last_name, data.first_name, data.passport, data.other_information) == (
        None, None, None, None)  # fmt: skip
    assert db.scalar(select(ProfileItem)) is None
    assert _tags(db).count(Tag.PROFILE_DELETED) == 3
    with pytest.raises(ValidationFailed):
        profile.delete_item(session=db, keyring=keyring, user=user, item=profile.Item.PHONE,
                            clock=clock)  # fmt: skip


def test_a_changed_phone_is_unconfirmed_and_its_clock_restarts(db, clock, keyring, user):
    user.phone_verified_at = clock.now()
    clock.advance(timedelta(days=3))
    profile.change_phone(session=db, keyring=keyring, user=user, phone="8 777 123 4567",
                         clock=clock)  # fmt: skip
    assert user.phone == "+77771234567" and user.phone_verified_at is None
    assert user.phone_provided_at == clock.now()
    with pytest.raises(ValidationFailed) as error:
        profile.change_phone(session=db, keyring=keyring, user=user, phone="12", clock=clock)
    assert set(error.value.errors) == {"phone"}


def test_profile_items_past_a_year_go_with_the_retention_run(db, clock, keyring, user):
    profile.set_passport(session=db, keyring=keyring, user=user, passport=PASSPORT, clock=clock)
    clock.advance(timedelta(days=200))
    profile.set_other_information(session=db, keyring=keyring, user=user, text="x", clock=clock)
    clock.advance(RETENTION - timedelta(days=199))  # passport: 366 days old; other: 166
    by_category = {(r.table, r.category): r for r in rules()}
    for category in (Category.PASSPORT, Category.OTHER):
        retention.destroy_due(session=db, rule=by_category["profile_items", category],
                              now=clock.now(), held=(), limit=100)  # fmt: skip
    data = profile.profile_of(session=db, keyring=keyring, user=user)
    assert data.passport is None and data.other_information == "x"


def _code(db, clock, keyring, user) -> str:
    return profile.request_phone_confirmation(session=db, keyring=keyring, user=user, clock=clock)


def _confirm(db, clock, keyring, user, code) -> None:
    profile.confirm_phone(session=db, keyring=keyring, user=user, code=code, clock=clock)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**profile.CODE_DIGITS:06d}"


def test_a_phone_code_is_tried_five_times_then_a_new_one_is_needed(db, clock, keyring, user):
    code = _code(db, clock, keyring, user)
    assert len(code) == 6 and code.isdigit()
    for _ in range(profile.MAX_CODE_ATTEMPTS):
        with pytest.raises(profile.CodeIncorrect):
            _confirm(db, clock, keyring, user, _wrong(code))
    with pytest.raises(ValidationFailed) as refused:
        _confirm(db, clock, keyring, user, code)  # right, but too late
    assert refused.value.errors == {"code": "Too many wrong codes: ask for a new one."}
    # A new code at most once a minute, and it works.
    with pytest.raises(ValidationFailed):
        _code(db, clock, keyring, user)
    clock.advance(profile.CODE_COOLDOWN)
    _confirm(db, clock, keyring, user, f" {_code(db, clock, keyring, user)} ")
    assert user.phone_verified_at == clock.now()
    with pytest.raises(ValidationFailed):
        _code(db, clock, keyring, user)  # nothing left to confirm


def test_a_phone_code_expires_and_does_not_confirm_a_changed_number(db, clock, keyring, user):
    code = _code(db, clock, keyring, user)
    clock.advance(profile.CODE_TTL)
    with pytest.raises(ValidationFailed):
        _confirm(db, clock, keyring, user, code)
    code = _code(db, clock, keyring, user)
    profile.change_phone(session=db, keyring=keyring, user=user, phone="+77017776655", clock=clock)
    with pytest.raises(ValidationFailed) as refused:
        _confirm(db, clock, keyring, user, code)
    assert refused.value.errors == {"code": "This code has expired: ask for a new one."}
    assert user.phone_verified_at is None
