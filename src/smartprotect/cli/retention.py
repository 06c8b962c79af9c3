"""`smartprotect retention ...` and `smartprotect hold ...`: clause 2.4's one-year limit,
and the legal holds that are its only exception."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

import click

from smartprotect.cli.context import runtime
from smartprotect.privacy.retention.rules import Category

CATEGORY = click.Choice([category.value for category in Category])


@click.group()
def retention() -> None:
    """Destroy personal data past its retention, and report on what is held."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be destroyed; change nothing.")
def run(dry_run: bool) -> None:
    """Destroy everything past its retention that no legal hold spares (audited)."""
    from smartprotect.audit import service as audit
    from smartprotect.mail.links import Links
    from smartprotect.privacy.keys.master import keyring_from_settings
    from smartprotect.privacy.retention.job import run_retention

    rt = runtime()
    rt.require_current_schema()
    result = run_retention(
        session_factory=rt.session_factory, clock=rt.clock,
        keyring=keyring_from_settings(rt.settings), links=Links(base_url=rt.settings.base_url),
        actor=audit.CLI, dry_run=dry_run,
    )  # fmt: skip
    if result is None:
        raise click.ClickException("another server instance is running retention; try later")
    verb = "would destroy" if dry_run else "destroyed"
    for table in result.tables:
        click.echo(
            f"{table.rule.category.value:16} {table.rule.table:20} {verb} {table.destroyed}, "
            f"held {table.held}"
        )
    if not dry_run:
        if result.reminded:
            click.echo(f"Mailed {result.reminded} owner(s) whose account reaches its year soon.")
        click.echo("Counts per category are in the audit log (privacy:retention:run).")


@retention.command("report")
def report() -> None:
    """The oldest item of each category held, and anything overdue or held past its time."""
    from smartprotect.db import read_only_session
    from smartprotect.privacy.retention import service
    from smartprotect.privacy.retention.rules import rules

    rt = runtime()
    rt.require_current_schema()
    now = rt.clock.now()
    overdue_total = 0
    # Counting reads whole tables: from a snapshot, without holding SQLite's write lock.
    with read_only_session(rt.engine) as session:
        held = service.held_subjects(session=session, now=now)
        click.echo(f"{'category':16} {'table':20} {'kept':>8} {'oldest item':26} overdue  held")
        for rule in rules():
            due = service.due(session=session, rule=rule, now=now, held=held.get(rule.category, ()))
            oldest = "-"
            if due.oldest is not None:
                oldest = f"{due.oldest:%Y-%m-%d %H:%M} ({(now - due.oldest).days} d)"
            click.echo(
                f"{rule.category.value:16} {rule.table:20} {_days(rule.keep):>8} {oldest:26} "
                f"{due.overdue:7} {due.held:5}"
            )
            overdue_total += due.overdue
    if overdue_total:
        click.echo(f"{overdue_total} item(s) overdue: run `smartprotect retention run`.")


def _days(keep) -> str:
    return f"{keep.days} d" if keep.days else f"{int(keep.total_seconds() // 60)} min"


@click.group()
def hold() -> None:
    """Legal holds: data the law obliges us to keep past its retention (clauses 6.2, 7.1)."""


@hold.command("add")
@click.option("--subject", required=True, help="The user's email address or account id.")
@click.option("--category", "categories", multiple=True, required=True, type=CATEGORY)
@click.option("--reason", required=True, help="The legal ground: an order's or case's reference.")
@click.option("--until", "until", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last day of the hold (UTC).")  # fmt: skip
def add(subject: str, categories: tuple[str, ...], reason: str, until: datetime) -> None:
    """Place a hold on a user's data of some categories until a date."""
    from smartprotect.audit import service as audit
    from smartprotect.db import unit_of_work
    from smartprotect.errors import ValidationFailed
    from smartprotect.privacy.retention import service

    rt = runtime()
    rt.require_current_schema()
    ends_at = datetime.combine(until.date(), time.max, tzinfo=UTC)
    try:
        with unit_of_work(rt.session_factory) as session:
            subject_id = _subject(session, subject)
            placed = service.place_hold(
                session=session, clock=rt.clock, secret=rt.settings.secret_key.get_secret_value(),
                subject_id=subject_id, categories=[Category(c) for c in categories],
                reason=reason, ends_at=ends_at, placed_by=audit.CLI,
            )  # fmt: skip
            hold_id = placed.id
    except ValidationFailed as exc:
        raise click.ClickException(_problem(exc)) from exc
    click.echo(f"Hold {hold_id} placed on {', '.join(sorted(categories))} until {until:%Y-%m-%d}.")


@hold.command("list")
@click.option("--all", "include_ended", is_flag=True, help="Also released and ended holds.")
def list_(include_ended: bool) -> None:
    """The holds in force (or all of them)."""
    from smartprotect.db import read_only_session
    from smartprotect.privacy.retention import service

    rt = runtime()
    rt.require_current_schema()
    now = rt.clock.now()
    with read_only_session(rt.engine) as session:
        holds = service.list_holds(session=session, clock=rt.clock, include_ended=include_ended)
        if not holds:
            click.echo("No legal holds." if include_ended else "No legal holds in force.")
        for item in holds:
            state = "in force" if service.is_in_force(item, now) else (
                "released" if item.released_at else "ended")  # fmt: skip
            click.echo(
                f"{item.id}  subject {item.subject_id}  {','.join(item.categories)}  "
                f"until {item.ends_at:%Y-%m-%d}  {state}  reason: {item.reason}"
            )


@hold.command("release")
@click.argument("hold_id", type=click.UUID)
def release(hold_id: uuid.UUID) -> None:
    """End a hold now; the data it kept goes with the next retention run."""
    from smartprotect.audit import service as audit
    from smartprotect.db import unit_of_work
    from smartprotect.errors import NotFound, ValidationFailed
    from smartprotect.privacy.retention import service

    rt = runtime()
    rt.require_current_schema()
    try:
        with unit_of_work(rt.session_factory) as session:
            service.release_hold(
                session=session, clock=rt.clock, secret=rt.settings.secret_key.get_secret_value(),
                hold_id=hold_id, released_by=audit.CLI,
            )  # fmt: skip
    except (NotFound, ValidationFailed) as exc:
        raise click.ClickException(_problem(exc)) from exc
    click.echo(f"Hold {hold_id} released.")


def _subject(session, text: str) -> uuid.UUID:
    """An account by email or id; a hold can also name the id of an account since erased."""
    from smartprotect.accounts import service as accounts

    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    user = accounts.get_by_email(session=session, email=text)
    if user is None:
        raise click.ClickException(f"no account with the address {text}")
    return user.id


def _problem(exc) -> str:
    errors = getattr(exc, "errors", None)
    return "; ".join(str(message) for message in errors.values()) if errors else str(exc)
