"""`smartprotect agent ...`: the device agent (Linux first)."""

from __future__ import annotations

import logging
import platform as platform_module
import shlex
from pathlib import Path

import click

STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the agent keeps its state (default: /var/lib/smartprotect-agent as root, "
    "else ~/.local/state/smartprotect-agent).",
)


def _directory(state_dir: Path | None) -> Path:
    from smartprotect.agent.state import default_state_dir

    return state_dir or default_state_dir()


@click.group()
def agent() -> None:
    """Protect this machine: enroll it, then keep it checking in."""


@agent.command()
@click.option(
    "--server", required=True, help="The Smart Protect server, e.g. https://smprotect.com"
)
@click.option("--code", required=True, help="The enrollment code shown on the dashboard.")
@click.option(
    "--allow-wipe",
    is_flag=True,
    help="Let the owner wipe this machine remotely (off unless given, whatever the "
    "dashboard says).",
)
@click.option(
    "--wipe-path",
    "wipe_paths",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A directory a wipe removes; repeat for several.",
)
@click.option(
    "--wipe-preset",
    "wipe_presets",
    multiple=True,
    type=click.Choice(["browsers", "ssh", "keyrings", "mail", "documents"]),
    help="Add a preset of the current user's data to the wipe paths; repeat for several.",
)
@click.option(
    "--allow-root-path",
    "root_paths",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Allow a home or system root as a wipe path (it must also be given as --wipe-path).",
)
@click.option(
    "--fixed-location",
    help="This machine's location as LAT,LON[,ACCURACY_M], for machines without GPS.",
)
@click.option(
    "--gpsd",
    help="Ask gpsd for the location: HOST:PORT (the usual one is 127.0.0.1:2947).",
)
@click.option(
    "--replay",
    "replay_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replay a recorded NMEA or GPX track as the location (demonstrations, tests).",
)
@click.option("--ring-command", help="Command that plays {sound} (default: aplay -q {sound}).")
@click.option(
    "--lock-command", help="Command that locks the sessions (default: loginctl lock-sessions)."
)
@click.option(
    "--unlock-command", help="Command that unlocks them (default: loginctl unlock-sessions)."
)
@click.option(
    "--message-command",
    help="Command that shows the owner's lock message and phone ({text}) (default: a critical "
    "desktop notification with notify-send, in each graphical session).",
)
@STATE_DIR
def enroll(
    server: str,
    code: str,
    allow_wipe: bool,
    wipe_paths: tuple[Path, ...],
    wipe_presets: tuple[str, ...],
    root_paths: tuple[Path, ...],
    fixed_location: str | None,
    gpsd: str | None,
    replay_file: Path | None,
    ring_command: str | None,
    lock_command: str | None,
    unlock_command: str | None,
    message_command: str | None,
    state_dir: Path | None,
) -> None:
    """Enroll this machine with a one-time code from the dashboard."""
    from smartprotect.agent import client
    from smartprotect.agent.state import AgentState, save

    location = None
    if fixed_location:
        try:
            parts = [float(part) for part in fixed_location.split(",")]
        except ValueError:
            raise click.BadParameter(
                "give LAT,LON[,ACCURACY_M]", param_hint="--fixed-location"
            ) from None
        if len(parts) not in (2, 3) or not (-90 <= parts[0] <= 90 and -180 <= parts[1] <= 180):
            raise click.BadParameter("give LAT,LON[,ACCURACY_M]", param_hint="--fixed-location")
        location = [parts[0], parts[1], parts[2] if len(parts) == 3 else 100.0]
    if sum(bool(x) for x in (fixed_location, gpsd, replay_file)) > 1:
        raise click.UsageError("choose one of --fixed-location, --gpsd and --replay")
    if gpsd and not gpsd.rpartition(":")[2].isdigit():
        raise click.BadParameter("give HOST:PORT, e.g. 127.0.0.1:2947", param_hint="--gpsd")
    if (wipe_paths or wipe_presets) and not allow_wipe:
        raise click.UsageError("--wipe-path and --wipe-preset need --allow-wipe")
    from smartprotect.agent.actions import wipe

    candidates = list(wipe_paths)
    for preset in wipe_presets:
        candidates += wipe.preset_paths(preset, Path.home())
    try:
        checked_paths = wipe.check_paths(candidates, explicit_roots=list(root_paths))
    except wipe.UnsafeWipePath as exc:
        raise click.BadParameter(str(exc), param_hint="--wipe-path") from exc
    if allow_wipe and not checked_paths:
        raise click.UsageError("--allow-wipe needs at least one --wipe-path or --wipe-preset")
    allowed = ["locate", "ring", "lock", "report_accounts"] + (["wipe"] if allow_wipe else [])
    directory = _directory(state_dir)
    try:
        answer = client.enroll(
            server=server, code=code, platform=platform_module.system().lower(), allowed=allowed
        )
    except client.ServerRefused as exc:
        raise click.ClickException(f"enrollment refused: {exc}") from exc
    except Exception as exc:
        raise click.ClickException(f"cannot reach {server}: {exc}") from exc
    state = AgentState(
        server=server,
        device_id=answer["device_id"],
        capabilities=answer["capabilities"],
        command_public_key=answer["command_public_key"],
        check_in_seconds=answer["check_in_seconds"],
        wipe_paths=checked_paths,
        fixed_location=location,
        gpsd=gpsd,
        replay_file=str(replay_file.resolve()) if replay_file else None,
        **{
            name: shlex.split(value)
            for name, value in (
                ("ring_command", ring_command),
                ("lock_command", lock_command),
                ("unlock_command", unlock_command),
                ("message_command", message_command),
            )
            if value
        },
    )
    save(directory, state, credential=answer["credential"])
    click.echo(f"Enrolled as device {state.device_id} with: {', '.join(state.capabilities)}.")
    click.echo(f"State kept in {directory}. Start it with: smartprotect agent run")


# The server no longer knows this device's credential (wiped, removed, or revoked): running
# again cannot change that, so the shipped unit does not restart the agent on this status
# (RestartPreventExitStatus); enrolling again does.
EXIT_DEVICE_REFUSED = 3


class DeviceRefused(click.ClickException):
    exit_code = EXIT_DEVICE_REFUSED


@agent.command()
@click.option("--once", is_flag=True, help="Run one cycle and exit.")
@STATE_DIR
def run(once: bool, state_dir: Path | None) -> None:
    """Keep checking in and carrying out the owner's commands."""
    from smartprotect.agent import client
    from smartprotect.agent.runner import Agent
    from smartprotect.agent.state import NotEnrolled

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        agent_ = Agent(_directory(state_dir))
        agent_.run(once=once)
    except NotEnrolled as exc:
        raise click.ClickException(str(exc)) from exc
    except client.ServerRefused as exc:
        # Only the server's 401 says the credential is dead; a 403 on the way can come from
        # a proxy or a captive portal, and must not stop a stolen machine's agent.
        if exc.status_code == 401:
            raise DeviceRefused(f"the server refused this device: {exc}") from exc
        raise click.ClickException(f"the server refused this device: {exc}") from exc
    except Exception as exc:
        if not once:
            raise
        raise click.ClickException(f"check-in failed: {exc}") from exc
    if once:
        click.echo("Checked in.")
