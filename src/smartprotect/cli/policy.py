"""`smartprotect policy ...`: publishing privacy policy revisions."""

from __future__ import annotations

from pathlib import Path

import click

from smartprotect.cli.context import runtime
from smartprotect.db import unit_of_work
from smartprotect.errors import SmartProtectError
from smartprotect.i18n import LANGUAGES


@click.group()
def policy() -> None:
    """Manage privacy policy revisions."""


@policy.command()
@click.option("--version", "version", required=True, help="Revision identifier, e.g. 2017-06-15.")
@click.option("--lang", "language", required=True, type=click.Choice(LANGUAGES))
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="UTF-8 text of the revision in that language.",
)
def publish(version: str, language: str, path: Path) -> None:
    """Publish one language's text of a policy revision (immutable once published)."""
    from smartprotect.privacy.policy import service

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path} is not UTF-8 text.") from exc
    rt = runtime()
    rt.require_current_schema()
    try:
        with unit_of_work(rt.session_factory) as session:
            document, created = service.publish(
                session=session, version=version, language=language, text=text, clock=rt.clock
            )
            summary = f"{document.version} ({document.language}) sha256={document.sha256}"
    except SmartProtectError as exc:
        detail = exc.message % exc.params if exc.params else exc.message
        errors = "; ".join(f"{k}: {v}" for k, v in getattr(exc, "errors", {}).items())
        raise click.ClickException(f"{detail} {errors}".strip()) from exc
    click.echo(("Published " if created else "Already published, unchanged: ") + summary)
