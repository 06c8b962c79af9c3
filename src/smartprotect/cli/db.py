"""`smartprotect db ...`: schema migrations."""

from __future__ import annotations

import click

from smartprotect.cli.context import runtime


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Apply migrations up to the latest (or the given) revision."""
    from smartprotect import migrations

    rt = runtime()
    migrations.upgrade(rt.engine, revision)
    click.echo(f"Database at revision {migrations.current_revision(rt.engine)}.")


@db.command()
def current() -> None:
    """Show the schema revision of the database and whether it is the latest."""
    from smartprotect import migrations

    rt = runtime()
    current_rev = migrations.current_revision(rt.engine)
    head = migrations.head_revision()
    state = "up to date" if current_rev == head else f"behind (latest is {head})"
    click.echo(f"{current_rev or 'empty'}: {state}")
