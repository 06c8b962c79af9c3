"""A real server process and a real agent process: enroll, check in, buffer while offline."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from smartprotect.accounts import service as accounts
from smartprotect.accounts.schemas import RegistrationConsents, UserCreate
from smartprotect.cli.agent import EXIT_DEVICE_REFUSED
from smartprotect.db import unit_of_work
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability, Device
from smartprotect.privacy.consent.models import Channel
from tests.conftest import free_port
from tests.live import live_server


def _agent(*args: str, state_dir, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smartprotect", "agent", *args, "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture
def owner_code(session_factory, clock, keyring, published_policy):
    """A verified owner and a fresh enrollment code for locate and report_accounts."""
    # The server process runs on the real clock; the code must be fresh by that clock.
    clock.set(datetime.now(UTC))
    with unit_of_work(session_factory) as session:
        user = accounts.register(
            session=session,
            data=UserCreate(email="owner@example.kz", phone="+77010000009",
                            password="long enough password", language="en"),
            consents=RegistrationConsents(policy_document_id=published_policy["en"],
                                          accept_policy=True, consent_processing=True),
            channel=Channel.WEB, clock=clock, keyring=keyring,
            links=accounts.Links(base_url="https://testserver"),
        )  # fmt: skip
        user.email_verified_at = clock.now()
        _, code = devices.create_enrollment_code(
            session=session, keyring=keyring, user=user, device_name="Test laptop",
            capabilities=[Capability.LOCATE, Capability.REPORT_ACCOUNTS, Capability.WIPE,
                          Capability.RING, Capability.LOCK],
            clock=clock,
        )  # fmt: skip
        return user.id, code


def test_enroll_check_in_and_buffer_while_offline(
    database_url, engine, smtp_port, command_key_file, tmp_path, owner_code, session_factory,
    keyring,
):  # fmt: skip
    user_id, code = owner_code
    state_dir = tmp_path / "agent"
    port = free_port()
    server_args = {
        "database_url": database_url, "smtp_port": smtp_port,
        "command_key_file": command_key_file, "port": port,
    }  # fmt: skip
    with live_server(**server_args, log_path=tmp_path / "server-1.log") as server:
        result = _agent(
            "enroll", "--server", server.url, "--code", code,
            "--fixed-location", "43.238949,76.889709,25", state_dir=state_dir,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "Enrolled as device" in result.stdout
        # The credential is readable by its owner only; wipe was not allowed on this machine.
        credential_mode = stat.S_IMODE((state_dir / "credential").stat().st_mode)
        assert credential_mode == 0o600
        state = json.loads((state_dir / "state.json").read_text())
        assert sorted(state["capabilities"]) == ["locate", "lock", "report_accounts", "ring"]

        # The same code cannot enroll a second machine.
        again = _agent("enroll", "--server", server.url, "--code", code, state_dir=tmp_path / "b")
        assert again.returncode == 1 and "unknown, expired or already used" in again.stderr

        result = _agent("run", "--once", state_dir=state_dir)
        assert result.returncode == 0, result.stderr

    with session_factory() as session:
        device = session.scalar(select(Device).where(Device.user_id == user_id))
        history = devices.locations(session=session, keyring=keyring, device=device)
        assert [(p.latitude, p.longitude, p.accuracy_m, p.method.value) for p in history] == [
            (43.238949, 76.889709, 25.0, "manual")
        ]
        assert device.last_seen_at is not None
        assert devices.accounts_of(session=session, keyring=keyring, device=device) is not None

    # The server is down: the fix stays on the device...
    result = _agent("run", "--once", state_dir=state_dir)
    assert result.returncode == 1 and "check-in failed" in result.stderr
    assert len(json.loads((state_dir / "pending-fixes.json").read_text())) == 1
    # ...and is delivered with the next one when the server is back.
    with live_server(**server_args, log_path=tmp_path / "server-2.log"):
        result = _agent("run", "--once", state_dir=state_dir)
        assert result.returncode == 0, result.stderr
    assert json.loads((state_dir / "pending-fixes.json").read_text()) == []
    with session_factory() as session:
        device = session.scalar(select(Device).where(Device.user_id == user_id))
        assert len(devices.locations(session=session, keyring=keyring, device=device)) == 3


def test_agent_without_enrollment_says_what_to_do(tmp_path):
    result = _agent("run", "--once", state_dir=tmp_path / "none")
    assert result.returncode == 1 and "smartprotect agent enroll" in result.stderr


def _issue(session_factory, keyring, clock, user_id, kind, **extra):
    from smartprotect.accounts.models import User
    from smartprotect.commands import service as commands

    clock.set(datetime.now(UTC))
    with unit_of_work(session_factory) as session:
        user = session.get(User, user_id)
        device = session.scalar(select(Device).where(Device.user_id == user_id))
        command = commands.issue(
            session=session, keyring=keyring, user=user, device=device, kind=kind, clock=clock,
            links=accounts.Links(base_url="https://testserver"), **extra,
        )  # fmt: skip
        return command.id


def _state_of(session_factory, command_id):
    from smartprotect.commands.models import Command

    with session_factory() as session:
        command = session.get(Command, command_id)
        return command.state.value, command.result


def test_locate_ring_lock_replay_forgery_and_wipe(
    database_url, engine, smtp_port, command_key_file, tmp_path, owner_code, session_factory,
    keyring, clock,
):  # fmt: skip
    from smartprotect.commands.models import Kind, State

    user_id, code = owner_code
    state_dir, target, outside = tmp_path / "agent", tmp_path / "target", tmp_path / "outside"
    (target / "docs").mkdir(parents=True)
    outside.mkdir()
    (target / "docs" / "passport-scan.txt").write_text("N12345678")
    (target / "notes.txt").write_text("private")
    (outside / "keep.txt").write_text("not mine to wipe")
    ring_log, lock_log = tmp_path / "ring.log", tmp_path / "lock.log"
    message_log = tmp_path / "message.log"
    server_args = {
        "database_url": database_url, "smtp_port": smtp_port,
        "command_key_file": command_key_file, "port": free_port(),
    }  # fmt: skip
    with live_server(**server_args, log_path=tmp_path / "server.log") as server:
        result = _agent(
            "enroll", "--server", server.url, "--code", code, "--allow-wipe",
            "--wipe-path", str(target), "--fixed-location", "43.25,76.95,15",
            "--ring-command", f"sh -c 'echo rang >> {ring_log}'",
            "--lock-command", f"sh -c 'echo \"$SMARTPROTECT_LOCK_MESSAGE\" >> {lock_log}'",
            "--message-command", f"sh -c 'echo \"$0\" >> {message_log}' {{text}}",
            state_dir=state_dir,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    # Issued while the device is offline (and even the server is down): they wait.
    locate = _issue(session_factory, keyring, clock, user_id, Kind.LOCATE)
    ring = _issue(session_factory, keyring, clock, user_id, Kind.RING)
    lock = _issue(session_factory, keyring, clock, user_id, Kind.LOCK,
                  message="Found it? Please call", phone="+7 701 000 0000")  # fmt: skip
    with live_server(**server_args, log_path=tmp_path / "server-2.log"):
        result = _agent("run", "--once", state_dir=state_dir)
        assert result.returncode == 0, result.stderr
        assert ring_log.read_text() == "rang\n"
        assert lock_log.read_text() == "Found it? Please call\n"
        # Shown to whoever holds the device: the message and the owner's phone.
        assert message_log.read_text() == "Found it? Please call\n+7 701 000 0000\n"
        for command_id in (locate, ring, lock):
            assert _state_of(session_factory, command_id)[0] == "succeeded"

        # A replay: the server is made to deliver the ring again; the agent refuses it.
        from smartprotect.commands.models import Command

        with unit_of_work(session_factory) as session:
            session.get(Command, ring).state = State.QUEUED
        assert _agent("run", "--once", state_dir=state_dir).returncode == 0
        assert ring_log.read_text() == "rang\n"

        # A forgery: commands not signed by the key this agent trusts are refused.
        state_file = state_dir / "state.json"
        genuine = state_file.read_text()
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from smartprotect.signing import public_text

        forged_key = public_text(Ed25519PrivateKey.generate().public_key())
        state_file.write_text(
            genuine.replace(json.loads(genuine)["command_public_key"], forged_key)
        )
        _issue(session_factory, keyring, clock, user_id, Kind.RING)
        assert _agent("run", "--once", state_dir=state_dir).returncode == 0
        assert ring_log.read_text() == "rang\n"
        state_file.write_text(genuine)

        # The wipe: only the target's contents go; the device is then terminal.
        wipe = _issue(session_factory, keyring, clock, user_id, Kind.WIPE,
                      password="long enough password", confirm_name="Test laptop")  # fmt: skip
        result = _agent("run", "--once", state_dir=state_dir)
        assert result.returncode == 0, result.stderr
        assert target.exists() and list(target.iterdir()) == []
        assert (outside / "keep.txt").read_text() == "not mine to wipe"
        state, summary = _state_of(session_factory, wipe)
        assert state == "succeeded" and summary["files_removed"] == 2 and summary["failures"] == 0
        assert "SSD" in summary["note"]
        result = _agent("run", "--once", state_dir=state_dir)
        # Wiped: its credential is refused, with the status the unit does not restart on.
        assert result.returncode == EXIT_DEVICE_REFUSED and "refused this device" in result.stderr

    with session_factory() as session:
        from smartprotect.audit.models import AuditEvent
        from smartprotect.audit.service import verify_chain

        tags = session.scalars(select(AuditEvent.action)).all()
        assert tags.count("device:command:issue") == 5
        assert "device:command:state" in tags
        # The wipe's every step, in order, time-stamped on the command and in the audit log.
        from smartprotect.commands.models import Command

        command = session.get(Command, wipe)
        assert command.issued_at <= command.delivered_at <= command.started_at
        assert command.started_at <= command.finished_at
        steps = [
            (event.action, event.actor, event.details.get("state"))
            for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
            if event.details.get("command") == str(wipe)
        ]
        assert [(action, state) for action, _, state in steps] == [
            ("device:command:issue", "queued"), ("device:command:deliver", "delivered"),
            ("device:command:state", "running"), ("device:command:state", "succeeded")]  # fmt: skip
        assert steps[0][1].startswith("user:") and {a for _, a, _ in steps[1:]} == {"device"}
        assert verify_chain(session=session).ok


def test_a_running_agent_gets_commands_at_once(
    database_url, engine, smtp_port, command_key_file, tmp_path, owner_code, session_factory,
    keyring, clock,
):  # fmt: skip
    """`agent run` waits on the server between check-ins, so a command is carried out as soon
    as it is issued, not at the next check-in 15 minutes later."""
    import time

    import httpx

    user_id, code = owner_code
    state_dir, ring_log = tmp_path / "agent", tmp_path / "ring.log"
    with live_server(
        database_url=database_url, smtp_port=smtp_port, command_key_file=command_key_file,
        log_path=tmp_path / "server.log",
    ) as server:  # fmt: skip
        enrolled = _agent(
            "enroll", "--server", server.url, "--code", code,
            "--ring-command", f"sh -c 'echo rang >> {ring_log}'", state_dir=state_dir,
        )  # fmt: skip
        assert enrolled.returncode == 0, enrolled.stderr
        agent = subprocess.Popen(
            [sys.executable, "-m", "smartprotect", "agent", "run", "--state-dir", str(state_dir)],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "agent.log", "w"),  # noqa: SIM115
        )  # fmt: skip
        try:
            # Once it has checked in, it is waiting on the server.
            deadline = time.monotonic() + 30
            while not _checked_in(session_factory, user_id) and time.monotonic() < deadline:
                time.sleep(0.1)
            # Through the server's API, as the dashboard would (on SQLite the wake-up is
            # in-process, so the command must come through the instance the agent waits on).
            from tests.api.test_long_poll import _token

            device_id = _device_id(session_factory, user_id)
            token = _token(session_factory, clock, keyring, user_id)
            issued = httpx.post(
                f"{server.url}/api/v1/devices/{device_id}/commands", json={"kind": "ring"},
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
            assert issued.status_code == 201, issued.text
            deadline = time.monotonic() + 30
            while not ring_log.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ring_log.read_text() == "rang\n"
        finally:
            agent.terminate()
            agent.wait(timeout=10)


def _device_id(session_factory, user_id):
    with session_factory() as session:
        return session.scalar(select(Device.id).where(Device.user_id == user_id))


def _checked_in(session_factory, user_id) -> bool:
    with session_factory() as session:
        device = session.scalar(select(Device).where(Device.user_id == user_id))
        return device is not None and device.last_seen_at is not None
