"""`smartprotect policy ...`: publishing privacy policy revisions and who has accepted them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from smartprotect.cli.context import runtime
from smartprotect.db import unit_of_work
from smartprotect.errors import SmartProtectError
from smartprotect.i18n import LANGUAGES

TEXT_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path} is not UTF-8 text.") from exc


def _explain(exc: SmartProtectError) -> click.ClickException:
    detail = exc.message % exc.params if exc.params else exc.message
    errors = "; ".join(f"{k}: {v}" for k, v in getattr(exc, "errors", {}).items())
    return click.ClickException(f"{detail} {errors}".strip())


@click.group()
def policy() -> None:
    """Manage privacy policy revisions."""


@policy.command()
@click.option("--version", "version", required=True, help="Revision, e.g. 2017-06-15 or 2.1.")
@click.option("--en", "en_file", type=TEXT_FILE, help="The English text (UTF-8).")
@click.option("--ru", "ru_file", type=TEXT_FILE, help="The Russian text (UTF-8).")
@click.option(
    "--lang",
    "languages",
    multiple=True,
    type=click.Choice(LANGUAGES),
    help="With --file, repeated per language: --lang en --file a.txt --lang ru --file b.txt.",
)
@click.option("--file", "files", multiple=True, type=TEXT_FILE)
@click.option(
    "--date",
    "revision_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The date the revision carries (default: the version if it is a date, else today).",
)
def publish(
    version: str,
    en_file: Path | None,
    ru_file: Path | None,
    languages: tuple[str, ...],
    files: tuple[Path, ...],
    revision_date: dt.datetime | None,
) -> None:
    """Publish a revision, with its text in every site language; it is in force at once.

    Every user is mailed that it was posted, and sees it with accept or decline on their
    next visit to the site.
    """
    from smartprotect.mail.links import Links
    from smartprotect.privacy.keys.master import MasterKeyError, keyring_from_settings
    from smartprotect.privacy.policy import service

    if len(languages) != len(files):
        raise click.UsageError("give one --file for each --lang")
    paths = dict(zip(languages, files, strict=True))
    for language, path in (("en", en_file), ("ru", ru_file)):
        if path is not None:
            paths[language] = path
    missing = [language for language in LANGUAGES if language not in paths]
    if missing:
        raise click.UsageError(
            f"a revision is published in every site language at once; missing: "
            f"{', '.join(missing)} (use --en FILE --ru FILE)"
        )
    texts = {language: _read(path) for language, path in paths.items()}
    rt = runtime()
    rt.require_current_schema()
    try:
        keyring = keyring_from_settings(rt.settings)
    except MasterKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with unit_of_work(rt.session_factory) as session:
            revision, created = service.publish_revision(
                session=session,
                keyring=keyring,
                version=version,
                texts=texts,
                clock=rt.clock,
                revision_date=revision_date.date() if revision_date else None,
            )
            notified = 0
            if created:
                notified = service.notify_users(
                    session=session,
                    revision=revision,
                    clock=rt.clock,
                    links=Links(base_url=rt.settings.base_url),
                )
            digests = " ".join(f"{d.language}:{d.sha256}" for d in revision.documents)
    except SmartProtectError as exc:
        raise _explain(exc) from exc
    if not created:
        click.echo(f"Already published, unchanged: {version} {digests}")
        return
    click.echo(f"Published {version}, in force now. sha256 {digests}")
    click.echo(f"{notified} user(s) will be mailed that it was posted.")


@policy.command()
def pending() -> None:
    """Count the users who have not accepted the revision in force."""
    from sqlalchemy import func, select

    from smartprotect.accounts.models import User
    from smartprotect.privacy.policy import service

    rt = runtime()
    rt.require_current_schema()
    with rt.session_factory() as session:
        revision = service.in_force(session=session)
        if revision is None:
            click.echo("No revision is published.")
            return
        waiting = service.not_accepted(session=session, subject_ids=select(User.id)).subquery()
        count = session.scalar(select(func.count()).select_from(waiting))
        total = session.scalar(select(func.count()).select_from(User))
    click.echo(f"{count} of {total} user(s) have not accepted revision {revision.version}.")
