"""`smartprotect retention` and `smartprotect hold` as an operator runs them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.clock import FrozenClock
from smartprotect.devices.models import DeviceLocation
from smartprotect.privacy.retention.models import LegalHold
from tests.cli.test_cli import _invoke
from tests.cli.test_keys_and_audit import _env
from tests.helpers import add_device, add_owner, report_fix


@pytest.fixture
def old_fixes(db, keyring, published_policy):
    """An owner whose phone reported a fix 400 days ago (by the real clock) and one today."""
    clock = FrozenClock(datetime.now(UTC) - timedelta(days=400))
    owner = add_owner(db, clock=clock, keyring=keyring, email="held@example.kz")
    phone = add_device(db, keyring=keyring, clock=clock, owner=owner)
    report_fix(db, keyring=keyring, clock=clock, device=phone)
    clock.set(datetime.now(UTC))
    report_fix(db, keyring=keyring, clock=clock, device=phone)
    db.commit()
    return owner


def _fixes(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(DeviceLocation))


def _row(output: str, table: str) -> str:
    return next(line for line in output.splitlines() if f" {table} " in line)


def test_report_dry_run_and_run(database_url, tmp_path, db, old_fixes):
    env = _env(database_url, tmp_path)
    report = _invoke(["retention", "report"], env)
    assert report.exit_code == 0, report.output
    assert re.search(
        r"geolocation\s+device_locations\s+365 d\s+\S+ \S+ \(400 d\)\s+1\s+0", report.output
    )
    assert "2 item(s) overdue" in report.output  # the fix, and the code that enrolled the phone

    dry = _invoke(["retention", "run", "--dry-run"], env)
    assert "would destroy 1, held 0" in _row(dry.output, "device_locations")
    assert _fixes(db) == 2

    run = _invoke(["retention", "run"], env)
    assert run.exit_code == 0, run.output
    assert "destroyed 1, held 0" in _row(run.output, "device_locations")
    assert _fixes(db) == 1
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == Tag.RETENTION_RUN)).one()
    assert event.actor == "cli" and event.details["categories"]["geolocation"]["destroyed"] == 1
    assert "overdue:" not in _invoke(["retention", "report"], env).output


def test_a_hold_placed_listed_honoured_and_released(database_url, tmp_path, db, old_fixes):
    env = _env(database_url, tmp_path)
    until = (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%d")
    added = _invoke(["hold", "add", "--subject", "held@example.kz", "--category",
                     "geolocation", "--reason", "Investigation 6.2, case 77-1", "--until", until],
                    env)  # fmt: skip
    assert added.exit_code == 0, added.output
    hold_id = re.search(r"Hold (\S+) placed", added.output).group(1)
    listed = _invoke(["hold", "list"], env).output
    assert hold_id in listed and "in force" in listed and "case 77-1" in listed

    run = _invoke(["retention", "run"], env)
    assert "destroyed 0, held 1" in _row(run.output, "device_locations")
    assert _fixes(db) == 2

    assert _invoke(["hold", "release", hold_id], env).exit_code == 0
    assert "No legal holds in force." in _invoke(["hold", "list"], env).output
    assert "released" in _invoke(["hold", "list", "--all"], env).output
    _invoke(["retention", "run"], env)
    assert _fixes(db) == 1
    tags = set(db.scalars(select(AuditEvent.action)))
    assert {Tag.HOLD_PLACED, Tag.HOLD_RELEASED} <= tags


def test_bad_holds_are_refused_and_write_nothing(database_url, tmp_path, db, old_fixes):
    env = _env(database_url, tmp_path)
    past = _invoke(["hold", "add", "--subject", "held@example.kz", "--category", "email",
                    "--reason", "x", "--until", "2020-01-01"], env)  # fmt: skip
    assert past.exit_code != 0 and "must end in the future" in past.output
    nobody = _invoke(["hold", "add", "--subject", "nobody@example.kz", "--category", "email",
                      "--reason", "x", "--until", "2999-01-01"], env)  # fmt: skip
    assert nobody.exit_code != 0 and "no account" in nobody.output
    unknown = _invoke(["hold", "add", "--subject", "held@example.kz", "--category", "dna",
                       "--reason", "x", "--until", "2999-01-01"], env)  # fmt: skip
    assert unknown.exit_code != 0
    assert _invoke(["hold", "release", "00000000-0000-0000-0000-000000000000"], env).exit_code
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(LegalHold)) == 0
