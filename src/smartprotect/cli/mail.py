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
