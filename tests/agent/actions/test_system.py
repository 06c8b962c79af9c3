"""Ring, lock and the owner's message through system commands."""

from __future__ import annotations

import json
import os
import pwd
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
                      "--urgency=critical", "--app-name=Smart Protect", "Smart Protect",
                      "Reward\n+7 701"]  # fmt: skip


def test_without_a_session_to_show_it_in_the_lock_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(system, "_output", lambda argv: "")
    monkeypatch.setattr(system.os, "geteuid", lambda: 0)
    outcome = system.lock(["true"], tmp_path, message="Reward", phone="")
    assert outcome == {"ok": True, "exit_code": 0, "message_shown": False}


@pytest.fixture
def desktop(tmp_path):
    """A graphical session as the agent meets it on a laptop: an X display (Xvfb), the
    session's D-Bus, and a notification daemon (dunst) showing what is sent to it. Yields a
    function running `dunstctl` on that bus."""
    processes: list[subprocess.Popen] = []
    read_end, write_end = os.pipe()
    processes.append(subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=[write_end], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ))  # fmt: skip
    os.close(write_end)
    with os.fdopen(read_end) as displayfd:
        display = ":" + displayfd.readline().strip()
    bus_path = tmp_path / "run" / str(os.getuid()) / "bus"
    bus_path.parent.mkdir(parents=True)
    bus = f"unix:path={bus_path}"
    processes.append(subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", f"--address={bus}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ))  # fmt: skip
    config = tmp_path / "config"
    config.mkdir()
    env = {**os.environ, "DISPLAY": display, "DBUS_SESSION_BUS_ADDRESS": bus,
           "XDG_CONFIG_HOME": str(config)}  # fmt: skip

    def dunstctl(*argv: str) -> str:
        return subprocess.run(["dunstctl", *argv], env=env, capture_output=True, text=True,
                              check=True, timeout=10).stdout  # fmt: skip

    try:
        deadline = time.monotonic() + 10
        while not bus_path.exists():
            assert time.monotonic() < deadline, "the session bus did not start"
            time.sleep(0.05)
        processes.append(subprocess.Popen(["dunst"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))  # fmt: skip
        while True:
            try:
                dunstctl("count", "displayed")
                break
            except subprocess.CalledProcessError:
                assert time.monotonic() < deadline, "the notification daemon did not start"
                time.sleep(0.05)
        yield SimpleNamespace(bus=bus, env=env, dunstctl=dunstctl)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=10)


MESSAGE, PHONE = "Please return this laptop. Reward.", "+7 701 555 01 02"


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
    monkeypatch.setattr(system, "USER_BUS", desktop.bus.replace("/run/0/", "/run/{uid}/"))
    # The service's own environment has no session bus: it is found per session.
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert system.graphical_sessions() == [(uid, user)]
    _lock_and_see_the_message(desktop, tmp_path)
