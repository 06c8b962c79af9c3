"""The agent's loop against a scripted server: what it sends, what it runs, what it keeps."""

from __future__ import annotations

import base64
import itertools
import json
import stat
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smartprotect.agent import client, runner, verify
from smartprotect.agent.actions import system
from smartprotect.agent.constants import BUFFER_FILE
from smartprotect.agent.providers import Fix
from smartprotect.agent.state import AgentState, save

DEVICE = str(uuid.uuid4())
KEY = Ed25519PrivateKey.generate()


def _command(kind: str, **params) -> dict:
    payload = {"device_id": DEVICE, "command_id": str(uuid.uuid4()), "kind": kind,
               "params": params,
               "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}  # fmt: skip
    signature = base64.b64encode(KEY.sign(verify.canonical(payload))).decode()
    return {**payload, "signature": signature}


class Server:
    """Scripted answers to check-ins and polls; records what the agent sent."""

    def __init__(self) -> None:
        self.check_ins: list[dict] = []
        self.answers: list[dict] = []
        self.polls: list[dict] = []
        self.results: list[dict] = []
        self.refuse_fixes = False

    def check_in(self, *, server, credential, report):
        self.check_ins.append(report)
        if self.refuse_fixes and report["locations"]:
            raise client.ServerRefused("422: fixed in the future", status_code=422)
        answer = self.answers.pop(0) if self.answers else {}
        return {"check_in_after_seconds": 900, "commands": [], **answer}

    def poll(self, *, server, credential, wait):
        return self.polls.pop(0)

    def report_command(self, *, server, credential, command_id, state, result):
        self.results.append({"command_id": command_id, "state": state, "result": result})


class StillProvider:
    def current(self):
        return Fix(latitude=43.2, longitude=76.9, accuracy_m=8.0, method="gps",
                   fixed_at=datetime.now(UTC))  # fmt: skip


@pytest.fixture
def server(monkeypatch) -> Server:
    scripted = Server()
    for name in ("check_in", "poll", "report_command"):
        monkeypatch.setattr(client, name, getattr(scripted, name))
    return scripted


def _agent(tmp_path, *, provider=True, capabilities=("locate", "ring", "lock", "wipe")):
    public = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    save(tmp_path, AgentState(
        server="https://sp.example", device_id=DEVICE, capabilities=list(capabilities),
        command_public_key=base64.b64encode(public).decode(), check_in_seconds=900,
        ring_command=["true"], lock_command=["true"], unlock_command=["true"],
        wipe_paths=[str(tmp_path / "wipe-me")],
    ), "spdc_test")  # fmt: skip
    agent = runner.Agent(tmp_path)
    agent.provider = StillProvider() if provider else None
    return agent


def test_a_locate_is_answered_with_a_fresh_fix_and_what_that_check_in_brings_runs(tmp_path, server):
    agent = _agent(tmp_path)
    locate, ring = _command("locate"), _command("ring")
    # While listening: a locate; the check-in sending its fix brings a ring, which runs.
    server.polls = [{"commands": [locate], "woken_by": "notification"},
                    {"commands": [], "woken_by": "notification"}]  # fmt: skip
    server.answers = [{"commands": [ring]}]
    agent._listen(until=runner.time.monotonic() + 60)
    assert len(server.check_ins) == 1 and len(server.check_ins[0]["locations"]) == 1
    states = {r["command_id"]: (r["state"], r["result"]) for r in server.results}
    assert states[locate["command_id"]] == ("succeeded", {"fix_sent": True})
    assert states[ring["command_id"]][0] == "succeeded"


def test_woken_with_nothing_to_run_it_stops_listening_to_check_in(tmp_path, server):
    agent = _agent(tmp_path)
    server.polls = [{"commands": [], "woken_by": "notification"}]
    agent._listen(until=runner.time.monotonic() + 3600)  # returns at once, not in an hour
    assert server.polls == [] and server.check_ins == []


def test_a_locate_without_a_location_says_so(tmp_path, server):
    agent = _agent(tmp_path, provider=False)
    locate = _command("locate")
    server.answers = [{"commands": [locate]}]
    agent.cycle()
    assert server.results == [{"command_id": locate["command_id"], "state": "failed",
                               "result": {"fix_sent": False}}]  # fmt: skip


def test_fixes_the_server_refuses_are_dropped_not_sent_forever(tmp_path, server):
    agent = _agent(tmp_path)
    server.refuse_fixes = True
    agent.cycle()
    # Refused with its fix, then sent without it; nothing left to send again.
    assert [len(report["locations"]) for report in server.check_ins] == [1, 0]
    assert json.loads((tmp_path / BUFFER_FILE).read_text()) == []


def test_the_owners_lock_message_and_a_wipes_journal_are_private(tmp_path, server, monkeypatch):
    agent = _agent(tmp_path)
    (tmp_path / "wipe-me").mkdir()
    (tmp_path / "wipe-me" / "secret.txt").write_text("x")
    lock, wipe = _command("lock", message="Reward", phone="+7 701 555 0100"), _command("wipe")
    shown = tmp_path / "shown.txt"
    agent.state.message_command = ["sh", "-c", f'printf %s "$0" > {shown}', "{text}"]
    server.answers = [{"commands": [lock]}]
    agent.cycle()
    notice = tmp_path / "lock-message.txt"
    assert notice.read_text() == "Reward\n+7 701 555 0100\n"
    assert stat.S_IMODE(notice.stat().st_mode) == 0o600
    assert shown.read_text() == "Reward\n+7 701 555 0100"
    [locked] = [r for r in server.results if r["command_id"] == lock["command_id"]]
    assert locked["state"] == "succeeded" and locked["result"]["message_shown"] is True
    # The journal is written (privately) before the command is remembered as run.
    recorded = []
    real_remember = agent._remember

    def remember(command_id):
        journal = tmp_path / "wipe-journal.json"
        recorded.append(journal.exists() and stat.S_IMODE(journal.stat().st_mode))
        real_remember(command_id)

    agent._remember = remember
    # "Committed" reaches the server while the files are all still there.
    reported = server.report_command
    secret = tmp_path / "wipe-me" / "secret.txt"
    present_when: dict[str, bool] = {}

    def report_command(**report):
        present_when[report["state"]] = secret.exists()
        reported(**report)

    monkeypatch.setattr(client, "report_command", report_command)
    server.answers = [{"commands": [wipe]}]
    agent.cycle()
    assert recorded == [0o600]
    assert not secret.exists()
    [running, succeeded] = [r for r in server.results if r["command_id"] == wipe["command_id"]]
    assert running["state"] == "running" and running["result"] == {"committed": True}
    assert succeeded["state"] == "succeeded" and succeeded["result"]["files_removed"] == 1
    assert present_when == {"running": True, "succeeded": False}


def test_results_that_could_not_be_sent_are_kept_and_sent_later(tmp_path, server, monkeypatch):
    import httpx

    agent = _agent(tmp_path)
    ring = _command("ring")
    server.answers = [{"commands": [ring]}]
    sent = server.report_command

    def offline(**_):
        raise httpx.ConnectError("the network went away")

    monkeypatch.setattr(client, "report_command", offline)
    with pytest.raises(httpx.ConnectError):
        agent.cycle()
    assert server.results == []
    kept = json.loads((tmp_path / "pending-results.json").read_text())
    assert [item["command_id"] for item in kept] == [ring["command_id"]]
    # Back online: the next cycle sends it first; the command is not run again.
    monkeypatch.setattr(client, "report_command", sent)
    server.answers = [{"commands": [ring]}]  # handed out again: no report had come
    agent.cycle()
    assert [r["command_id"] for r in server.results] == [ring["command_id"]]
    assert json.loads((tmp_path / "pending-results.json").read_text()) == []


def test_a_wipe_cut_short_by_a_restart_is_finished_by_the_next_agent(tmp_path, server, monkeypatch):
    (tmp_path / "wipe-me").mkdir()
    (tmp_path / "wipe-me" / "secret.txt").write_text("x")
    command = _command("wipe")
    server.answers = [{"commands": [command]}]
    real_execute = runner.wipe.execute

    def power_cut(directory, paths):
        raise SystemExit("the machine lost power")

    monkeypatch.setattr(runner.wipe, "execute", power_cut)
    with pytest.raises(SystemExit):
        _agent(tmp_path).cycle()
    assert (tmp_path / "wipe-me" / "secret.txt").exists()
    assert [r["state"] for r in server.results] == ["running"]

    # Started again: it finishes the wipe before anything else, and when the server hands the
    # command out again (no final report had come), it is not run a second time.
    monkeypatch.setattr(runner.wipe, "execute", real_execute)
    ran = []
    monkeypatch.setattr(runner.wipe, "commit", lambda *args: ran.append(args))
    server.answers = [{"commands": [command]}]
    _agent(tmp_path).cycle()
    assert not (tmp_path / "wipe-me" / "secret.txt").exists()
    assert [r["state"] for r in server.results] == ["running", "succeeded"]
    assert server.results[1]["result"]["files_removed"] == 1
    assert ran == [] and runner.wipe.pending(tmp_path) is None


def test_ring_plays_the_generated_alarm_and_unlock_runs_its_command(tmp_path, server):
    import wave

    agent = _agent(tmp_path)
    played, unlocked = tmp_path / "played.wav", tmp_path / "unlocked"
    agent.state.ring_command = ["sh", "-c", f'cp "$0" {played}', "{sound}"]
    agent.state.unlock_command = ["touch", str(unlocked)]
    ring, unlock = _command("ring"), _command("unlock")
    server.answers = [{"commands": [ring, unlock]}]
    agent.cycle()
    assert [r["state"] for r in server.results] == ["succeeded", "succeeded"]
    assert unlocked.exists()
    # The tone the agent made: ten seconds of a loud square-wave siren.
    with wave.open(str(played)) as sound:
        assert (sound.getnchannels(), sound.getsampwidth()) == (1, 2)
        assert sound.getnframes() == sound.getframerate() * system.RING_SECONDS
        samples = memoryview(sound.readframes(sound.getnframes())).cast("h")
    assert max(samples) == 32000 and min(samples) == -32000
    # Two pitches, alternating four times a second.
    rate = system.SAMPLE_RATE

    def crossings(start: float) -> int:
        part = samples[int(start * rate) : int((start + 0.25) * rate)]
        return sum(1 for a, b in itertools.pairwise(part) if a < 0 <= b)

    low, high = sorted((crossings(0.0), crossings(0.25)))  # cycles in a quarter second
    assert abs(low - system.RING_FREQUENCY_HZ * 3 // 4 / 4) <= 2
    assert abs(high - system.RING_FREQUENCY_HZ / 4) <= 2


def test_an_unreachable_server_is_retried_with_growing_jittered_waits(
    tmp_path, server, monkeypatch
):
    import httpx

    from smartprotect.agent import backoff

    agent = _agent(tmp_path)
    outages = 5
    real_check_in = server.check_in

    def check_in(**report):
        if len(server.check_ins) < outages:
            server.check_ins.append(report)
            raise httpx.ConnectError("connection refused")
        return real_check_in(**report)

    monkeypatch.setattr(client, "check_in", check_in)
    waits: list[float] = []

    def sleep(seconds):
        waits.append(seconds)

    class Done(Exception):
        pass

    def listen(*, until):
        raise Done  # back online: the loop would now wait on the server

    monkeypatch.setattr(runner.time, "sleep", sleep)
    monkeypatch.setattr(agent, "_listen", listen)
    with pytest.raises(Done):
        agent.run()
    assert len(waits) == outages
    for attempt, wait in enumerate(waits):
        nominal = min(backoff.BASE_RECONNECT_DELAY_SECONDS * 2**attempt,
                      backoff.MAX_RECONNECT_DELAY_SECONDS)  # fmt: skip
        assert abs(wait - nominal) <= nominal * backoff.JITTER_FACTOR / 2
    # The fixes taken meanwhile were kept and all sent once it was back.
    assert len(server.check_ins[-1]["locations"]) == outages + 1
