"""The shipped systemd unit runs the agent from the state directory enrollment uses as root."""

from configparser import ConfigParser

from smartprotect.agent.state import default_state_dir
from smartprotect.cli.agent import EXIT_DEVICE_REFUSED
from tests.conftest import ROOT


def test_the_unit_runs_the_agent_with_its_state_directory():
    unit = ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "deploy" / "smartprotect-agent.service")
    command = unit["Service"]["ExecStart"].split()
    assert command[1:3] == ["agent", "run"]
    state_dir = command[command.index("--state-dir") + 1]
    assert state_dir == "/var/lib/" + unit["Service"]["StateDirectory"]
    assert unit["Service"]["StateDirectoryMode"] == "0700"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # Restarted whenever it stops, but for a device the server refuses (a wiped one).
    assert unit["Service"]["Restart"] == "always"
    assert unit["Service"]["RestartPreventExitStatus"] == str(EXIT_DEVICE_REFUSED)


def test_root_enrolls_into_the_units_state_directory(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert str(default_state_dir()) == "/var/lib/smartprotect-agent"
