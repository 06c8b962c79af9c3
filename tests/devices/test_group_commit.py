"""Group commit: check-ins arriving together share one transaction, and each is answered
only once that transaction has committed; one bad check-in never fails the others."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, func, select, text

from smartprotect.db import make_async_engine, make_gate, unit_of_work
from smartprotect.devices import group_commit
from smartprotect.devices import service as devices
from smartprotect.devices.group_commit import POSTGRES_WRITERS, CheckInWriter
from smartprotect.devices.models import Capability, Device, DeviceLocation
from smartprotect.devices.schemas import CheckIn, EnrollRequest, LocationFix
from smartprotect.errors import NotAuthenticated, ValidationFailed
from smartprotect.mail.links import Links
from smartprotect.security import hash_token
from smartprotect.signing import load
from tests.helpers import add_owner, blocked

DEVICES = 12


@pytest.fixture
def credentials(session_factory, clock, keyring, published_policy) -> list[str]:
    """DEVICES devices of one owner, enrolled to report their location."""
    with unit_of_work(session_factory) as session:
        owner = add_owner(session, clock=clock, keyring=keyring)
        raw = []
        for number in range(DEVICES):
            _, code = devices.create_enrollment_code(
                session=session, keyring=keyring, user=owner, device_name=f"Phone {number}",
                capabilities=[Capability.LOCATE], clock=clock,
            )  # fmt: skip
            raw.append(
                devices.enroll(
                    session=session, keyring=keyring, clock=clock,
                    request=EnrollRequest(code=code, platform="linux"),
                )[1]
            )  # fmt: skip
    return raw


@pytest.fixture
def async_engine(engine):
    """What the application writes check-ins through: on PostgreSQL an asyncio engine."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    async_engine = make_async_engine(engine, pool_size=POSTGRES_WRITERS)
    yield async_engine
    asyncio.run(async_engine.dispose())


@pytest.fixture
def committed(engine, async_engine) -> list[int]:
    """Counts the transactions committed by the writer's engine."""
    target = async_engine.sync_engine if async_engine is not None else engine
    commits: list[int] = []
    listener = lambda _connection: commits.append(1)  # noqa: E731
    event.listen(target, "commit", listener)
    yield commits
    event.remove(target, "commit", listener)


@pytest.fixture
def after_commit() -> list[object]:
    return []


@pytest.fixture
def writer(engine, async_engine, session_factory, keyring, clock, command_key_file, after_commit):
    return CheckInWriter(
        session_factory=session_factory, gate=make_gate(engine), keyring=keyring,
        command_key=load(command_key_file), clock=clock,
        links=Links(base_url="https://testserver"), after_commit=after_commit.append,
        async_engine=async_engine,
    )  # fmt: skip


def _report(credential: str, clock, **fix) -> devices.Report:
    values = {"latitude": 43.2, "longitude": 76.9, "accuracy_m": 10.0, "method": "gps",
              "fixed_at": clock.now()} | fix  # fmt: skip
    return devices.Report(
        credential_hash=hash_token(credential),
        report=CheckIn(battery_percent=70, locations=[LocationFix(**values)]),
    )


async def _together(writer: CheckInWriter, reports: list[devices.Report]) -> list:
    return await asyncio.gather(
        *(writer.submit(report) for report in reports), return_exceptions=True
    )


def _stored(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(DeviceLocation))


def test_check_ins_arriving_together_share_one_transaction(
    writer, credentials, clock, committed, after_commit, session_factory
):
    outcomes = asyncio.run(_together(writer, [_report(c, clock) for c in credentials]))
    assert [o.error for o in outcomes] == [None] * DEVICES
    assert all(o.locations_stored == 1 for o in outcomes)
    assert len({o.device_id for o in outcomes}) == DEVICES
    # All arrived before the writer's first turn: one transaction, one commit.
    assert len(committed) == 1
    assert len(after_commit) == 1
    assert _stored(session_factory) == DEVICES
    with session_factory() as session:
        assert set(session.scalars(select(Device.battery_percent))) == {70}
        assert set(session.scalars(select(Device.last_seen_at))) == {clock.now()}


