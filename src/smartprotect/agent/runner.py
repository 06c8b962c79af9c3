"""The agent's loop: take a fix, check in (sending fixes buffered while offline), sleep."""

from __future__ import annotations

import getpass
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from smartprotect import __version__
from smartprotect.agent import client, verify
from smartprotect.agent.actions import system, wipe
from smartprotect.agent.backoff import reconnect_delay
from smartprotect.agent.constants import (
    BUFFER_FILE,
    EXECUTED_FILE,
    FIXES_PER_CHECK_IN,
    LONG_POLL_SECONDS,
    MAX_BUFFERED_FIXES,
    MAX_EXECUTED_REMEMBERED,
    RESULTS_FILE,
)
from smartprotect.agent.files import write_private
from smartprotect.agent.providers import LocationProvider
from smartprotect.agent.providers.fixed import FixedLocation
from smartprotect.agent.providers.gpsd import GpsdProvider
from smartprotect.agent.providers.replay import ReplayProvider
from smartprotect.agent.state import AgentState, load

log = logging.getLogger(__name__)
# The status of a check-in the server refused as invalid (its fixes, usually).
INVALID_INPUT = 422


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


def _state(outcome: dict) -> str:
    return "succeeded" if outcome.get("ok") else "failed"


def provider_for(state: AgentState) -> LocationProvider | None:
    if state.gpsd:
        host, _, port = state.gpsd.rpartition(":")
        return GpsdProvider(host or "127.0.0.1", int(port))
    if state.replay_file:
        return ReplayProvider(Path(state.replay_file))
    if state.fixed_location:
        latitude, longitude, accuracy = state.fixed_location
        return FixedLocation(latitude, longitude, accuracy)
    return None


