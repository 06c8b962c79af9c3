"""`smartprotect rights request ...`: a user's rights request received by email (clauses 7.1
and 7.2), handed to the account's owner to confirm through a link mailed to their address."""

from __future__ import annotations

import click

from smartprotect.cli.context import runtime
from smartprotect.privacy.rights.requests import Action


@click.group()
def rights() -> None:
    """Requests about personal data received by email."""


@rights.command("request")
@click.argument("action", type=click.Choice([action.value for action in Action]))
@click.option("--email", required=True, help="The account's address, as the request gave it.")
@click.option("--ticket", required=True, help="Your reference for the request (a ticket).")
def request(action: str, email: str, ticket: str) -> None:
    """Mail the account's owner a link to confirm ACTION; nothing is done until they do."""
    from smartprotect.audit import service as audit
    from smartprotect.db import unit_of_work
    from smartprotect.mail.links import Links
    from smartprotect.privacy.rights import requests

    rt = runtime()
    rt.require_current_schema()
    with unit_of_work(rt.session_factory) as session:
        found = requests.receive(
            session=session, keyring=rt.keyring, email=email, action=Action(action),
            ticket=ticket, operator=audit.CLI, clock=rt.clock,
            links=Links(base_url=rt.settings.base_url),
        )  # fmt: skip
    if not found:
        raise click.ClickException(
            "no account has this address: nothing was mailed (tell the sender we hold no data "
            "under it)"
        )
    click.echo(
        f"The account's owner was mailed a link to confirm '{action}' (valid "
        f"{requests.REQUEST_TTL.days} days); nothing happens until they do."
    )
