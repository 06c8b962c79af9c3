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
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.db import read_only_session, scrub, unit_of_work
from smartprotect.mail import render
from smartprotect.mail import service as mail
from smartprotect.mail.links import Links
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.retention import service
from smartprotect.privacy.retention.rules import RETENTION, Rule, rules

LEASE_NAME = "retention"
# Renewed after every chunk; a runner that died lets another take over after this long.
LEASE_TTL = timedelta(minutes=5)
# Rows deleted per transaction: large enough to be quick, small enough that a check-in
# waiting for SQLite's write lock waits only a few milliseconds.
CHUNK = 1_000

# Accounts are reminded this many per transaction; past their time, they are erased one per
# transaction, looked up this many at a time.
ACCOUNTS_CHUNK = 100
# How long before an account reaches its year its owner is mailed, to give their details again.
RENEWAL_NOTICE = timedelta(days=30)
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
    # Owners mailed that their account reaches its time soon.
    reminded: int = 0

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
    keyring: Keyring,
    links: Links,
    actor: str = audit.SYSTEM,
    dry_run: bool = False,
    chunk: int = CHUNK,
    stop: threading.Event | None = None,
) -> RetentionResult | None:
    """Destroy everything past its retention that no legal hold spares, and audit the count
    per category; None if another runner holds the job. A dry run only counts.

    Accounts whose address was last given a year ago are erased whole, once a reminder
    mailed to it is `RENEWAL_NOTICE` old. Setting `stop` ends the run after the current
    chunk (a server shutting down); the next run finishes the work."""
    secret = keyring.secret
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
        # Counting reads millions of rows: from a snapshot, without SQLite's write lock.
        with session_factory() as session:
            engine = session.get_bind()
        with read_only_session(engine) as session:
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
        _renew(session_factory, clock, holder)  # counting may have taken a while
        result.reminded = _remind(session_factory, keyring, clock, links, now)
        _renew(session_factory, clock, holder)
        for table in result.tables:
            if stop is not None and stop.is_set():
                raise Stopped
            if table.rule.erases_account:
                table.held = 0  # erasure itself keeps what a hold holds, in a held record
                table.destroyed = _erase_accounts(session_factory, keyring, clock, table.rule,
                                                  now, holder)  # fmt: skip
            else:
                table.destroyed = _destroy(session_factory, clock, table, now, holder,
                                           chunk, stop)  # fmt: skip
        with unit_of_work(session_factory) as session:
            result.held_records_destroyed = service.destroy_unheld_records(
                session=session, clock=clock
            )
            audit.record_event(
                session=session, clock=clock, action=Tag.RETENTION_RUN, actor=actor,
                secret=secret,
                details={"as_of": now.isoformat(),
                         "categories": result.by_category(),
                         "tables": {f"{t.rule.table}:{t.rule.category.value}": t.destroyed
                                    for t in result.tables},
                         "held_records_destroyed": result.held_records_destroyed,
                         "reminded": result.reminded},
            )  # fmt: skip
            service.release_lease(session=session, name=LEASE_NAME, holder=holder)
        # Finish emptying SQLite's log after erasures whose request could not wait for it.
        scrub(engine)
    except BaseException:
        _give_up_lease(session_factory, holder)
        raise
    return result


class Stopped(Exception):
    """The run was asked to stop between chunks."""


def _renew(session_factory, clock: Clock, holder: str) -> None:
    with unit_of_work(session_factory) as session:
        if not service.take_lease(session=session, name=LEASE_NAME, holder=holder,
                                  now=clock.now(), ttl=LEASE_TTL):  # fmt: skip
            raise service.LeaseLost(LEASE_NAME)


def _destroy(session_factory, clock, table: TableResult, now, holder, chunk, stop=None) -> int:
    rule = table.rule
    destroyed, after = 0, None
    while True:
        started = time.monotonic()
        with unit_of_work(session_factory) as session:
            # Holds are read again for every chunk: one placed during a long run counts at once.
            held = service.held_subjects(session=session, now=clock.now())
            done = service.destroy_due(
                session=session, rule=rule, now=now, held=held.get(rule.category, ()),
                limit=chunk, after=after,
            )  # fmt: skip
            if not service.take_lease(
                session=session, name=LEASE_NAME, holder=holder, now=clock.now(), ttl=LEASE_TTL
            ):
                raise service.LeaseLost(LEASE_NAME)
        destroyed, after = destroyed + done.destroyed, done.last
        if not done.more:
            return destroyed
        if stop is not None and stop.is_set():
            raise Stopped
        time.sleep((time.monotonic() - started) * REST)


def _remind(session_factory, keyring: Keyring, clock: Clock, links: Links, now) -> int:
    """Mail owners whose address reaches its year within RENEWAL_NOTICE, a batch per
    transaction (the first run after this rule came in may find thousands)."""
    reminded = 0
    while True:
        with unit_of_work(session_factory) as session:
            users = service.accounts_to_remind(session=session, now=now, notice=RENEWAL_NOTICE,
                                               limit=ACCOUNTS_CHUNK)  # fmt: skip
            for user in users:
                # Never sooner than RENEWAL_NOTICE from now (an account past its year when
                # this began is told first, and erased a notice later).
                ends = max(user.email_provided_at + RETENTION, now + RENEWAL_NOTICE)
                subject, body = render.render(
                    "renewal_reminder", language=user.language,
                    date=ends.strftime("%Y-%m-%d"),
                    link=links.to("/account/profile#renew", user.language),
                )  # fmt: skip
                mail.enqueue_for(
                    session=session, user=user, subject=subject, body_text=body, clock=clock
                )
                # Marks it told: the next batch's query no longer finds it.
                user.renewal_reminded_at = now
        reminded += len(users)
        if len(users) < ACCOUNTS_CHUNK:
            return reminded


def _erase_accounts(session_factory, keyring: Keyring, clock: Clock, rule, now, holder) -> int:
    """Erase, one transaction each, the accounts whose address is past its time and whose
    owners were told at least RENEWAL_NOTICE before."""
    from smartprotect.privacy.rights import erasure

    erased = 0
    while True:
        with unit_of_work(session_factory) as session:
            ids = service.accounts_due(session=session, rule=rule, now=now,
                                       notice=RENEWAL_NOTICE, limit=ACCOUNTS_CHUNK)  # fmt: skip
        for user_id in ids:
            with unit_of_work(session_factory) as session:
                user = service.lock_if_due(session=session, rule=rule, user_id=user_id,
                                           now=now, notice=RENEWAL_NOTICE)  # fmt: skip
                if user is not None:
                    erasure.erase_account(session=session, keyring=keyring, user=user,
                                          clock=clock)  # fmt: skip
                    erased += 1
                if not service.take_lease(session=session, name=LEASE_NAME, holder=holder,
                                          now=clock.now(), ttl=LEASE_TTL):  # fmt: skip
                    raise service.LeaseLost(LEASE_NAME)
        if len(ids) < ACCOUNTS_CHUNK:
            return erased


def _give_up_lease(session_factory, holder: str) -> None:
    try:
        with unit_of_work(session_factory) as session:
            service.release_lease(session=session, name=LEASE_NAME, holder=holder)
    except Exception:
        log.exception("could not release the retention lease; it runs out by itself")
