"""The retention job: destroys what is past its time, a chunk per transaction.

It runs inside the server on a schedule (`scheduler.py`) and on demand
(`smartprotect retention run`). Several server instances may start it at once: a lease in
the database lets one run at a time. Each chunk of rows is deleted in a short transaction
of its own, so check-ins and pages keep being served while millions of rows go; a run cut
short is simply finished by the next.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.db import unit_of_work
from smartprotect.privacy.retention import service
from smartprotect.privacy.retention.rules import Rule, rules

LEASE_NAME = "retention"
# Renewed after every chunk; a runner that died lets another take over after this long.
LEASE_TTL = timedelta(minutes=5)
# Rows deleted per transaction: large enough to be quick, small enough that a check-in
# waiting for SQLite's write lock waits only a few milliseconds.
CHUNK = 1_000

# After each chunk the job rests this many times as long as the chunk took: retention is
# never urgent, and check-ins need the write lock (and, on a small machine, the CPU) more.
REST = 1.0

log = logging.getLogger(__name__)


@dataclass
class TableResult:
    rule: Rule
    destroyed: int = 0  # or, in a dry run, would be
    held: int = 0


@dataclass
class RetentionResult:
    dry_run: bool
    tables: list[TableResult] = field(default_factory=list)
    # What holds had kept of erased accounts, destroyed because the holds ended.
    held_records_destroyed: int = 0

    def by_category(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for table in self.tables:
            count = counts.setdefault(table.rule.category.value, {"destroyed": 0, "held": 0})
            count["destroyed"] += table.destroyed
            count["held"] += table.held
        return dict(sorted(counts.items()))


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_retention(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    secret: str,
    actor: str = audit.SYSTEM,
    dry_run: bool = False,
    chunk: int = CHUNK,
) -> RetentionResult | None:
    """Destroy everything past its retention that no legal hold spares, and audit the count
    per category; None if another runner holds the job. A dry run only counts."""
    now = clock.now()  # one cut-off for the whole run
    holder = runner_name()
    if not dry_run:
        with unit_of_work(session_factory) as session:
            if not service.take_lease(
                session=session, name=LEASE_NAME, holder=holder, now=now, ttl=LEASE_TTL
            ):
                return None
    result = RetentionResult(dry_run=dry_run)
    try:
        with session_factory() as session:
            held = service.held_subjects(session=session, now=now)
            for rule in rules():
                found = service.due(
                    session=session, rule=rule, now=now, held=held.get(rule.category, ())
                )
                result.tables.append(
                    TableResult(rule=rule, held=found.held, destroyed=found.overdue)
                )
        if dry_run:
            return result
        for table in result.tables:
            table.destroyed = _destroy(session_factory, clock, table, held, now, holder, chunk)
        with unit_of_work(session_factory) as session:
            result.held_records_destroyed = service.destroy_unheld_records(
                session=session, clock=clock
            )
            audit.record_event(
                session=session, clock=clock, action=Tag.RETENTION_RUN, actor=actor,
                secret=secret,
                details={"as_of": now.isoformat(),
                         "categories": result.by_category(),
                         "tables": {t.rule.table: t.destroyed for t in result.tables},
                         "held_records_destroyed": result.held_records_destroyed},
            )  # fmt: skip
            service.release_lease(session=session, name=LEASE_NAME, holder=holder)
    except BaseException:
        _give_up_lease(session_factory, holder)
        raise
    return result


def _destroy(session_factory, clock, table: TableResult, held, now, holder, chunk) -> int:
    rule = table.rule
    destroyed = 0
    while True:
        started = time.monotonic()
        with unit_of_work(session_factory) as session:
            count = service.destroy_due(
                session=session, rule=rule, now=now, held=held.get(rule.category, ()),
                limit=chunk,
            )  # fmt: skip
            if not service.take_lease(
                session=session, name=LEASE_NAME, holder=holder, now=clock.now(), ttl=LEASE_TTL
            ):
                raise service.LeaseLost(LEASE_NAME)
        destroyed += count
        if count < chunk:
            return destroyed
        time.sleep((time.monotonic() - started) * REST)


def _give_up_lease(session_factory, holder: str) -> None:
    try:
        with unit_of_work(session_factory) as session:
            service.release_lease(session=session, name=LEASE_NAME, holder=holder)
    except Exception:
        log.exception("could not release the retention lease; it runs out by itself")
