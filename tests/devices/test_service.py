"""Devices: enrollment with the owner's permission, check-ins, and what is (not) stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from smartprotect.accounts.models import User
from smartprotect.accounts.service import create_user
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability, DeviceLocation
from smartprotect.devices.schemas import CheckIn, EnrollRequest, LocationFix
from smartprotect.errors import NotFound, ValidationFailed
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, ConsentEvent, Purpose
from tests.helpers import add_owner

ALMATY = (43.238949, 76.889709)


@pytest.fixture
def owner(db, clock, keyring, published_policy) -> User:
    return add_owner(db, clock=clock, keyring=keyring)


def _code(db, keyring, owner, clock, capabilities=(Capability.LOCATE, Capability.RING)):
    return devices.create_enrollment_code(
        session=db, keyring=keyring, user=owner, device_name="Work laptop",
        capabilities=list(capabilities), clock=clock,
    )[1]  # fmt: skip


def _enroll(db, keyring, clock, code, allowed=tuple(Capability)):
    return devices.enroll(
        session=db, keyring=keyring, clock=clock,
        request=EnrollRequest(code=code, platform="linux", allowed=list(allowed)),
    )  # fmt: skip


def _fix(clock, **overrides) -> LocationFix:
    values = {"latitude": ALMATY[0], "longitude": ALMATY[1], "accuracy_m": 12.5,
              "method": "gps", "fixed_at": clock.now()}  # fmt: skip
    values.update(overrides)
    return LocationFix(**values)


def test_a_code_enrolls_one_device_once(db, clock, keyring, owner):
    code = _code(db, keyring, owner, clock)
    assert len(code) == 14 and code.count("-") == 2
    device, credential = _enroll(db, keyring, clock, code.lower().replace("-", " "))
    assert credential.startswith("spdc_") and credential not in device.credential_hash
    assert devices.device_for_credential(session=db, raw=credential) is device
    assert device.capabilities == ["locate", "ring"]
    with pytest.raises(NotFound):
        _enroll(db, keyring, clock, code)


def test_codes_expire_after_15_minutes(db, clock, keyring, owner):
    code = _code(db, keyring, owner, clock)
    clock.advance(devices.ENROLLMENT_CODE_TTL)
    with pytest.raises(NotFound):
        _enroll(db, keyring, clock, code)
    with pytest.raises(NotFound):
        _enroll(db, keyring, clock, "AAAA-BBBB-CCCC")


def test_the_device_gets_only_what_both_owner_and_machine_allow(db, clock, keyring, owner):
    code = _code(db, keyring, owner, clock, capabilities=(Capability.LOCATE, Capability.WIPE))
    device, _ = _enroll(db, keyring, clock, code, allowed=(Capability.LOCATE, Capability.RING))
    assert device.capabilities == ["locate"]
    scope = devices.scope_of(device.id)
    assert consent.is_permitted(
        session=db, subject_id=owner.id, purpose=Purpose.DEVICE_LOCATE, scope=scope
    )
    assert not consent.is_permitted(
        session=db, subject_id=owner.id, purpose=Purpose.DEVICE_WIPE, scope=scope
    )
    # Device permissions never leak into the account-wide state.
    assert not consent.is_permitted(session=db, subject_id=owner.id, purpose=Purpose.DEVICE_LOCATE)
    events = db.scalars(select(ConsentEvent).where(ConsentEvent.scope == scope)).all()
    assert len(events) == len(Capability) and {e.channel for e in events} == {Channel.APP}


def _check_in(db, keyring, device, report, clock) -> tuple[int, bool]:
    """One device's check-in through the batch path; raises what refuses it."""
    (outcome,) = devices.check_in_many(
        session=db, keyring=keyring, clock=clock,
        reports=[devices.Report(credential_hash=device.credential_hash, report=report)],
    )  # fmt: skip
    if outcome.error is not None:
        raise outcome.error
    return outcome.locations_stored, outcome.accounts_stored


