"""Exporting and erasing a user with one year of 5-minute location history (issue 5).

    .venv/bin/python bench/rights.py [--postgres] [--days 365] [--rounds 3]

One user, one device, a fix every 5 minutes for `--days` (105,120 fixes a year), each sealed
with the user's key as check-ins store them. Measured in-process, in the same run:

- **export**: the whole document streamed as JSON (every fix opened and encoded), against
  its baseline, reading the same rows without opening or encoding them;
- **erasure**: deleting the account (key destroyed, rows deleted, and on SQLite deleted
  content overwritten and the WAL emptied), against its baseline, a plain DELETE of the
  same rows with SQLite's secure_delete off and no checkpoint.

Each round works on a fresh copy of the account. Medians of the rounds are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The sibling benchmark's helpers (this script's folder is on the path when it runs).
from run import MASTER, SECRET, database
from sqlalchemy import delete, func, select

from smartprotect import migrations
from smartprotect.accounts import service as accounts
from smartprotect.accounts.models import User
from smartprotect.clock import FrozenClock
from smartprotect.config import Environment, Settings
from smartprotect.db import (
    BulkWrite,
    make_engine,
    make_session_factory,
    read_only_session,
    scrub,
    time_ordered_id,
    unit_of_work,
)
from smartprotect.devices.models import Device, DeviceLocation
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring, LocalMasterKey
from smartprotect.privacy.rights import erasure, export

EVERY = timedelta(minutes=5)
INSERT_BATCH = 10_000
_STORE = BulkWrite(DeviceLocation.__table__.insert())


def arrange(factory, keyring, clock, days: int) -> uuid.UUID:
    """A user and a phone with a fix every 5 minutes for `days`; returns the user's id."""
    with unit_of_work(factory) as session:
        user = accounts.create_user(
                    session=session, keyring=keyring, clock=clock,
                    email=f"{uuid.uuid4().hex[:8]}@example.kz", phone="+77010000000",
                    password_hash="x", language="en", created_at=clock.now(),
                    password_changed_at=clock.now(), last_name="Сейткали")  # fmt: skip
        device = Device(user_id=user.id, name="Phone", platform="android",
                        credential_hash=uuid.uuid4().hex, capabilities=["locate"],
                        enrolled_at=clock.now())  # fmt: skip
        session.add(device)
        session.flush()
        user_id, device_id = user.id, device.id
    start = clock.now() - timedelta(days=days)
    total = int(timedelta(days=days) / EVERY)
    for first in range(0, total, INSERT_BATCH):
        with unit_of_work(factory) as session:
            rows = []
            for index in range(first, min(first + INSERT_BATCH, total)):
                moment = start + index * EVERY
                row_id = time_ordered_id()
                point = {"latitude": 43.2 + index % 100 / 1e4, "longitude": 76.9,
                         "accuracy_m": 12.0, "method": "gps"}  # fmt: skip
                sealed = keys.encrypt_field(
                    session=session, master=keyring.master, subject_id=user_id,
                    table=DeviceLocation.__tablename__, column="sealed", row_id=row_id,
                    plaintext=json.dumps(point),
                )  # fmt: skip
                rows.append({"id": row_id, "device_id": device_id, "fixed_at": moment,
                             "received_at": moment, "sealed": sealed})  # fmt: skip
            _STORE.execute(session, rows)
    return user_id


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def one_round(engine, factory, keyring, clock, days: int) -> dict:
    user_id = arrange(factory, keyring, clock, days)
    size = 0

    def export_all() -> None:
        nonlocal size
        with read_only_session(engine, keyring=keyring) as session:
            user = session.get(User, user_id)
            doc = export.document(session=session, keyring=keyring, user=user, now=clock.now())
            size = sum(len(chunk.encode()) for chunk in export.stream_json(doc))

    def read_rows() -> None:
        with read_only_session(engine, keyring=keyring) as session:
            query = select(DeviceLocation).join(Device).where(Device.user_id == user_id)
            for _row in session.scalars(query.execution_options(yield_per=1000)):
                pass

    def erase() -> None:
        with unit_of_work(factory) as session:
            user = session.get(User, user_id)
            erasure.erase_account(session=session, keyring=keyring, user=user, clock=clock)
        scrub(engine)

    baseline_read = timed(read_rows)
    exported = timed(export_all)
    erased = timed(erase)
    # The erasure baseline: the same number of rows, deleted plainly.
    plain_user = arrange(factory, keyring, clock, days)

    def plain_delete() -> None:
        with unit_of_work(factory) as session:
            if engine.dialect.name == "sqlite":
                session.connection().exec_driver_sql("PRAGMA secure_delete=OFF")
            devices = select(Device.id).where(Device.user_id == plain_user)
            session.execute(
                delete(DeviceLocation).where(DeviceLocation.device_id.in_(devices)),
                execution_options={"synchronize_session": False},
            )

    baseline_delete = timed(plain_delete)
    with unit_of_work(factory) as session:
        session.execute(delete(Device).where(Device.user_id == plain_user))
        session.execute(delete(User).where(User.id == plain_user))
        left = session.scalar(select(func.count()).select_from(DeviceLocation))
    assert left == 0, left
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:  # the pool's connections keep secure_delete on
            connection.exec_driver_sql("PRAGMA secure_delete=ON")
    return {"export_s": round(exported, 2), "read_rows_s": round(baseline_read, 2),
            "export_mib": round(size / 2**20, 1), "erase_s": round(erased, 2),
            "plain_delete_s": round(baseline_delete, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sp-bench-rights-"))
    url = database(workdir, options.postgres)
    settings = Settings(env=Environment.DEVELOPMENT, database_url=url, secret_key=SECRET)
    engine = make_engine(settings)
    migrations.upgrade(engine)
    keyring = Keyring(master=LocalMasterKey(MASTER), secret=SECRET)
    factory = make_session_factory(engine, keyring=keyring)
    clock = FrozenClock(datetime.now(UTC))
    fixes = int(timedelta(days=options.days) / EVERY)
    print(f"{fixes:,} fixes a round on {engine.dialect.name}...", flush=True)
    rounds = []
    for _ in range(options.rounds):
        rounds.append(one_round(engine, factory, keyring, clock, options.days))
        print(json.dumps(rounds[-1]), flush=True)
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    median["export_vs_reading_rows"] = round(median["export_s"] / median["read_rows_s"], 1)
    median["erase_vs_plain_delete"] = round(median["erase_s"] / median["plain_delete_s"], 1)
    print(json.dumps({"engine": engine.dialect.name, "fixes": fixes, "cores": os.cpu_count(),
                      "rounds": rounds, "median": median}, indent=2))  # fmt: skip
    engine.dispose()


if __name__ == "__main__":
    main()
