"""The audit log: a hash chain that shows any edited, removed or reordered row."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from smartprotect.audit import service as audit
from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.db import unit_of_work
from smartprotect.privacy.keys import service as keys


def _record(session, clock, keyring, *, subject=None, personal=None, action=Tag.ACCOUNT_LOGIN):
    return audit.record_event(
        session=session, clock=clock, action=action, actor="system", secret=keyring.secret,
        subject_id=subject, details={"channel": "web"}, personal=personal,
        master=keyring.master,
    )  # fmt: skip


def _chain(session_factory, clock, keyring, count=5):
    subject = uuid.uuid4()
    with unit_of_work(session_factory) as session:
        keys.create_key(session=session, master=keyring.master, subject_id=subject, clock=clock)
        for number in range(count):
            _record(session, clock, keyring, subject=subject, personal={"ip": f"10.0.0.{number}"})
    return subject


def test_each_row_is_chained_to_the_previous(session_factory, clock, keyring, db):
    _chain(session_factory, clock, keyring)
    rows = db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == "0" * 64
    for previous, row in itertools.pairwise(rows):
        assert row.prev_hash == previous.hash
        assert row.hash == audit.chain_hash(row.prev_hash, row)
    assert audit.verify_chain(session=db).ok


def test_personal_details_are_sealed_with_the_subjects_key(session_factory, clock, keyring, db):
    subject = _chain(session_factory, clock, keyring, count=1)
    row = db.scalar(select(AuditEvent))
    assert b"10.0.0.0" not in row.sealed_details
    assert str(subject) not in (row.subject or "")  # a pseudonym, not the id
    assert audit.read_personal(
        session=db, master=keyring.master, subject_id=subject, event=row
    ) == {"ip": "10.0.0.0"}
    keys.destroy_key(session=db, subject_id=subject, clock=clock)
    with pytest.raises(keys.KeyDestroyed):
        audit.read_personal(session=db, master=keyring.master, subject_id=subject, event=row)


def test_the_database_refuses_to_change_or_delete_audit_rows(session_factory, clock, keyring, db):
    _chain(session_factory, clock, keyring, count=2)
    for statement in (
        "UPDATE audit_events SET actor = 'someone else' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 2",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            unit_of_work(session_factory) as session,
        ):
            session.execute(text(statement))
    assert audit.verify_chain(session=db).ok


def _tamper(engine, statement: str) -> None:
    """What an attacker with the database's owner rights could do: lift the guard, edit."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
            connection.exec_driver_sql(statement)
            connection.exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")
        else:
            for name in ("audit_events_no_update", "audit_events_no_delete"):
                connection.exec_driver_sql(f"DROP TRIGGER {name}")
            connection.exec_driver_sql(statement)


@pytest.mark.parametrize(
    ("statement", "bad_seq"),
    [
        ("UPDATE audit_events SET action = 'account:user:logout' WHERE seq = 3", 3),
        ('UPDATE audit_events SET details = \'{"channel": "api"}\' WHERE seq = 2', 2),
        ("DELETE FROM audit_events WHERE seq = 4", 4),
        ("DELETE FROM audit_events WHERE seq = 5", 5),
    ],
)
def test_verify_names_the_first_tampered_row(
    session_factory, engine, clock, keyring, db, statement, bad_seq
):
    _chain(session_factory, clock, keyring)
    _tamper(engine, statement)
    result = audit.verify_chain(session=db)
    assert not result.ok and result.first_bad_seq == bad_seq


def test_a_recomputed_row_still_breaks_the_link_to_the_next(
    session_factory, engine, clock, keyring, db
):
    _chain(session_factory, clock, keyring)
    row = db.scalar(select(AuditEvent).where(AuditEvent.seq == 2))
    row.actor = "forged"
    forged_hash = audit.chain_hash(row.prev_hash, row)
    db.rollback()
    _tamper(
        engine,
        f"UPDATE audit_events SET actor = 'forged', hash = '{forged_hash}' WHERE seq = 2",  # noqa: S608
    )
    result = audit.verify_chain(session=db)
    assert not result.ok and result.first_bad_seq == 3


def test_concurrent_writers_keep_one_chain(session_factory, clock, keyring, db):
    import threading

    def writer():
        for _ in range(5):
            with unit_of_work(session_factory) as session:
                _record(session, clock, keyring)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = audit.verify_chain(session=db)
    assert result.ok and result.checked == 20


def test_a_rolled_back_event_leaves_no_gap(session_factory, clock, keyring, db):
    session = session_factory()
    _record(session, clock, keyring)
    session.rollback()
    session.close()
    with unit_of_work(session_factory) as session:
        _record(session, clock, keyring)
    result = audit.verify_chain(session=db)
    assert result.ok and result.checked == 1
