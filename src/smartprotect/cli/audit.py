"""`smartprotect audit ...`: checking the tamper-evident audit log."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from smartprotect.cli.context import runtime


@click.group()
def audit() -> None:
    """Verify and anchor the audit log."""


@audit.command()
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also check that the chain still contains this previously printed anchor.",
)
def verify(anchor_file: Path | None) -> None:
    """Walk the hash chain and name the first row that does not match."""
    from smartprotect.audit import anchor as anchors
    from smartprotect.audit import service

    rt = runtime()
    rt.require_current_schema()
    with rt.session_factory() as session:
        result = service.verify_chain(session=session)
        if not result.ok:
            click.echo(
                f"TAMPERED: audit row {result.first_bad_seq}: {result.reason} "
                f"({result.checked} row(s) before it verified)",
                err=True,
            )
            sys.exit(1)
        if anchor_file is not None:
            try:
                anchor = anchors.Anchor.from_json(anchor_file.read_text())
                anchors.verify_signature(anchor)
            except anchors.AnchorError as exc:
                raise click.ClickException(str(exc)) from exc
            if service.row_hash(session=session, seq=anchor.seq) != anchor.head_hash:
                click.echo(
                    f"TAMPERED: audit row {anchor.seq} differs from the anchor signed at "
                    f"{anchor.signed_at}",
                    err=True,
                )
                sys.exit(1)
    click.echo(f"OK: {result.checked} audit row(s) verified; head {result.head_hash}")


@audit.command()
def anchor() -> None:
    """Print the chain head signed with Ed25519, to keep outside the database."""
    from smartprotect.audit import anchor as anchors
    from smartprotect.audit import service

    rt = runtime()
    rt.require_current_schema()
    try:
        key = anchors.signing_key_from_settings(rt.settings)
    except anchors.AnchorError as exc:
        raise click.ClickException(str(exc)) from exc
    with rt.session_factory() as session:
        result = service.verify_chain(session=session)
    if not result.ok:
        raise click.ClickException(
            f"refusing to anchor a broken chain: row {result.first_bad_seq}: {result.reason}"
        )
    signed = anchors.sign(
        key=key, seq=result.checked, head_hash=result.head_hash, signed_at=rt.clock.now()
    )
    click.echo(signed.to_json())
