"""Retention (clause 2.4): legal holds, and finding and destroying what is past its time.

The functions here work inside the caller's transaction and never commit; the retention
job (`job.py`) decides the transactions.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, literal, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.errors import NotFound, ValidationFailed
from smartprotect.i18n import N_
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.retention.models import HeldRecord, JobLease, LegalHold
from smartprotect.privacy.retention.rules import RETENTION, Category, Rule

# A hold needs a ground the DPO can check later.
REASON_MAX = 500

# -- legal holds ---------------------------------------------------------------------------


def place_hold(
    *,
    session: Session,
    clock: Clock,
    secret: str,
    subject_id: uuid.UUID,
    categories: Collection[Category],
    reason: str,
    ends_at: datetime,
    placed_by: str,
) -> LegalHold:
    """Keep a subject's data of these categories past its retention until `ends_at`."""
    now = clock.now()
    reason = reason.strip()
    errors = {}
    if not categories:
        errors["categories"] = N_("Name at least one category to hold.")
    if not reason:
        errors["reason"] = N_("Give the legal ground for the hold.")
    elif len(reason) > REASON_MAX:
        errors["reason"] = N_("The reason is too long.")
    if ends_at <= now:
        errors["ends_at"] = N_("A hold must end in the future.")
    if errors:
        raise ValidationFailed(errors)
    hold = LegalHold(
        subject_id=subject_id, categories=sorted({Category(c).value for c in categories}),
        reason=reason, placed_at=now, placed_by=placed_by, ends_at=ends_at,
    )  # fmt: skip
    session.add(hold)
    session.flush()
    audit.record_event(
        session=session, clock=clock, action=Tag.HOLD_PLACED, actor=placed_by, secret=secret,
        subject_id=subject_id,
        details={"hold": str(hold.id), "categories": hold.categories,
                 "ends_at": ends_at.isoformat()},
    )  # fmt: skip
    return hold


def release_hold(
    *, session: Session, clock: Clock, secret: str, hold_id: uuid.UUID, released_by: str
) -> LegalHold:
    """End a hold now; its data is then destroyed by the next run if past its time."""
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound(N_("No such legal hold."))
    if hold.released_at is not None:
        raise ValidationFailed({"hold": N_("This hold has been released already.")})
    hold.released_at = clock.now()
    hold.released_by = released_by
    audit.record_event(
        session=session, clock=clock, action=Tag.HOLD_RELEASED, actor=released_by,
        secret=secret, subject_id=hold.subject_id, details={"hold": str(hold.id)},
    )  # fmt: skip
    session.flush()
    return hold


def is_in_force(hold: LegalHold, now: datetime) -> bool:
    return hold.released_at is None and hold.ends_at > now


def list_holds(*, session: Session, clock: Clock, include_ended: bool = False) -> list[LegalHold]:
    """Holds in force (or all of them), newest first."""
    query = select(LegalHold).order_by(LegalHold.placed_at.desc())
    if not include_ended:
        query = query.where(LegalHold.released_at.is_(None), LegalHold.ends_at > clock.now())
    return list(session.scalars(query))


def held_subjects(*, session: Session, now: datetime) -> dict[Category, set[uuid.UUID]]:
    """For each category, the subjects whose data of it is under a hold in force."""
    held: dict[Category, set[uuid.UUID]] = {}
    for hold in session.scalars(
        select(LegalHold).where(LegalHold.released_at.is_(None), LegalHold.ends_at > now)
    ):
        for category in hold.categories:
            held.setdefault(Category(category), set()).add(hold.subject_id)
    return held


def destroy_unheld_records(*, session: Session, clock: Clock) -> int:
    """Destroy what holds kept of erased accounts once those holds are no longer in force,
    with the holds' keys; returns how many records went."""
    now = clock.now()
    ended = select(LegalHold.id).where(or_(LegalHold.released_at.is_not(None),
                                           LegalHold.ends_at <= now))  # fmt: skip
    records = list(session.scalars(select(HeldRecord).where(HeldRecord.hold_id.in_(ended))))
    for record in records:
        keys.destroy_key(session=session, subject_id=record.hold_id, clock=clock)
        session.delete(record)
    session.flush()
    return len(records)


# -- what is due ---------------------------------------------------------------------------


def _expired(rule: Rule, now: datetime):
    expired = rule.provided_at < now - rule.keep
    return expired if rule.where is None else expired & rule.where


def _spared(rule: Rule, held: Collection[uuid.UUID]):
    """The condition selecting the rule's rows that a hold spares, or None."""
    if not held or rule.of_subjects is None:
        return None
    return rule.of_subjects(held)


@dataclass(frozen=True)
class Chunk:
    """What one `destroy_due` did: how many rows it destroyed, whether more may be due, and
    where the next chunk starts (the provided-at and id of the last row it chose)."""

    destroyed: int
    more: bool
    last: tuple[datetime, uuid.UUID] | None


