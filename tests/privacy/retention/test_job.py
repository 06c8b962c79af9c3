"""Retention (clause 2.4): what is older than a year goes, unless a legal hold keeps it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from smartprotect.accounts.models import LoginAttempt
from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.db import Base
from smartprotect.devices.models import DeviceLocation
from smartprotect.errors import ValidationFailed
from smartprotect.mail.links import Links
from smartprotect.privacy.keys.master import Keyring, LocalMasterKey
from smartprotect.privacy.retention import service
from smartprotect.privacy.retention.job import LEASE_NAME, LEASE_TTL, run_retention
from smartprotect.privacy.retention.rules import EXEMPT, RETENTION, Category, rules
from tests.conftest import TEST_MASTER_KEY, TEST_SECRET
from tests.helpers import add_device, add_owner, report_fix

DAY = timedelta(days=1)


def _fixes_of(db, device) -> int:
    return db.scalar(
        select(func.count())
        .select_from(DeviceLocation)
        .where(DeviceLocation.device_id == device.id)
    )


@pytest.fixture
def two_owners(db, clock, keyring, published_policy):
    """Two owners with a phone each; each phone reported a fix 366 days ago and one 364."""
    owners = [
        add_owner(db, clock=clock, keyring=keyring, email=f"owner{n}@example.kz") for n in (1, 2)
    ]
    phones = [add_device(db, keyring=keyring, clock=clock, owner=owner) for owner in owners]
    for phone in phones:
        report_fix(db, keyring=keyring, clock=clock, device=phone)
    clock.advance(2 * DAY)
    for phone in phones:
        report_fix(db, keyring=keyring, clock=clock, device=phone)
    db.commit()
    clock.advance(RETENTION - DAY)  # the first fixes are now 366 days old, the second 364
    return owners, phones


KEYRING = Keyring(master=LocalMasterKey(TEST_MASTER_KEY), secret=TEST_SECRET)
LINKS = Links(base_url="https://testserver")


def _run(session_factory, clock, **options):
    return run_retention(session_factory=session_factory, clock=clock, keyring=KEYRING,
                         links=LINKS, **options)  # fmt: skip


def _hold(db, clock, subject_id, categories=(Category.GEOLOCATION,), days=30):
    hold = service.place_hold(
        session=db, clock=clock, secret=TEST_SECRET, subject_id=subject_id,
        categories=categories, reason="Court order 2-123/2026", ends_at=clock.now() + days * DAY,
        placed_by="cli",
    )  # fmt: skip
    db.commit()
    return hold


def test_an_item_provided_366_days_ago_is_gone_and_one_under_a_hold_remains(
    db, session_factory, clock, two_owners
):
    (held_owner, _), (held_phone, free_phone) = two_owners
    _hold(db, clock, held_owner.id)
    result = _run(session_factory, clock)
    db.expire_all()
    assert _fixes_of(db, free_phone) == 1  # the 364-day-old fix stays
    assert _fixes_of(db, held_phone) == 2  # both, the old one under the hold
    geolocation = next(t for t in result.tables if t.rule.table == "device_locations")
    assert (geolocation.destroyed, geolocation.held) == (1, 1)
    # The count per category is in the audit log, with no personal data.
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == Tag.RETENTION_RUN)).one()
    assert event.details["categories"]["geolocation"] == {"destroyed": 1, "held": 1}
    assert event.subject is None and event.sealed_details is None


def test_a_released_or_ended_hold_keeps_nothing(db, session_factory, clock, two_owners):
    (first, second), phones = two_owners
    released = _hold(db, clock, first.id)
    _hold(db, clock, second.id, days=1)
    service.release_hold(session=db, clock=clock, secret=TEST_SECRET, hold_id=released.id,
                         released_by="cli")  # fmt: skip
    db.commit()
    clock.advance(DAY)  # the second hold has ended
    _run(session_factory, clock)
    db.expire_all()
    # The old fixes go as if never held; the newer ones are a year old today, not more.
    assert [_fixes_of(db, phone) for phone in phones] == [1, 1]


def test_a_hold_on_another_category_does_not_keep_locations(db, session_factory, clock, two_owners):
    (owner, _), (phone, _) = two_owners
    _hold(db, clock, owner.id, categories=(Category.TECHNICAL,))
    _run(session_factory, clock)
    db.expire_all()
    assert _fixes_of(db, phone) == 1


def test_a_dry_run_counts_and_changes_nothing(db, session_factory, clock, two_owners):
    _, phones = two_owners
    result = _run(session_factory, clock, dry_run=True)
    geolocation = next(t for t in result.tables if t.rule.table == "device_locations")
    assert geolocation.destroyed == 2
    db.expire_all()
    assert [_fixes_of(db, phone) for phone in phones] == [2, 2]
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == Tag.RETENTION_RUN)) is None


def test_large_tables_go_a_chunk_at_a_time(db, session_factory, clock, two_owners):
    _, phones = two_owners
    clock.advance(2 * DAY)  # now every fix is past a year
    result = _run(session_factory, clock, chunk=1)
    db.expire_all()
    assert [_fixes_of(db, phone) for phone in phones] == [0, 0]
    assert next(t for t in result.tables if t.rule.table == "device_locations").destroyed == 4


def test_each_chunk_starts_where_the_last_stopped(db, clock, keyring, two_owners):
    """Past rows a hold keeps, and past rows received at one and the same moment: no chunk
    looks at a row an earlier one chose or passed over."""
    owners, phones = two_owners
    now = clock.now()
    clock.set(now - RETENTION - 10 * DAY)
    for phone in phones:
        for _ in range(3):
            report_fix(db, keyring=keyring, clock=clock, device=phone)
    clock.set(now)
    _hold(db, clock, owners[0].id)
    rule = next(r for r in rules() if r.table == "device_locations")
    held = service.held_subjects(session=db, now=now)[Category.GEOLOCATION]
    due = db.execute(
        select(DeviceLocation.received_at, DeviceLocation.id)
        .where(DeviceLocation.device_id == phones[1].id,
               DeviceLocation.received_at < now - RETENTION)
        .order_by(DeviceLocation.received_at, DeviceLocation.id)
    ).all()  # fmt: skip
    assert len(due) == 4
    # Told to start after the second, a chunk leaves the first two alone.
    chunk = service.destroy_due(session=db, rule=rule, now=now, held=held, limit=1,
                                after=tuple(due[1]))  # fmt: skip
    assert (chunk.destroyed, chunk.more, chunk.last) == (1, True, tuple(due[2]))
    chunks, after = [], None
    while True:
        chunk = service.destroy_due(session=db, rule=rule, now=now, held=held, limit=1,
                                    after=after)  # fmt: skip
        chunks.append(chunk)
        after = chunk.last
        if not chunk.more:
            break
    assert [chunk.last for chunk in chunks] == [tuple(due[0]), tuple(due[1]), tuple(due[3]),
                                                tuple(due[3])]  # fmt: skip
    assert [chunk.destroyed for chunk in chunks] == [1, 1, 1, 0]
    db.commit()
    assert [_fixes_of(db, phone) for phone in phones] == [5, 1]  # held; the one not yet due


def test_shorter_rules_apply_their_own_time(db, session_factory, clock, published_policy):
    db.add(LoginAttempt(account_key="a" * 64, client_key="b" * 64, attempted_at=clock.now()))
    db.commit()
    clock.advance(timedelta(minutes=16))  # past the sign-in throttle's window
    _run(session_factory, clock)
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(LoginAttempt)) == 0


def test_only_one_runner_at_a_time(db, session_factory, clock, two_owners):
    with session_factory() as session:
        assert service.take_lease(session=session, name=LEASE_NAME, holder="other instance",
                                  now=clock.now(), ttl=LEASE_TTL)  # fmt: skip
        session.commit()
    assert _run(session_factory, clock) is None  # busy: nothing done
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(DeviceLocation)) == 4
    clock.advance(LEASE_TTL)  # the other instance died; its lease runs out
    assert _run(session_factory, clock) is not None
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(DeviceLocation)) == 2


def test_runs_started_together_destroy_everything_once(db, session_factory, clock, two_owners):
    results, errors = [], []

    def run() -> None:
        try:
            results.append(_run(session_factory, clock, chunk=1))
        except Exception as exc:  # pragma: no cover - the assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    finished = [r for r in results if r is not None]
    assert len(finished) >= 1
    destroyed = sum(
        t.destroyed for r in finished for t in r.tables if t.rule.table == "device_locations"
    )
    assert destroyed == 2
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(DeviceLocation)) == 2
    runs = db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == Tag.RETENTION_RUN)
    )
    assert runs == len(finished)


def test_holds_need_a_reason_categories_and_a_future_end(db, clock, published_policy, keyring):
    owner = add_owner(db, clock=clock, keyring=keyring)
    with pytest.raises(ValidationFailed) as error:
        service.place_hold(
            session=db, clock=clock, secret=TEST_SECRET, subject_id=owner.id, categories=[],
            reason=" ", ends_at=clock.now(), placed_by="cli",
        )  # fmt: skip
    assert set(error.value.errors) == {"categories", "reason", "ends_at"}
    hold = _hold(db, clock, owner.id)
    tags = db.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert tags[-1] == Tag.HOLD_PLACED
    service.release_hold(session=db, clock=clock, secret=TEST_SECRET, hold_id=hold.id,
                         released_by="cli")  # fmt: skip
    with pytest.raises(ValidationFailed):
        service.release_hold(session=db, clock=clock, secret=TEST_SECRET, hold_id=hold.id,
                             released_by="cli")  # fmt: skip


def test_every_table_has_a_retention_rule_or_a_reason_not_to():
    ruled = {rule.table for rule in rules()}
    tables = set(Base.metadata.tables)
    assert ruled <= tables
    assert not ruled & set(EXEMPT), "a table is both ruled and exempt"
    assert tables - ruled - set(EXEMPT) == set(), "decide how long these tables keep data"
    assert all(rule.keep <= RETENTION for rule in rules())


def test_a_run_asked_to_stop_ends_between_chunks_and_leaves_the_lease(
    db, session_factory, clock, two_owners
):
    from smartprotect.privacy.retention.job import Stopped

    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        _run(session_factory, clock, chunk=1, stop=stop)
    assert _run(session_factory, clock) is not None  # the lease was given back
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(DeviceLocation)) == 2