def test_a_batch_is_written_by_one_statement_and_commands_are_handed_out_after(
    writer, credentials, clock, engine, async_engine, session_factory, keyring
):
    """On PostgreSQL the batch's fixes and device updates are one statement, which is its
    own transaction (autocommit: no BEGIN and COMMIT to wait for); a device's queued command
    is then handed out in a transaction of its own. On SQLite, all in the batch's one
    transaction, row by row."""
    from smartprotect.accounts.models import User
    from smartprotect.commands import service as commands
    from smartprotect.commands.models import Command, Kind, State

    with session_factory() as session:
        device = session.scalar(
            select(Device).where(Device.credential_hash == hash_token(credentials[0]))
        )
        command = commands.issue(
            session=session, keyring=keyring, user=session.get(User, device.user_id), device=device,
            kind=Kind.LOCATE, clock=clock, links=Links(base_url="https://testserver"),
        )  # fmt: skip
        session.commit()
    target = async_engine.sync_engine if async_engine is not None else engine
    heard: list[tuple[str, bool]] = []

    def listener(connection, _cursor, statement, *_args):
        driver = connection.connection.dbapi_connection
        heard.append((statement, getattr(driver, "autocommit", None)))

    event.listen(target, "before_cursor_execute", listener)
    try:
        outcomes = asyncio.run(_together(writer, [_report(c, clock) for c in credentials[:4]]))
    finally:
        event.remove(target, "before_cursor_execute", listener)
    assert [o.error for o in outcomes] == [None] * 4
    assert [c["command_id"] for c in outcomes[0].commands] == [str(command.id)]
    assert [o.commands for o in outcomes[1:]] == [[]] * 3
    assert _stored(session_factory) == 4
    with session_factory() as session:
        assert session.get(Command, command.id).state == State.DELIVERED
    writes = [(sql, auto) for sql, auto in heard if "INSERT INTO device_locations" in sql]
    delivery = [auto for sql, auto in heard if sql.startswith("UPDATE commands")]
    if engine.dialect.name == "postgresql":
        ((statement, autocommit),) = writes
        assert "UPDATE devices" in statement and autocommit
        assert delivery and not any(delivery)
    else:
        assert len(writes) == 1  # one executemany for the batch's fixes
        assert delivery


def test_one_refused_check_in_does_not_refuse_the_others(
    writer, credentials, clock, session_factory
):
    reports = [_report(c, clock) for c in credentials[:3]]
    reports.insert(1, _report("spdc_not-a-credential", clock))
    reports.append(
        _report(credentials[3], clock, fixed_at=clock.now() + devices.MAX_CLOCK_SKEW * 2)
    )
    outcomes = asyncio.run(_together(writer, reports))
    assert isinstance(outcomes[1].error, NotAuthenticated)
    assert isinstance(outcomes[4].error, ValidationFailed)
    assert [o.locations_stored for o in outcomes] == [1, 0, 1, 1, 0]
    assert _stored(session_factory) == 3


def test_a_batch_that_fails_is_written_one_by_one(
    writer, credentials, clock, session_factory, monkeypatch
):
    poisoned = hash_token(credentials[2])
    real = devices.check_in_many

    def failing(*, reports, **kwargs):
        if any(item.credential_hash == poisoned for item in reports):
            raise RuntimeError("the database refused this one")
        return real(reports=reports, **kwargs)

    monkeypatch.setattr(group_commit.devices, "check_in_many", failing)
    outcomes = asyncio.run(_together(writer, [_report(c, clock) for c in credentials[:6]]))
    assert isinstance(outcomes[2], RuntimeError)
    assert [o.locations_stored for i, o in enumerate(outcomes) if i != 2] == [1] * 5
    assert _stored(session_factory) == 5


def test_a_failing_wake_up_after_commit_does_not_fail_the_check_in(
    engine, async_engine, session_factory, keyring, clock, command_key_file, credentials
):
    def broken(_session):
        raise RuntimeError("notifier down")

    writer = CheckInWriter(
        session_factory=session_factory, gate=make_gate(engine), keyring=keyring,
        command_key=load(command_key_file), clock=clock,
        links=Links(base_url="https://testserver"), after_commit=broken,
        async_engine=async_engine,
    )  # fmt: skip
    (outcome,) = asyncio.run(_together(writer, [_report(credentials[0], clock)]))
    assert outcome.error is None and outcome.locations_stored == 1
    assert _stored(session_factory) == 1


