"""The agent's state directory: what enrollment gave it, kept readable by its owner only."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from smartprotect.agent.actions.system import (
    DEFAULT_LOCK_COMMAND,
    DEFAULT_MESSAGE_COMMAND,
    DEFAULT_RING_COMMAND,
    DEFAULT_UNLOCK_COMMAND,
)
from smartprotect.agent.constants import CREDENTIAL_FILE, STATE_FILE
from smartprotect.agent.files import write_private


class NotEnrolled(RuntimeError):
    pass


@dataclass
class AgentState:
    server: str
    device_id: str
    capabilities: list[str]
    command_public_key: str
    check_in_seconds: int
    wipe_paths: list[str] = field(default_factory=list)
    fixed_location: list[float] | None = None
    # "host:port" of a gpsd to ask, or a recorded track (NMEA or GPX) to replay.
    gpsd: str | None = None
    replay_file: str | None = None
    ring_command: list[str] = field(default_factory=lambda: list(DEFAULT_RING_COMMAND))
    lock_command: list[str] = field(default_factory=lambda: list(DEFAULT_LOCK_COMMAND))
    unlock_command: list[str] = field(default_factory=lambda: list(DEFAULT_UNLOCK_COMMAND))
    # Shows the owner's lock message and phone number ({text}).
    message_command: list[str] = field(default_factory=lambda: list(DEFAULT_MESSAGE_COMMAND))


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/smartprotect-agent")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "smartprotect-agent"


def save(directory: Path, state: AgentState, credential: str | None = None) -> None:
    write_private(directory / STATE_FILE, json.dumps(asdict(state), indent=2))
    if credential is not None:
        write_private(directory / CREDENTIAL_FILE, credential)


def load(directory: Path) -> tuple[AgentState, str]:
    try:
        state = AgentState(**json.loads((directory / STATE_FILE).read_text()))
        credential = (directory / CREDENTIAL_FILE).read_text().strip()
    except FileNotFoundError:
        raise NotEnrolled(
            f"no agent is enrolled in {directory}; run `smartprotect agent enroll` first"
        ) from None
    return state, credential
