"""The `smartprotect` command: the server, database and administration jobs."""

from __future__ import annotations

import click

from smartprotect.cli import (
    agent,
    audit,
    compliance,
    db,
    keys,
    mail,
    policy,
    retention,
    rights,
    serve,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smartprotect")
def main() -> None:
    """Smart Protect: Platinum Protection."""


main.add_command(serve.serve)
main.add_command(agent.agent)
main.add_command(db.db)
main.add_command(policy.policy)
main.add_command(mail.mail)
main.add_command(keys.keys)
main.add_command(audit.audit)
main.add_command(compliance.compliance)
main.add_command(retention.retention)
main.add_command(retention.hold)
main.add_command(rights.rights)
