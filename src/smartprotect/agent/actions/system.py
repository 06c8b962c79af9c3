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


def lock(command: list[str], state_dir: Path, *, message: str, phone: str) -> dict:
    # The owner's message for whoever holds the device, where a lock screen can show it.
    write_private(state_dir / "lock-message.txt", f"{message}\n{phone}\n".strip() + "\n")
    return run(
        command, env={"SMARTPROTECT_LOCK_MESSAGE": message, "SMARTPROTECT_LOCK_PHONE": phone}
    )