def test_a_batch_waits_for_another_processs_write_lock_off_the_event_loop(
    writer, credentials, clock, session_factory, engine, database_url
):
    """The write lock is taken at once when free; held by another process (here another
    connection), the batch waits for it in a thread while the event loop goes on."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL has no database-wide write lock")
    import sqlite3

    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def scenario() -> tuple[list, int]:
        pending = asyncio.ensure_future(writer.submit(_report(credentials[0], clock)))
        ticks = 0
        for _ in range(20):  # the loop keeps turning while the batch waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not pending.done()
        other.execute("COMMIT")
        return [await pending], ticks

    (outcome,), ticks = asyncio.run(scenario())
    other.close()
    assert outcome.error is None and outcome.locations_stored == 1 and ticks == 20
    assert _stored(session_factory) == 1


def test_check_ins_go_on_after_the_database_drops_the_writers_connections(
    writer, credentials, clock, session_factory, engine, async_engine, committed
):
    """The writer's connections are not pinged before use. When the server has dropped them
    all (restarted, or timed them out), the first batch to find one lost is stored, whole, on
    a new connection, and the pool replaces the others."""
    if engine.dialect.name != "postgresql":
        pytest.skip("an SQLite file has no connection to lose")

    async def scenario() -> list:
        first = await _together(writer, [_report(c, clock) for c in credentials[:4]])
        # The pool holds two connections; the server ends both (and nothing else).
        async with async_engine.connect() as one, async_engine.connect() as two:
            pids = [(await c.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
                    for c in (one, two)]  # fmt: skip
            await one.rollback()
            await two.rollback()
        with engine.connect() as connection:  # not one of the writer's
            ended = [
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                .scalar() for pid in pids
            ]  # fmt: skip
        assert ended == [True, True]
        return first + await _together(writer, [_report(c, clock) for c in credentials[4:8]])

    outcomes = asyncio.run(scenario())
    assert [o.error for o in outcomes] == [None] * 8
    assert _stored(session_factory) == 8
    # One commit per batch: the second was not split up and written item by item.
    assert len(committed) == 2


def test_check_ins_whose_batch_deadlocks_are_all_stored(
    writer, credentials, clock, session_factory, engine, committed, caplog
):
    """On PostgreSQL a batch's devices are updated by one statement, which takes their rows
    in the order the planner visits them. Another transaction taking the same rows in
    another order can then deadlock with it; the database ends that by failing one of the
    two. If that is the batch, its check-ins are written one by one: all are stored, and
    neither transaction's changes are lost."""
    import threading

    from sqlalchemy import update
    from sqlalchemy.exc import OperationalError

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's one write lock is held by one transaction at a time")
    with session_factory() as session:
        ids = [session.scalar(select(Device.id).where(Device.credential_hash == hash_token(c)))
               for c in credentials[:2]]  # fmt: skip
    outcomes: list = []
    batch = threading.Thread(target=lambda: outcomes.extend(
        asyncio.run(_together(writer, [_report(c, clock) for c in credentials[:2]]))
    ))  # fmt: skip
    # The owner renames both devices meanwhile: columns a check-in does not write, so both
    # changes must survive whichever of the two commits last.
    rename = update(Device).values(name="Renamed")
    with engine.connect() as other:
        # Its own deadlock check comes after the batch's (1 s), so it is the batch that is
        # failed, unless the batch's check ran before this one began to wait (a slow machine).
        other.execute(text("SET deadlock_timeout = '5s'"))
        other.execute(rename.where(Device.id == ids[1]))
        batch.start()
        assert blocked(other, batch), "the batch never waited for the second device"
        # If the batch took the first device before waiting, the two now wait for each other.
        try:
            other.execute(rename.where(Device.id == ids[0]))
        except OperationalError:
            other.rollback()
            renamed = False
        else:
            other.commit()
            renamed = True
    batch.join(30)
    assert not batch.is_alive()
    assert [o.error for o in outcomes] == [None, None]
    assert _stored(session_factory) == 2
    with session_factory() as session:
        devices = session.execute(
            select(Device.battery_percent, Device.name).where(Device.id.in_(ids))
        ).all()
    assert {battery for battery, _ in devices} == {70}
    if renamed:
        assert {name for _, name in devices} == {"Renamed"}
    # Deadlocked, the batch was written check-in by check-in: a commit each; else in one.
    one_by_one = "writing them one by one" in caplog.text
    assert len(committed) == (2 if one_by_one else 1)


def test_two_batches_following_up_one_lost_device_mail_its_owner_once(
    writer, credentials, clock, session_factory, engine, keyring, monkeypatch
):
    """On PostgreSQL a batch's follow-ups run after its one statement, in a transaction of
    their own: they lock their devices first, so that another batch's follow-up of the same
    device (here, the other connection, telling the owner meanwhile) is waited for, and the
    owner gets one "your device is back" mail, not two."""
    import threading

    from smartprotect.accounts.models import User
    from smartprotect.mail.models import OutboxMessage

    if engine.dialect.name != "postgresql":
        pytest.skip("on SQLite the follow-ups run in the batch's own transaction")
    with session_factory() as session:
        device = session.scalar(
            select(Device).where(Device.credential_hash == hash_token(credentials[0]))
        )
        devices.set_lost(session=session, keyring=keyring, user=session.get(User, device.user_id),
                         device=device, lost=True, clock=clock)  # fmt: skip
        session.commit()
        device_id = device.id
    staged, locked = threading.Event(), threading.Event()
    real_stage = writer._stage

    def stage_then_pause(session, items):
        outcomes = real_stage(session, items)
        staged.set()
        assert locked.wait(10)
        return outcomes

    monkeypatch.setattr(writer, "_stage", stage_then_pause)
    outcomes: list = []
    batch = threading.Thread(target=lambda: outcomes.extend(
        asyncio.run(_together(writer, [_report(credentials[0], clock)]))
    ))  # fmt: skip
    batch.start()
    assert staged.wait(10)
    with engine.connect() as other:
        # Another batch's follow-up of the same device, between this batch's statement and
        # its follow-up: it holds the device and tells the owner.
        other.execute(select(Device.id).where(Device.id == device_id).with_for_update())
        locked.set()
        assert blocked(other, batch), "the batch's follow-up did not wait for the device"
        other.execute(
            Device.__table__.update()
            .where(Device.__table__.c.id == device_id)
            .values(found_notified_at=clock.now())
        )
        other.commit()
    batch.join(30)
    assert not batch.is_alive()
    assert [o.error for o in outcomes] == [None]
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
