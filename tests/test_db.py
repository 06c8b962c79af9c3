"""The schema: migrations match the models on both engines; SQLite runs in WAL mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from smartprotect import migrations
from smartprotect.db import Base, UTCDateTime


def test_migrations_are_at_head_and_match_the_models(engine):
    assert migrations.is_up_to_date(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], "models changed without a migration: run alembic --autogenerate"


def test_sqlite_uses_wal_and_foreign_keys(tmp_path):
    from smartprotect.config import Settings
    from smartprotect.db import make_engine

    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path}/wal.db"))
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_timestamps_come_back_as_utc_on_every_engine(db, clock, published_policy):
    from smartprotect.privacy.policy.models import PolicyDocument

    db.expire_all()
    document = db.get(PolicyDocument, published_policy["en"])
    assert document.published_at == clock.now()
    assert document.published_at.tzinfo is not None


def test_naive_timestamps_are_refused():
    column = UTCDateTime()
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2026, 1, 1), None)


def test_other_time_zones_are_stored_as_utc():
    almaty = timezone(timedelta(hours=5))

    class Dialect:
        name = "sqlite"

    stored = UTCDateTime().process_bind_param(datetime(2026, 1, 1, 5, tzinfo=almaty), Dialect())
    assert stored == datetime(2026, 1, 1, 0, 0)
    assert UTCDateTime().process_result_value(stored, Dialect()) == datetime(2026, 1, 1, tzinfo=UTC)


def test_bulk_writes_convert_values_as_the_orm_does(db, clock):
    import uuid

    from sqlalchemy import bindparam, insert, select, update

    from smartprotect.db import BulkWrite
    from smartprotect.privacy.keys.models import SubjectKey

    keys_table = SubjectKey.__table__
    store = BulkWrite(insert(keys_table), columns=("subject_id", "wrapped_key", "master_key_id",
                                                    "created_at"))  # fmt: skip
    subjects = [uuid.uuid4() for _ in range(3)]
    later = clock.now() + timedelta(hours=1)
    store.execute(db, [{"subject_id": s, "wrapped_key": bytes([n]) * 8, "master_key_id": "k1",
                        "created_at": clock.now()} for n, s in enumerate(subjects)])  # fmt: skip
    store.execute(db, [])
    destroy = BulkWrite(
        update(keys_table)
        .where(keys_table.c.subject_id == bindparam("subject"))
        .values(wrapped_key=None, destroyed_at=bindparam("at", type_=UTCDateTime()))
    )
    destroy.execute(db, [{"subject": subjects[0], "at": later}])
    rows = {row.subject_id: row for row in db.execute(select(keys_table))}
    assert set(rows) == set(subjects)
    assert rows[subjects[0]].wrapped_key is None and rows[subjects[0]].destroyed_at == later
    assert rows[subjects[1]].wrapped_key == b"\x01" * 8 and rows[subjects[1]].destroyed_at is None
    assert {row.created_at for row in rows.values()} == {clock.now()}
    assert all(row.created_at.tzinfo is not None for row in rows.values())


def test_bulk_writes_keep_every_value_as_it_was(db, clock):
    """Whatever a value holds (quotes, backslashes, braces, the word NULL, zero bytes), it
    comes back unchanged: on PostgreSQL written by one statement over array literals
    (`ArrayStatement`), on SQLite row by row (`BulkWrite`)."""
    import uuid

    from sqlalchemy import (
        Column,
        Integer,
        LargeBinary,
        MetaData,
        String,
        Table,
        event,
        insert,
        select,
    )  # fmt: skip
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.types import Uuid

    from smartprotect.db import ArrayStatement, BulkWrite, unnested

    table = Table(
        "bulk_samples", MetaData(),
        Column("id", Uuid, primary_key=True), Column("label", String(64)),
        Column("count", Integer), Column("blob", LargeBinary), Column("at", UTCDateTime),
        prefixes=["TEMPORARY"],
    )  # fmt: skip
    connection = db.connection()
    table.create(connection)
    keys = ("id", "label", "count", "blob", "at")
    on_postgres = connection.dialect.name == "postgresql"
    if on_postgres:
        rows_in = unnested("rows_in", **{key: table.c[key].type for key in keys})
        over_arrays = ArrayStatement(
            insert(table).from_select(keys, select(*[rows_in.c[key] for key in keys]))
        )

        def store(rows):
            assert over_arrays.execute(db, **{k: [row[k] for row in rows] for k in keys}) == []
    else:
        row_by_row = BulkWrite(insert(table), columns=keys)

        def store(rows):
            row_by_row.execute(db, rows)

    labels = ['say "hi"', "back\\slash\\", "a, {b}", "NULL", "", "юникод ✓", "it's", "  ", None]
    blobs = [b"\x00\\\"'{},", b"", None, bytes(range(256))]
    rows = [
        {"id": uuid.uuid4(), "label": label, "count": n - 4 if n % 3 else None,
         "blob": blobs[n % len(blobs)],
         "at": None if n == 2 else clock.now() + timedelta(microseconds=n * 7)}
        for n, label in enumerate(labels)
    ]  # fmt: skip
    executemany = []

    def heard(*args):
        executemany.append(args[5])

    event.listen(connection, "before_cursor_execute", heard)
    store(rows)
    event.remove(connection, "before_cursor_execute", heard)
    # One statement on PostgreSQL; executemany (one call, many rows) on SQLite.
    assert executemany == [not on_postgres]
    stored = {row.id: row._asdict() for row in db.execute(select(table))}
    assert stored == {row["id"]: row for row in rows}
    if on_postgres:
        # Too long for its column: refused, as row by row, not cut short.
        with pytest.raises(DBAPIError, match="too long"):
            store([{**rows[0], "id": uuid.uuid4(), "label": "x" * 65}])
        db.rollback()
        return
    table.drop(connection)


def test_array_statements_return_their_rows_converted(db):
    """A statement over arrays gives back its rows, converted by their columns' types; it
    needs PostgreSQL."""
    import uuid

    from sqlalchemy import select
    from sqlalchemy.types import Uuid

    from smartprotect.db import ArrayStatement, UTCDateTime, unnested

    pairs = unnested("pairs", id=Uuid(), at=UTCDateTime())
    statement = ArrayStatement(select(pairs.c.id, pairs.c.at))
    ids = [uuid.uuid4(), uuid.uuid4()]
    times = [datetime(2026, 11, 26, 23, 0, tzinfo=UTC), None]
    if db.connection().dialect.name != "postgresql":
        with pytest.raises(NotImplementedError, match="PostgreSQL"):
            statement.execute(db, id=ids, at=times)
        return
    assert statement.execute(db, id=ids, at=times) == list(zip(ids, times, strict=True))
    assert statement.execute(db, id=[], at=[]) == []


def test_driver_reads_convert_values_and_lists_as_the_orm_does(db, clock):
    import uuid

    from sqlalchemy import bindparam, insert, select

    from smartprotect.db import BulkWrite, DriverRead
    from smartprotect.privacy.keys.models import SubjectKey

    keys_table = SubjectKey.__table__
    subjects = [uuid.uuid4() for _ in range(5)]
    BulkWrite(insert(keys_table), columns=("subject_id", "wrapped_key", "master_key_id",
                                           "created_at")).execute(
        db, [{"subject_id": s, "wrapped_key": b"k", "master_key_id": "k1",
              "created_at": clock.now() + timedelta(minutes=n)} for n, s in enumerate(subjects)]
    )  # fmt: skip

    def build(n: int):
        return select(keys_table.c.subject_id, keys_table.c.created_at).where(
            keys_table.c.subject_id.in_(
                [bindparam(f"item_{i}", type_=keys_table.c.subject_id.type) for i in range(n)]
            ),
            keys_table.c.created_at >= bindparam("since", type_=UTCDateTime()),
        )

    read = DriverRead(build)
    # Three of the five asked for (padded to four in the statement), two of them late enough.
    rows = read.all(db, items=subjects[:3], since=clock.now() + timedelta(minutes=1))
    assert sorted(rows) == sorted(
        [(subjects[1], clock.now() + timedelta(minutes=1)),
         (subjects[2], clock.now() + timedelta(minutes=2))]
    )  # fmt: skip
    assert all(isinstance(subject, uuid.UUID) and at.tzinfo for subject, at in rows)
    assert read.all(db, items=[uuid.uuid4()], since=clock.now()) == []
    assert {n for _, n in read._prepared} == {4, 1}


def test_driver_errors_are_sqlalchemys_and_heard_by_listeners(db):
    from sqlalchemy import event, select
    from sqlalchemy.exc import DBAPIError

    from smartprotect.db import DriverRead

    heard: list[str] = []
    listener = lambda *args: heard.append(args[2])  # noqa: E731
    event.listen(db.get_bind(), "before_cursor_execute", listener)
    try:
        with pytest.raises(DBAPIError):  # SQLAlchemy's, whichever the driver
            DriverRead(lambda _: select(text("* FROM no_such_table"))).all(db)
    finally:
        event.remove(db.get_bind(), "before_cursor_execute", listener)
    assert heard and "no_such_table" in heard[-1]


def test_a_transaction_is_run_once_more_only_when_its_connection_was_lost():
    import asyncio

    from sqlalchemy.exc import OperationalError

    from smartprotect.db import once_more_if_lost

    def failing(lost_times: int, *, invalidated: bool):
        attempts: list[int] = []

        async def transaction() -> str:
            attempts.append(1)
            if len(attempts) <= lost_times:
                raise OperationalError("SELECT 1", None, Exception("gone"),
                                       connection_invalidated=invalidated)  # fmt: skip
            return "stored"

        return transaction, attempts

    transaction, attempts = failing(1, invalidated=True)
    assert asyncio.run(once_more_if_lost(transaction)) == "stored" and len(attempts) == 2
    transaction, attempts = failing(2, invalidated=True)
    with pytest.raises(OperationalError):
        asyncio.run(once_more_if_lost(transaction))
    assert len(attempts) == 2
    transaction, attempts = failing(1, invalidated=False)
    with pytest.raises(OperationalError):
        asyncio.run(once_more_if_lost(transaction))
    assert len(attempts) == 1


def test_time_ordered_ids_are_version_7_and_sort_by_creation(monkeypatch):
    import time as time_module

    from smartprotect.db import time_ordered_id

    moments = iter([1_700_000_000_000_000_000, 1_700_000_000_001_000_000])
    monkeypatch.setattr(time_module, "time_ns", lambda: next(moments))
    first, second = time_ordered_id(), time_ordered_id()
    assert first.version == 7 and second.version == 7
    assert first.variant == second.variant == "specified in RFC 4122"
    assert first.int >> 80 == 1_700_000_000_000  # milliseconds since the epoch
    assert first < second  # a millisecond later sorts later, whatever the random bits
    monkeypatch.undo()
    assert len({time_ordered_id().int & (1 << 62) - 1 for _ in range(1000)}) == 1000
    # Within one millisecond they still sort in the order they were made.
    monkeypatch.setattr(time_module, "time_ns", lambda: 1_800_000_000_000_000_000)
    same_moment = [time_ordered_id() for _ in range(1000)]
    assert same_moment == sorted(same_moment) and len(set(same_moment)) == 1000
    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in same_moment)


def test_scrub_empties_the_sqlite_log_and_waits_for_readers_only_as_long_as_told(tmp_path):
    import time

    from smartprotect.config import Settings
    from smartprotect.db import make_engine, scrub

    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path}/scrub.db"))
    wal = tmp_path / "scrub.db-wal"
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
        connection.exec_driver_sql("INSERT INTO t VALUES ('secret')")
    reader = engine.raw_connection()
    reader.driver_connection.execute("BEGIN")
    reader.driver_connection.execute("SELECT * FROM t").fetchall()  # holds a snapshot
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM t")
    started = time.monotonic()
    assert scrub(engine, patience_ms=50) is False  # the reader still needs the old pages
    assert time.monotonic() - started < 2
    assert wal.stat().st_size > 0
    reader.driver_connection.execute("COMMIT")
    reader.close()
    assert scrub(engine) is True
    assert wal.stat().st_size == 0
    engine.dispose()


def test_the_unique_fix_migration_keeps_the_first_copy_of_each_fix(
    engine, session_factory, clock, keyring, published_policy
):
    """Before it, a check-in sent again stored its fixes twice; upgrading keeps the copy
    received first and makes (device, time) unique."""
    import uuid

    from alembic import command
    from sqlalchemy import insert, select

    from smartprotect.devices.models import DeviceLocation
    from tests.helpers import add_device, add_owner

    with session_factory() as session:
        owner = add_owner(session, clock=clock, keyring=keyring)
        device_id = add_device(session, keyring=keyring, clock=clock, owner=owner).id
        session.commit()

    def migrate(step, revision: str) -> None:
        config = migrations.alembic_config()
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            step(config, revision)

    migrate(command.downgrade, "dfb58898fc38")
    first_at, second_at = clock.now(), clock.now() + timedelta(seconds=1)
    rows = [  # (fixed_at, received_at, marker): two copies of one fix, and another fix
        (first_at, second_at, b"copy"), (first_at, first_at, b"first"),
        (second_at, second_at, b"other"),
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(DeviceLocation.__table__), [
            {"id": uuid.uuid4(), "device_id": device_id, "fixed_at": fixed, "received_at": got,
             "sealed": marker} for fixed, got, marker in rows
        ])  # fmt: skip
    migrate(command.upgrade, "head")
    with engine.connect() as connection:
        kept = connection.execute(
            select(DeviceLocation.__table__.c.sealed).order_by(DeviceLocation.fixed_at)
        ).scalars().all()  # fmt: skip
    assert kept == [b"first", b"other"]
    assert migrations.is_up_to_date(engine)
