"""`smartprotect serve`: the web server."""

from __future__ import annotations

import gc

import click

from smartprotect.cli.context import runtime

# Python's cycle collector goes over its youngest objects whenever 700 more have been made
# than freed. A server under load always has that many alive for a moment (64 requests in
# flight, a batch's rows), so the collector ran many times a second, over objects that
# reference counting would free anyway, and now and then over everything the server keeps:
# 3-8% of a device check-in's CPU, and its slowest answers (bench/README, session 10).
# Collecting less often only lets cyclic garbage wait a little longer.
YOUNG_GENERATION_THRESHOLD = 10_000


@click.command()
@click.option("--host", default=None, help="Interface to listen on (default from settings).")
@click.option("--port", default=None, type=int, help="Port (default from settings).")
def serve(host: str | None, port: int | None) -> None:
    """Run the web server."""
    import uvicorn
    from sqlalchemy import func, select

    from smartprotect.app import create_app
    from smartprotect.config import InsecureSettings
    from smartprotect.devices.signing import command_key_from_settings
    from smartprotect.privacy.keys.master import MasterKeyError, keyring_from_settings
    from smartprotect.privacy.keys.service import check_master_key
    from smartprotect.privacy.policy.models import PolicyRevision
    from smartprotect.signing import SigningKeyError

    rt = runtime()
    settings = rt.settings
    try:
        settings.check_safe_to_serve()
    except InsecureSettings as exc:
        raise click.ClickException(str(exc)) from exc
    rt.require_current_schema()
    try:
        keyring = keyring_from_settings(settings)
        with rt.session_factory() as session:
            check_master_key(session=session, master=keyring.master)
        command_key = command_key_from_settings(settings)
    except (MasterKeyError, SigningKeyError) as exc:
        raise click.ClickException(f"cannot start: {exc}") from exc
    host = host or settings.host
    port = port or settings.port
    with rt.session_factory() as session:
        published = session.scalar(select(func.count()).select_from(PolicyRevision)) or 0
    click.echo(f"Smart Protect is serving on http://{host}:{port}/ ({settings.env.value} mode)")
    if not published:
        click.echo(
            "No privacy policy is published yet, so registration is closed. Publish one with:\n"
            "  .venv/bin/smartprotect policy publish --version 2017-06-15 \\\n"
            "      --en policy/2017-06-15.en.txt --ru policy/2017-06-15.ru.txt"
        )
    app = create_app(settings, engine=rt.engine, keyring=keyring, command_key=command_key)
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        # Access logs would record one-time links (/password-reset/<token>) and client
        # addresses; the audit log records what matters, without them.
        access_log=False,
        log_level="info",
    )
