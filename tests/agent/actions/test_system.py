"""Ring, lock and the owner's message through system commands."""

from __future__ import annotations

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
