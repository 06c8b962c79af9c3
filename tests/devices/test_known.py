"""What check-in batches keep between them is dropped the moment device access changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, event, func, select, update

from smartprotect.devices import service as devices
from smartprotect.devices.known import KnownDevices
from smartprotect.devices.models import AccessGeneration, Capability, Device, DeviceLocation
from smartprotect.devices.schemas import CheckIn, EnrollRequest, LocationFix
from smartprotect.errors import NotAuthenticated
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, ConsentAction, ConsentEvent, Purpose
from smartprotect.privacy.keys import service as keys
from tests.helpers import add_owner


@pytest.fixture
def enrolled(session_factory, clock, keyring, published_policy):
    """An owner and a device allowed to locate, committed."""
    with session_factory() as session:
        owner = add_owner(session, clock=clock, keyring=keyring)
        _, code = devices.create_enrollment_code(
            session=session, keyring=keyring, user=owner, device_name="Laptop",
            capabilities=[Capability.LOCATE], clock=clock,
        )  # fmt: skip
        device, _ = devices.enroll(
            session=session, keyring=keyring, clock=clock,
            request=EnrollRequest(code=code, platform="linux"),
        )  # fmt: skip
        session.commit()
        return owner.id, device.id, device.credential_hash


def _batch(session_factory, keyring, clock, known, credential_hash, statements=None):
    """One check-in with one fix, as its own committed batch; its outcome."""
    fix = LocationFix(
        latitude=43.2, longitude=76.9, accuracy_m=10, method="gps", fixed_at=clock.now()
    )
    report = CheckIn(locations=[fix])
    with session_factory() as session:
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        if statements is not None:
            event.listen(session.get_bind(), "before_cursor_execute", listen)
        try:
            (outcome,) = devices.check_in_many(
                session=session, keyring=keyring, clock=clock, known=known,
                reports=[devices.Report(credential_hash=credential_hash, report=report)],
            )  # fmt: skip
            session.commit()
        finally:
            if statements is not None:
                event.remove(session.get_bind(), "before_cursor_execute", listen)
    return outcome


def _generation(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(AccessGeneration.value))


def test_a_second_batch_asks_nothing_again(session_factory, keyring, clock, enrolled):
    _, device_id, credential_hash = enrolled
    known = KnownDevices()
    first: list[str] = []
    assert _batch(session_factory, keyring, clock, known, credential_hash, first).error is None
    second: list[str] = []
    clock.advance(timedelta(seconds=1))  # a new fix, not the first one again
    outcome = _batch(session_factory, keyring, clock, known, credential_hash, second)
    assert outcome.error is None and outcome.locations_stored == 1
    lookups = ("consent_events", "subject_keys", "credential_hash")
    assert all(any(word in sql for sql in first) for word in lookups)
    assert not any(word in sql for sql in second for word in lookups)
    with session_factory() as session:
        stored = session.scalar(
            select(func.count()).select_from(DeviceLocation).where(
                DeviceLocation.device_id == device_id
            )
        )  # fmt: skip
    assert stored == 2


def _revoke(session, owner_id, device_id, clock):
    session.execute(update(Device).where(Device.id == device_id).values(revoked_at=clock.now()))


def _withdraw(session, owner_id, device_id, clock):
    from smartprotect.db import KEYRING

    consent.record(
        session=session, keyring=session.info[KEYRING], subject_id=owner_id,
        purpose=Purpose.DEVICE_LOCATE, action=ConsentAction.WITHDRAW,
        policy_document_id=session.scalar(select(ConsentEvent.policy_document_id).limit(1)),
        channel=Channel.WEB, actor="user:test", clock=clock, scope=devices.scope_of(device_id),
    )  # fmt: skip


def _shred(session, owner_id, device_id, clock):
    keys.destroy_key(session=session, subject_id=owner_id, clock=clock)


def _delete(session, owner_id, device_id, clock):
    session.execute(delete(Device).where(Device.id == device_id))


def _mark_lost(session, owner_id, device_id, clock):
    session.execute(update(Device).where(Device.id == device_id).values(lost=True))


@pytest.mark.parametrize(
    ("change", "then"),
    [
        (_revoke, "refused"),
        (_delete, "refused"),
        (_withdraw, "not stored"),
        (_shred, "erased"),
        (_mark_lost, "lost"),
    ],
)
def test_the_first_batch_after_a_change_commits_sees_it(
    session_factory, keyring, clock, enrolled, change, then
):
    owner_id, device_id, credential_hash = enrolled
    known = KnownDevices()
    before = _batch(session_factory, keyring, clock, known, credential_hash)
    assert before.error is None and before.locations_stored == 1 and not before.lost
    generation = _generation(session_factory)
    # Made by another session (as by the site, a CLI job or another server process), with
    # plain statements where that is how it could be done: the database raises the counter.
    with session_factory() as session:
        change(session, owner_id, device_id, clock)
        session.commit()
    assert _generation(session_factory) > generation
    if then == "erased":
        with pytest.raises(keys.KeyDestroyed):
            _batch(session_factory, keyring, clock, known, credential_hash)
        return
    after = _batch(session_factory, keyring, clock, known, credential_hash)
    if then == "refused":
        assert isinstance(after.error, NotAuthenticated)
    elif then == "not stored":
        assert after.error is None and after.locations_stored == 0
    else:
        assert after.error is None and after.lost and after.needs_follow_up


def test_what_check_ins_write_leaves_the_counter_alone(session_factory, keyring, clock, enrolled):
    _, _, credential_hash = enrolled
    known = KnownDevices()
    _batch(session_factory, keyring, clock, known, credential_hash)
    generation = _generation(session_factory)
    for _ in range(3):
        _batch(session_factory, keyring, clock, known, credential_hash)
    assert _generation(session_factory) == generation


def test_any_other_value_of_the_counter_starts_afresh():
    known = KnownDevices()
    learned = known.at(5)
    learned.devices["h"] = object()
    assert known.at(5) is learned
    # Lower (a batch that read it before another saw it rise, or a restored database) or
    # higher: what was learned at 5 is not trusted again, even when 5 comes back.
    assert not known.at(4).devices
    assert not known.at(5).devices
    assert not known.at(6).devices
    assert not known.at(None).devices and known.at(None) is not known.at(None)


def test_what_is_kept_is_learned_afresh_after_max_age():
    moments = iter([0.0, 10.0, 301.0])
    known = KnownDevices(max_age=300.0, now=lambda: next(moments))
    learned = known.at(1)
    learned.devices["h"] = object()
    assert known.at(1) is learned
    assert not known.at(1).devices


def test_past_its_limit_it_starts_over():
    known = KnownDevices(limit=2)
    learned = known.at(1)
    learned.devices.update({"a": object(), "b": object()})
    assert not known.at(1).devices