def destroy_due(
    *,
    session: Session,
    rule: Rule,
    now: datetime,
    held: Collection[uuid.UUID],
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> Chunk:
    """Delete (or, for an item of a row that lives on, empty) up to `limit` rows past their
    time and not held, oldest first, after the `after` of the previous chunk."""
    if rule.erases_account:
        raise ValueError("accounts are erased whole: retention.job erases them")
    # A bounded number at a time, so that each transaction stays short, in (provided-at, id)
    # order, each chunk starting where the last one stopped. Starting from the oldest again,
    # every chunk would step over all the index entries the earlier ones had deleted (until
    # vacuumed): each slower than the last.
    key = (rule.provided_at, rule.model.id)
    chosen = select(*key).where(*_due_unheld(rule, now, held))
    if after is not None:
        bound = (literal(value, column.type) for column, value in zip(key, after, strict=True))
        chosen = chosen.where(tuple_(*key) > tuple_(*bound))
    rows = session.execute(chosen.order_by(*key).limit(limit)).all()
    if not rows:
        return Chunk(destroyed=0, more=False, last=after)
    statement = (
        update(rule.model).values(dict.fromkeys(rule.clear)) if rule.clear else delete(rule.model)
    )
    result = session.execute(
        statement.where(rule.model.id.in_([row[1] for row in rows])),
        execution_options={"synchronize_session": False},
    )
    return Chunk(destroyed=result.rowcount or 0, more=len(rows) == limit, last=tuple(rows[-1]))


def _due_unheld(rule: Rule, now: datetime, held: Collection[uuid.UUID]) -> list:
    conditions = [_expired(rule, now)]
    spared = _spared(rule, held)
    if spared is not None:
        conditions.append(~spared)
    return conditions


def _erasable(rule: Rule, now: datetime, notice: timedelta) -> list:
    from smartprotect.accounts.models import User

    # Past its time, and its owner was mailed at least `notice` ago (and did nothing since:
    # giving the address again moves it out of `_expired`).
    return [_expired(rule, now), User.renewal_reminded_at.is_not(None),
            User.renewal_reminded_at <= now - notice]  # fmt: skip


def accounts_due(
    *, session: Session, rule: Rule, now: datetime, notice: timedelta, limit: int
) -> list[uuid.UUID]:
    """Accounts to erase: their address (`rule`) is past its time, and they were told."""
    return list(session.scalars(
        select(rule.model.id).where(*_erasable(rule, now, notice)).limit(limit)))  # fmt: skip


def lock_if_due(
    *, session: Session, rule: Rule, user_id: uuid.UUID, now: datetime, notice: timedelta
):
    """The account, locked, if it is still to be erased in this transaction; else None (its
    owner signed in or confirmed their details since it was listed)."""
    return session.scalar(
        select(rule.model).where(rule.model.id == user_id, *_erasable(rule, now, notice))
        .with_for_update()
    )  # fmt: skip


def accounts_to_remind(*, session: Session, now: datetime, notice: timedelta, limit: int) -> list:
    """Up to `limit` accounts whose address reaches its time within `notice`, and not told
    since it was last given."""
    from smartprotect.accounts.models import User

    soon = now + notice - RETENTION
    return list(session.scalars(select(User).where(
        User.email_provided_at <= soon,
        or_(User.renewal_reminded_at.is_(None),
            User.renewal_reminded_at < User.email_provided_at),
    ).order_by(User.id).limit(limit)))  # fmt: skip


@dataclass(frozen=True)
class Due:
    rule: Rule
    oldest: datetime | None
    overdue: int  # past their time and not held: the next run destroys them
    held: int  # past their time, spared by a hold


def due(*, session: Session, rule: Rule, now: datetime, held: Collection[uuid.UUID]) -> Due:
    """How much of a table is past its time, held or not, and its oldest item."""
    oldest = session.scalar(
        select(func.min(rule.provided_at)).where(*(() if rule.where is None else (rule.where,)))
    )
    expired = session.scalar(
        select(func.count()).select_from(rule.model).where(_expired(rule, now))
    )
    spared = _spared(rule, held)
    kept = 0
    if spared is not None and expired:
        kept = session.scalar(
            select(func.count()).select_from(rule.model).where(_expired(rule, now), spared)
        )
    return Due(rule=rule, oldest=oldest, overdue=(expired or 0) - kept, held=kept)


# -- one runner at a time ------------------------------------------------------------------


class LeaseLost(Exception):
    """Another runner took the job's lease: this one must stop."""


def take_lease(*, session: Session, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take (or renew) a job's lease until `now + ttl`, unless another runner holds it."""
    renewed = session.execute(
        update(JobLease)
        .where(JobLease.name == name, or_(JobLease.holder == holder, JobLease.expires_at <= now))
        .values(holder=holder, expires_at=now + ttl),
        execution_options={"synchronize_session": False},
    )
    if renewed.rowcount:
        return True
    if session.get(JobLease, name) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(JobLease(name=name, holder=holder, expires_at=now + ttl))
    except IntegrityError:
        return False  # another runner created it first
    return True


def release_lease(*, session: Session, name: str, holder: str) -> None:
    session.execute(
        delete(JobLease).where(JobLease.name == name, JobLease.holder == holder),
        execution_options={"synchronize_session": False},
    )