class Agent:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state, self.credential = load(directory)
        self.provider = provider_for(self.state)
        # Whether the last check-in carried a fix taken for it (a locate's answer).
        self._fix_sent = False

    # Fixes that could not be sent survive restarts in the state directory.
    def _buffer(self) -> list[dict]:
        path = self.directory / BUFFER_FILE
        return json.loads(path.read_text()) if path.exists() else []

    def _save_buffer(self, fixes: list[dict]) -> None:
        write_private(self.directory / BUFFER_FILE, json.dumps(fixes[-MAX_BUFFERED_FIXES:]))

    # -- commands ------------------------------------------------------------------------

    def _executed(self) -> list[str]:
        path = self.directory / EXECUTED_FILE
        return json.loads(path.read_text()) if path.exists() else []

    def _remember(self, command_id: str) -> None:
        executed = [*self._executed(), command_id]
        write_private(
            self.directory / EXECUTED_FILE, json.dumps(executed[-MAX_EXECUTED_REMEMBERED:])
        )

    def _results(self) -> list[dict]:
        path = self.directory / RESULTS_FILE
        return json.loads(path.read_text()) if path.exists() else []

    def _queue_result(self, command_id: str, state: str, result: dict) -> None:
        results = [*self._results(), {"command_id": command_id, "state": state, "result": result}]
        write_private(self.directory / RESULTS_FILE, json.dumps(results))

    def _send_results(self) -> None:
        """Send every result not yet acknowledged; what cannot be sent waits for next time."""
        results = self._results()
        while results:
            item = results[0]
            try:
                client.report_command(server=self.state.server, credential=self.credential, **item)
            except client.ServerRefused as exc:
                log.warning("server refused a result for %s: %s", item["command_id"], exc)
            results.pop(0)
            write_private(self.directory / RESULTS_FILE, json.dumps(results))

    def _obey(self, commands: list[dict]) -> list[str]:
        """Run the commands that pass verification; returns the ids of those asking for a
        fix (`_answer_locates` sends one)."""
        locates = []
        for command in commands:
            try:
                payload = verify.check(
                    command, public_key=self.state.command_public_key,
                    device_id=self.state.device_id, now=datetime.now(UTC),
                    executed=set(self._executed()),
                )  # fmt: skip
            except verify.Rejected as exc:
                log.warning("refused a command: %s", exc)
                continue
            command_id, kind, params = payload["command_id"], payload["kind"], payload["params"]
            if kind == "wipe":
                self._wipe(command_id)
                continue
            # Remembered before running: a command is never run twice, even after a crash.
            self._remember(command_id)
            if kind == "locate":
                locates.append(command_id)
            elif kind == "ring":
                outcome = system.ring(self.state.ring_command, self.directory)
                self._queue_result(command_id, _state(outcome), outcome)
            elif kind == "lock":
                outcome = system.lock(
                    self.state.lock_command, self.directory,
                    message=params.get("message", ""), phone=params.get("phone", ""),
                    message_command=self.state.message_command,
                )  # fmt: skip
                self._queue_result(command_id, _state(outcome), outcome)
            elif kind == "unlock":
                outcome = system.run(self.state.unlock_command)
                self._queue_result(command_id, _state(outcome), outcome)
        return locates

    def _answer_locates(self, locates: list[str]) -> dict:
        """Check in at once with a fresh fix for these locate commands, report whether one
        was sent, and run what that check-in brings; returns its answer."""
        answer = self._check_in()
        locates = [*locates, *self._obey(answer.get("commands", []))]
        # A locate in the new answer is answered by the fix just sent, the newest there is.
        for command_id in locates:
            self._queue_result(command_id, "succeeded" if self._fix_sent else "failed",
                               {"fix_sent": self._fix_sent})  # fmt: skip
        return answer

    def _wipe(self, command_id: str) -> None:
        if "wipe" not in self.state.capabilities or not self.state.wipe_paths:
            self._remember(command_id)
            self._queue_result(command_id, "failed", {"error": "wipe not allowed here"})
            return
        # The decision is recorded first, then the id: a crash between them still ends
        # with the wipe finished after the restart (`_finish_wipe`), never forgotten.
        wipe.commit(self.directory, command_id, self.state.wipe_paths)
        self._remember(command_id)
        self._queue_result(command_id, "running", {"committed": True})
        self._send_results_quietly()
        self._finish_wipe()

    def _finish_wipe(self) -> None:
        journal = wipe.pending(self.directory)
        if journal is None:
            return
        if journal["command_id"] not in self._executed():
            self._remember(journal["command_id"])
        summary = wipe.execute(self.directory, journal["paths"])
        self._queue_result(journal["command_id"], "succeeded", summary)

    def _send_results_quietly(self) -> None:
        try:
            self._send_results()
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:
            log.warning("results kept for later: %s", exc)

    def cycle(self) -> dict:
        """One check-in, then the commands it brought; raises if the server is unreachable,
        keeping fixes and results for the next attempt."""
        self._finish_wipe()  # a wipe interrupted by a restart goes on first
        self._send_results_quietly()
        answer = self._check_in()
        if locates := self._obey(answer.get("commands", [])):
            answer = self._answer_locates(locates)
        self._send_results()
        return answer

    def _check_in(self) -> dict:
        pending = self._buffer()
        self._fix_sent = False
        if self.provider is not None and "locate" in self.state.capabilities:
            fix = self.provider.current()
            if fix is not None:
                pending.append(fix.as_json())
                self._save_buffer(pending)
                self._fix_sent = True
        report: dict = {
            "agent_version": __version__,
            "battery_percent": battery_percent(),
            "locations": pending[:FIXES_PER_CHECK_IN],
        }
        if "report_accounts" in self.state.capabilities:
            report["accounts"] = local_accounts()
        try:
            answer = client.check_in(
                server=self.state.server, credential=self.credential, report=report
            )
        except client.ServerRefused as exc:
            if exc.status_code != INVALID_INPUT or not report["locations"]:
                raise
            # Fixes the server will never take (from a clock far ahead, say) are dropped,
            # not sent again forever; the check-in goes on without them.
            log.warning("the server refused %d fixes, dropped: %s", len(report["locations"]), exc)
            self._save_buffer(pending[FIXES_PER_CHECK_IN:])
            self._fix_sent = False
            answer = client.check_in(
                server=self.state.server, credential=self.credential,
                report={**report, "locations": []},
            )  # fmt: skip
            return answer
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
                if once:
                    return
                # Between check-ins, wait on the server so commands arrive at once.
                self._listen(until=time.monotonic() + delay)
                continue
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if once:
                    raise
                delay = reconnect_delay(attempt)
                attempt += 1
                log.warning("server unreachable (%s); retrying in %.0fs", exc, delay)
            time.sleep(delay)

    def _listen(self, *, until: float) -> None:
        while (remaining := until - time.monotonic()) > 0:
            answer = client.poll(
                server=self.state.server, credential=self.credential,
                wait=min(remaining, LONG_POLL_SECONDS),
            )  # fmt: skip
            commands = answer.get("commands", [])
            if not commands and answer.get("woken_by") == "notification":
                return  # woken with nothing to run (marked lost or found): check in now
            if locates := self._obey(commands):
                self._answer_locates(locates)
            self._send_results_quietly()
