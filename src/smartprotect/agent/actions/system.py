"""Ring, lock and unlock through configurable system commands."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import wave
from pathlib import Path

from smartprotect.agent.files import write_private

RING_SECONDS = 10
RING_FREQUENCY_HZ = 2000
SAMPLE_RATE = 22050
COMMAND_TIMEOUT_SECONDS = 60
DEFAULT_RING_COMMAND = ["aplay", "-q", "{sound}"]
DEFAULT_LOCK_COMMAND = ["loginctl", "lock-sessions"]
DEFAULT_UNLOCK_COMMAND = ["loginctl", "unlock-sessions"]
# Shows the owner's message where whoever holds the device sees it, even on the locked
# screen: a critical desktop notification ({text} is the message, then the phone number;
# after "--", so that a message starting with a dash is not taken for an option).
DEFAULT_MESSAGE_COMMAND = ["notify-send", "--urgency=critical", "--app-name=Smart Protect",
                           "--", "Smart Protect", "{text}"]  # fmt: skip
# Where a login session's D-Bus listens (systemd's user runtime directory).
USER_BUS = "unix:path=/run/user/{uid}/bus"


def alarm_tone(path: Path) -> Path:
    """A loud two-tone alarm as a WAV file, generated here rather than shipped."""
    if path.exists():
        return path
    frames = bytearray()
    for index in range(SAMPLE_RATE * RING_SECONDS):
        # Alternate between two pitches four times a second, like a siren.
        pitch = RING_FREQUENCY_HZ if (index * 4 // SAMPLE_RATE) % 2 else RING_FREQUENCY_HZ * 3 // 4
        sample = 32000 if math.sin(2 * math.pi * pitch * index / SAMPLE_RATE) >= 0 else -32000
        frames += struct.pack("<h", sample)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(frames))
    return path


def run(argv: list[str], *, env: dict[str, str] | None = None) -> dict:
    """Run a configured command; the result says whether it worked, never what it printed."""
    try:
        completed = subprocess.run(  # noqa: S603 - the owner's own configured command
            argv, env={**os.environ, **(env or {})}, capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": completed.returncode == 0, "exit_code": completed.returncode}


def ring(command: list[str], state_dir: Path) -> dict:
    sound = alarm_tone(state_dir / "alarm.wav")
    return run([part.replace("{sound}", str(sound)) for part in command])


def lock(
    command: list[str], state_dir: Path, *, message: str, phone: str,
    message_command: list[str] | None = None,
) -> dict:  # fmt: skip
    """Show the owner's message and phone number, then lock the sessions; the result says
    whether each worked."""
    text = "\n".join(part for part in (message, phone) if part)
    # Also for a lock screen of one's own: the file, and the lock command's environment.
    write_private(state_dir / "lock-message.txt", text + "\n")
    shown = show_message(message_command or DEFAULT_MESSAGE_COMMAND, text=text) if text else None
    outcome = run(
        command, env={"SMARTPROTECT_LOCK_MESSAGE": message, "SMARTPROTECT_LOCK_PHONE": phone}
    )
    return outcome if shown is None else {**outcome, "message_shown": shown}


def show_message(command: list[str], *, text: str) -> bool:
    """Run the message command with the text. The default one, a desktop notification, runs
    in each graphical session as its user when the agent runs as root (as a system service);
    any other runs as it is. True if it worked at least once."""
    argv = [part.replace("{text}", text) for part in command]
    if command != DEFAULT_MESSAGE_COMMAND or os.geteuid() != 0:
        return run(argv)["ok"]
    shown = False
    for uid, user in graphical_sessions():
        bus = "DBUS_SESSION_BUS_ADDRESS=" + USER_BUS.format(uid=uid)
        shown |= run(["runuser", "-u", user, "--", "env", bus, *argv])["ok"]
    return shown


def graphical_sessions() -> list[tuple[int, str]]:
    """The (uid, user name) of each graphical login session, from systemd-logind."""
    listed = _output(["loginctl", "list-sessions", "--no-legend"])
    found = []
    for line in listed.splitlines():
        session = line.split()[0] if line.split() else ""
        if not session:
            continue
        properties = dict(
            item.split("=", 1)
            for item in _output(["loginctl", "show-session", session, "-p", "Type",
                                 "-p", "User", "-p", "Name"]).splitlines()
            if "=" in item
        )  # fmt: skip
        if properties.get("Type") in ("x11", "wayland") and properties.get("User", "").isdigit():
            found.append((int(properties["User"]), properties.get("Name", "")))
    return sorted(set(found))


def _output(argv: list[str]) -> str:
    try:
        completed = subprocess.run(  # noqa: S603 - fixed system commands
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return completed.stdout if completed.returncode == 0 else ""
