"""The agent's loop: take a fix, check in (sending fixes buffered while offline), sleep."""

from __future__ import annotations

import getpass
import json
import logging
import time
from pathlib import Path

import httpx

from smartprotect import __version__
from smartprotect.agent import client
from smartprotect.agent.backoff import reconnect_delay
from smartprotect.agent.constants import BUFFER_FILE, FIXES_PER_CHECK_IN, MAX_BUFFERED_FIXES
from smartprotect.agent.providers import LocationProvider
from smartprotect.agent.providers.fixed import FixedLocation
from smartprotect.agent.state import AgentState, load, write_private

log = logging.getLogger(__name__)


def battery_percent() -> int | None:
    """The battery's charge from sysfs, or None on a machine without one."""
    for supply in sorted(Path("/sys/class/power_supply").glob("BAT*")):
        try:
            return int((supply / "capacity").read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def local_accounts() -> list[str]:
    """Human login accounts on this machine (uid >= 1000, with a login shell)."""
    accounts = []
    try:
        for line in Path("/etc/passwd").read_text().splitlines():
            parts = line.split(":")
            human = len(parts) >= 7 and parts[2].isdigit() and 1000 <= int(parts[2]) < 65534
            if human and not parts[6].endswith(("nologin", "false")):
                accounts.append(parts[0])
    except OSError:
        accounts.append(getpass.getuser())
    return accounts


def provider_for(state: AgentState) -> LocationProvider | None:
    if state.fixed_location:
        latitude, longitude, accuracy = state.fixed_location
        return FixedLocation(latitude, longitude, accuracy)
    return None


class Agent:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state, self.credential = load(directory)
        self.provider = provider_for(self.state)

    # Fixes that could not be sent survive restarts in the state directory.
    def _buffer(self) -> list[dict]:
        path = self.directory / BUFFER_FILE
        return json.loads(path.read_text()) if path.exists() else []

    def _save_buffer(self, fixes: list[dict]) -> None:
        write_private(self.directory / BUFFER_FILE, json.dumps(fixes[-MAX_BUFFERED_FIXES:]))

    def cycle(self) -> dict:
        """One check-in; raises on failure, keeping the fix for the next attempt."""
        pending = self._buffer()
        if self.provider is not None and "locate" in self.state.capabilities:
            fix = self.provider.current()
            if fix is not None:
                pending.append(fix.as_json())
                self._save_buffer(pending)
        report: dict = {
            "agent_version": __version__,
            "battery_percent": battery_percent(),
            "locations": pending[:FIXES_PER_CHECK_IN],
        }
        if "report_accounts" in self.state.capabilities:
            report["accounts"] = local_accounts()
        answer = client.check_in(
            server=self.state.server, credential=self.credential, report=report
        )
        self._save_buffer(pending[FIXES_PER_CHECK_IN:])
        return answer

    def run(self, *, once: bool = False) -> None:
        attempt = 0
        while True:
            try:
                answer = self.cycle()
                attempt = 0
                delay = float(answer.get("check_in_after_seconds", self.state.check_in_seconds))
                log.info("checked in; next in %ss", delay)
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if once:
                    raise
                delay = reconnect_delay(attempt)
                attempt += 1
                log.warning("server unreachable (%s); retrying in %.0fs", exc, delay)
            if once:
                return
            time.sleep(delay)
