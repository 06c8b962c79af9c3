"""Ring, lock and the owner's message through system commands."""

from __future__ import annotations

import json
import os
import pwd
import select
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest

from smartprotect.agent.actions import system


def test_as_a_system_service_the_message_appears_in_each_graphical_session(monkeypatch):
    listed = {
        ("loginctl", "list-sessions", "--no-legend"):
            "  2 1000 aigerim seat0 tty2\n  5 1001 daniyar seat0 tty3\n c1  120 gdm seat0 tty1\n",
        ("loginctl", "show-session", "2"): "Type=wayland\nUser=1000\nName=aigerim\n",
        ("loginctl", "show-session", "5"): "Type=tty\nUser=1001\nName=daniyar\n",
        ("loginctl", "show-session", "c1"): "Type=x11\nUser=120\nName=gdm\n",
    }  # fmt: skip
    monkeypatch.setattr(system, "_output", lambda argv: listed.get(tuple(argv[:3]), ""))
    ran: list[list[str]] = []
    monkeypatch.setattr(system, "run", lambda argv, **_: ran.append(argv) or {"ok": True})
    monkeypatch.setattr(system.os, "geteuid", lambda: 0)
    assert system.graphical_sessions() == [(120, "gdm"), (1000, "aigerim")]
    assert system.show_message(system.DEFAULT_MESSAGE_COMMAND, text="Reward\n+7 701")
    assert ran[1] == ["runuser", "-u", "aigerim", "--", "env",
                      "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus", "notify-send",
                      "--urgency=critical", "--app-name=Smart Protect", "--", "Smart Protect",
                      "Reward\n+7 701"]  # fmt: skip


def test_without_a_session_to_show_it_in_the_lock_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(system, "_output", lambda argv: "")
    monkeypatch.setattr(system.os, "geteuid", lambda: 0)
    outcome = system.lock(["true"], tmp_path, message="Reward", phone="")
    assert outcome == {"ok": True, "exit_code": 0, "message_shown": False}


DESKTOP_TOOLS = ("Xvfb", "dbus-daemon", "dbus-send", "busctl", "dunst", "dunstctl",
                 "notify-send")  # fmt: skip
STARTUP_SECONDS = 10
# A session bus of the test's own. It starts no services on demand: a notification daemon
# that the bus started itself would not be on the test's display.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _announced(read_end: int, what: str) -> str:
    """What a starting program writes to the pipe once it is ready (its display, its
    bus's address). The pipe stays open: Xvfb may write to it again later."""
    ready, _, _ = select.select([read_end], [], [], STARTUP_SECONDS)
    announced = os.read(read_end, 4096).decode().strip() if ready else ""
    assert announced, f"{what} did not start"
    return announced


@pytest.fixture
def desktop(tmp_path):
    """A graphical session as the agent meets it on a laptop: an X display (Xvfb), the
    session's D-Bus, and a notification daemon (dunst) showing what is sent to it."""
    missing = [tool for tool in DESKTOP_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: `make test` installs Debian's "
                    "dunst, libnotify-bin, xvfb, dbus and systemd")  # fmt: skip
    processes: list[subprocess.Popen] = []
    pipes: list[int] = []

    def start(argv: list[str], **options) -> None:
        processes.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, **options))  # fmt: skip

    def announced_by(argv: list[str], what: str) -> str:
        """Start a program that writes to the file descriptor in its arguments ("{fd}")
        once it is ready; what it wrote. The pipe stays open until the end."""
        read_end, write_end = os.pipe()
        pipes.append(read_end)
        start([part.replace("{fd}", str(write_end)) for part in argv], pass_fds=[write_end])
        os.close(write_end)
        return _announced(read_end, what)

    try:
        # No reset when the last client goes: a reset would announce the display again.
        display = ":" + announced_by(["Xvfb", "-displayfd", "{fd}", "-noreset", "-nolisten",
                                      "tcp", "-screen", "0", "800x600x24"], "Xvfb")  # fmt: skip

        # Where a session's bus is, under a runtime directory of the test's own.
        bus_path = tmp_path / "run" / str(os.getuid()) / "bus"
        bus_path.parent.mkdir(parents=True)
        config = tmp_path / "bus.conf"
        config.write_text(BUS_CONFIG.format(address=f"unix:path={bus_path}"))
        bus = announced_by(["dbus-daemon", f"--config-file={config}", "--nofork",
                            "--print-address={fd}"], "the session bus").split(",")[0]  # fmt: skip

        config_home = tmp_path / "config"
        config_home.mkdir()
        env = {name: value for name, value in os.environ.items() if name != "WAYLAND_DISPLAY"}
        env.update(DISPLAY=display, DBUS_SESSION_BUS_ADDRESS=bus,
                   XDG_CONFIG_HOME=str(config_home))  # fmt: skip

        def dunstctl(*argv: str) -> str:
            return subprocess.run(["dunstctl", *argv], env=env, capture_output=True,
                                  text=True, check=True, timeout=10).stdout  # fmt: skip

        start(["dunst"], env=env)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                dunstctl("count", "displayed")
                break
            except subprocess.CalledProcessError:
                assert time.monotonic() < deadline, "the notification daemon did not start"
                time.sleep(0.05)
        yield SimpleNamespace(bus=bus, dunstctl=dunstctl)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for read_end in pipes:
            os.close(read_end)


# Starting with dashes, as a message might: not to be taken for an option.
MESSAGE, PHONE = "-- Reward for returning this laptop --", "+7 701 555 01 02"


def _lock_and_see_the_message(desktop, tmp_path) -> None:
    outcome = system.lock(["true"], tmp_path, message=MESSAGE, phone=PHONE)
    assert outcome == {"ok": True, "exit_code": 0, "message_shown": True}
    assert desktop.dunstctl("count", "displayed").strip() == "1"
    desktop.dunstctl("close-all")
    [shown] = json.loads(desktop.dunstctl("history"))["data"][0]
    # Critical: it stays on the screen until someone closes it (dunst's default for that
    # urgency is no timeout; a normal notification goes after 10 seconds).
    assert shown["timeout"]["data"] == 0
    assert shown["summary"]["data"] == "Smart Protect"
    assert shown["appname"]["data"] == "Smart Protect"
    assert shown["body"]["data"] == f"{MESSAGE}\n{PHONE}"


# Nothing below is faked but logind (not on this machine): the real notify-send, through the
# session's real D-Bus, to a real notification daemon on an X display.


def test_run_by_the_desktops_user_the_agent_shows_the_owners_message(
    desktop, monkeypatch, tmp_path
):
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.bus)
    _lock_and_see_the_message(desktop, tmp_path)


def test_as_a_system_service_the_agent_shows_the_owners_message_in_the_session(
    desktop, monkeypatch, tmp_path
):
    if os.geteuid() != 0:
        pytest.skip("a system service runs as root: runuser needs it")
    # logind's answer: one graphical session, this user's (the bus is theirs too).
    uid, user = 0, pwd.getpwuid(0).pw_name
    fake = tmp_path / "bin" / "loginctl"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = list-sessions ] && echo "  7 {uid} {user} seat0 tty7"\n'
        f'[ "$1" = show-session ] && printf "Type=x11\\nUser={uid}\\nName={user}\\n"\n'
        "exit 0\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    assert system.USER_BUS == "unix:path=/run/user/{uid}/bus"
    monkeypatch.setattr(system, "USER_BUS", desktop.bus.replace("/run/0/", "/run/{uid}/"))
    # The service's own environment has no session bus: it is found per session.
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert system.graphical_sessions() == [(uid, user)]
    _lock_and_see_the_message(desktop, tmp_path)