def test_check_in_stores_sealed_locations_and_battery(db, clock, keyring, owner):
    device, _ = _enroll(db, keyring, clock, _code(db, keyring, owner, clock))
    wifi = _fix(clock, method="wifi", fixed_at=clock.now() - timedelta(seconds=1))
    report = CheckIn(battery_percent=81, locations=[_fix(clock), wifi])
    assert _check_in(db, keyring, device, report, clock) == (2, False)
    assert device.battery_percent == 81 and device.last_seen_at == clock.now()
    raw = b"".join(row.sealed for row in db.scalars(select(DeviceLocation)))
    assert b"43.23" not in raw and b"76.88" not in raw and b"gps" not in raw
    history = devices.locations(session=db, keyring=keyring, device=device)
    assert {(p.latitude, p.longitude, p.accuracy_m) for p in history} == {(*ALMATY, 12.5)}
    assert {p.method.value for p in history} == {"gps", "wifi"}


def test_a_check_in_sent_again_stores_its_fixes_once(db, clock, keyring, owner):
    """The device never got the answer, so it sends the same fixes again (with a new one)."""
    device, _ = _enroll(db, keyring, clock, _code(db, keyring, owner, clock))
    earlier = _fix(clock, fixed_at=clock.now() - timedelta(minutes=5))
    first = CheckIn(locations=[earlier, _fix(clock)])
    assert _check_in(db, keyring, device, first, clock) == (2, False)
    clock.advance(timedelta(seconds=30))
    again = CheckIn(locations=[*first.locations, _fix(clock, latitude=43.3), _fix(clock)])
    assert _check_in(db, keyring, device, again, clock) == (4, False)
    history = devices.locations(session=db, keyring=keyring, device=device)
    assert [(p.fixed_at, p.latitude) for p in history] == [
        (clock.now(), 43.3), (clock.now() - timedelta(seconds=30), ALMATY[0]),
        (clock.now() - timedelta(minutes=5, seconds=30), ALMATY[0]),
    ]  # fmt: skip


def test_nothing_unpermitted_is_stored(db, clock, keyring, owner):
    device, _ = _enroll(
        db, keyring, clock, _code(db, keyring, owner, clock, capabilities=(Capability.RING,))
    )
    report = CheckIn(locations=[_fix(clock)], accounts=["aigerim"])
    assert _check_in(db, keyring, device, report, clock) == (0, False)
    assert device.sealed_accounts is None
    assert db.scalar(select(DeviceLocation)) is None


def test_withdrawn_consent_stops_storage_at_once(db, clock, keyring, owner):
    allowed = (Capability.LOCATE, Capability.REPORT_ACCOUNTS)
    device, _ = _enroll(db, keyring, clock, _code(db, keyring, owner, clock, capabilities=allowed))
    report = CheckIn(locations=[_fix(clock)], accounts=["aigerim", "guest"])
    assert _check_in(db, keyring, device, report, clock) == (1, True)
    assert devices.accounts_of(session=db, keyring=keyring, device=device) == ["aigerim", "guest"]
    consent.record(
        session=db, keyring=keyring, subject_id=owner.id, purpose=Purpose.DEVICE_LOCATE,
        action=consent.ConsentAction.WITHDRAW, policy_document_id=db.scalar(
            select(ConsentEvent.policy_document_id)
        ), channel=Channel.WEB, actor="user:owner", clock=clock, scope=devices.scope_of(device.id),
    )  # fmt: skip
    assert _check_in(db, keyring, device, report, clock)[0] == 0


def test_fixes_from_the_future_are_refused(db, clock, keyring, owner):
    device, _ = _enroll(db, keyring, clock, _code(db, keyring, owner, clock))
    late = _fix(clock, fixed_at=clock.now() + devices.MAX_CLOCK_SKEW + timedelta(seconds=1))
    with pytest.raises(ValidationFailed):
        _check_in(db, keyring, device, CheckIn(locations=[_fix(clock), late]), clock)


def test_another_users_device_is_not_found(db, clock, keyring, owner):
    device, _ = _enroll(db, keyring, clock, _code(db, keyring, owner, clock))
    stranger = create_user(
        session=db, keyring=keyring, clock=clock,
        email="s@example.kz", phone="+77010000002", password_hash="x", language="en",
        created_at=clock.now(), password_changed_at=clock.now(),
    )  # fmt: skip
    with pytest.raises(NotFound):
        devices.get_device(session=db, user=stranger, device_id=device.id)
    with pytest.raises(NotFound):
        devices.get_device(session=db, user=owner, device_id=uuid.uuid4())


def test_a_revoked_credential_is_refused(db, clock, keyring, owner):
    device, credential = _enroll(db, keyring, clock, _code(db, keyring, owner, clock))
    device.revoked_at = datetime.now(UTC)
    assert devices.device_for_credential(session=db, raw=credential) is None
