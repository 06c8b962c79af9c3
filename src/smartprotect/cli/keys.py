"""`smartprotect keys ...`: the master key and the subjects' data keys."""

from __future__ import annotations

from pathlib import Path

import click

from smartprotect.cli.context import runtime


@click.group()
def keys() -> None:
    """Manage the master key that wraps every subject's data key."""


@keys.command()
def generate() -> None:
    """Print a new random master key (base64), for a key file or SMARTPROTECT_MASTER_KEY."""
    from smartprotect.privacy.keys.master import new_key_text

    click.echo(new_key_text())


@keys.command()
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the new master key; the current one comes from the settings.",
)
def rotate(new_key_file: Path) -> None:
    """Re-wrap every data key under a new master key, in one transaction."""
    from smartprotect.audit import service as audit
    from smartprotect.audit.tags import Tag
    from smartprotect.db import unit_of_work
    from smartprotect.privacy.keys import service
    from smartprotect.privacy.keys.master import MasterKeyError, from_settings, read_key_file

    rt = runtime()
    rt.require_current_schema()
    try:
        old = from_settings(rt.settings)
        new = read_key_file(new_key_file)
    except MasterKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    if old.key_id == new.key_id:
        raise click.ClickException("the new master key is the one already in use")
    try:
        with unit_of_work(rt.session_factory) as session:
            count = service.rewrap_all(session=session, old=old, new=new)
            audit.record_event(
                session=session,
                clock=rt.clock,
                action=Tag.KEYS_ROTATED,
                actor=audit.CLI,
                secret=rt.settings.secret_key.get_secret_value(),
                details={"from": old.key_id, "to": new.key_id, "data_keys": count},
            )
    except MasterKeyError as exc:
        raise click.ClickException(f"nothing changed: {exc}") from exc
    click.echo(
        f"Re-wrapped {count} data key(s) from master key {old.key_id} to {new.key_id}. "
        "Now configure the new key (SMARTPROTECT_MASTER_KEY_FILE) and restart."
    )


@keys.command()
def check() -> None:
    """Check that the configured master key unwraps the stored data keys."""
    from smartprotect.privacy.keys import service
    from smartprotect.privacy.keys.master import MasterKeyError, from_settings

    rt = runtime()
    rt.require_current_schema()
    try:
        master = from_settings(rt.settings)
        with rt.session_factory() as session:
            service.check_master_key(session=session, master=master)
    except MasterKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Master key {master.key_id} unwraps the stored data keys.")
