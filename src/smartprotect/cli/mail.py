"""`smartprotect mail ...`: the outbox."""

from __future__ import annotations

import click

from smartprotect.cli.context import runtime


@click.group()
def mail() -> None:
    """Outgoing mail."""


@mail.command("send-pending")
def send_pending() -> None:
    """Deliver every queued message that is due now."""
    from smartprotect.mail.service import deliver_pending

    rt = runtime()
    rt.require_current_schema()
    sent = deliver_pending(session_factory=rt.session_factory, settings=rt.settings, clock=rt.clock)
    click.echo(f"Sent {sent} message(s).")


@mail.command("send-marketing")
@click.option(
    "--en",
    "en_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The message in English: the subject on the first line, then the body.",
)
@click.option("--ru", "ru_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The same in Russian.")  # fmt: skip
def send_marketing(en_file: str, ru_file: str) -> None:
    """Queue a mailing to every user who consents to marketing mail now (clause 3.2), each in
    their language, with a one-click unsubscribe link (clause 7.2)."""
    from pathlib import Path

    from smartprotect.db import unit_of_work
    from smartprotect.mail import marketing
    from smartprotect.mail.links import Links
    from smartprotect.privacy.keys.master import keyring_from_settings

    rt = runtime()
    rt.require_current_schema()
    texts = {}
    for language, name in (("en", en_file), ("ru", ru_file)):
        subject, _, body = Path(name).read_text(encoding="utf-8").partition("\n")
        if not subject.strip() or not body.strip():
            raise click.ClickException(f"{name}: put the subject on the first line, then the body")
        texts[language] = (subject.strip(), body.strip())
    keyring, links = keyring_from_settings(rt.settings), Links(base_url=rt.settings.base_url)
    queued, after = 0, None
    while True:
        with unit_of_work(rt.session_factory) as session:  # a batch of recipients at a time
            count, after = marketing.send_campaign(
                session=session, keyring=keyring, texts=texts, clock=rt.clock, links=links,
                after=after,
            )  # fmt: skip
        queued += count
        if after is None:
            break
    click.echo(f"Queued {queued} message(s); the server sends them.")
