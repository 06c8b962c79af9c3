"""`smartprotect compliance ...`: the clause map of the privacy policy, with live evidence."""

from __future__ import annotations

import sys

import click

from smartprotect.cli.context import runtime
from smartprotect.i18n import LANGUAGES, N_

INDENT = "    "
HEADING = N_("Clause map of the Privacy Policy, revision of 15/06/2017")
GENERATED = N_("Generated %(now)s")
STATUS = N_("Status")
CONTROLS = N_("Controls")
TESTS = N_("Tests")
REASON = N_("Reason")
EVIDENCE = N_("Evidence")
UNAVAILABLE = N_("unavailable: %(error)s")
SUMMARY = N_(
    "Clauses: %(total)s; enforced: %(enforced)s, partial: %(partial)s, planned: %(planned)s, "
    "informational: %(informational)s"
)


@click.group()
def compliance() -> None:
    """Show how the service keeps its privacy policy."""


@compliance.command()
@click.option(
    "--lang",
    "language",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="Language of the report.",
)
def report(language: str) -> None:
    """Print every clause with its status, controls, tests and evidence from the database.

    Exits with status 1 if a piece of evidence could not be computed.
    """
    from smartprotect.i18n import gettext_for
    from smartprotect.privacy.clauses import CLAUSES, STATUS_LABELS, Status
    from smartprotect.privacy.evidence import EVIDENCE as FACTS

    rt = runtime()
    rt.require_current_schema()
    _ = gettext_for(language)
    now = rt.clock.now()

    needed = list(dict.fromkeys(name for clause in CLAUSES for name in clause.evidence))
    lines: dict[str, str] = {}
    failures = 0
    with rt.session_factory() as session:
        for name in needed:
            try:
                # A savepoint, so that one failed query leaves the others their transaction.
                with session.begin_nested():
                    lines[name] = FACTS[name](session=session, clock=rt.clock).render(_)
            except Exception as exc:
                failures += 1
                lines[name] = _(UNAVAILABLE) % {"error": f"{type(exc).__name__}: {exc}"}
        session.rollback()

    click.echo(_(HEADING))
    click.echo(_(GENERATED) % {"now": now.strftime("%Y-%m-%d %H:%M UTC")})
    for clause in CLAUSES:
        click.echo()
        click.echo(f"{clause.number}  {_(clause.title)}")
        click.echo(f"{INDENT}{_(STATUS)}: {_(STATUS_LABELS[clause.status])}")
        if clause.reason:
            click.echo(f"{INDENT}{_(REASON)}: {_(clause.reason)}")
        for label, items in ((CONTROLS, clause.controls), (TESTS, clause.tests)):
            if items:
                click.echo(f"{INDENT}{_(label)}:")
                for item in items:
                    click.echo(f"{INDENT}  {item}")
        if clause.evidence:
            click.echo(f"{INDENT}{_(EVIDENCE)}:")
            for name in clause.evidence:
                click.echo(f"{INDENT}  - {lines[name]}")

    counts = {status.value: 0 for status in Status}
    for clause in CLAUSES:
        counts[clause.status.value] += 1
    click.echo()
    click.echo(_(SUMMARY) % {"total": len(CLAUSES), **counts})
    if failures:
        click.echo(
            f"{failures} piece(s) of evidence could not be computed; see the lines above.",
            err=True,
        )
        sys.exit(1)
