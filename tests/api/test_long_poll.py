"""Commands reach a waiting device at once: in one process, and across server processes
sharing PostgreSQL (LISTEN/NOTIFY)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import httpx
from fastapi.testclient import TestClient

from smartprotect.accounts.models import User
from smartprotect.db import unit_of_work
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability
from smartprotect.devices.schemas import EnrollRequest
from smartprotect.mail.links import Links
from tests.helpers import add_owner
from tests.live import live_server

LINKS = Links(base_url="https://testserver")


def _device(session_factory, clock, keyring, published_policy):
    clock.set(datetime.now(UTC))
    with unit_of_work(session_factory) as session:
        user = add_owner(session, clock=clock, keyring=keyring)
        _, code = devices.create_enrollment_code(
            session=session, keyring=keyring, user=user, device_name="Phone",
            capabilities=[Capability.RING], clock=clock,
        )  # fmt: skip
        device, credential = devices.enroll(
            session=session, keyring=keyring, clock=clock,
            request=EnrollRequest(code=code, platform="linux"),
        )  # fmt: skip
        return user.id, device.id, credential


def _token(session_factory, clock, keyring, user_id) -> str:
    from smartprotect.accounts import service as accounts

    with unit_of_work(session_factory) as session:
        _, token = accounts.create_api_token(
            session=session, user=session.get(User, user_id), name="test", clock=clock,
            keyring=keyring,
        )  # fmt: skip
    return token


def _poll_in_background(get) -> tuple[threading.Thread, dict]:
    answer: dict = {}
    thread = threading.Thread(target=lambda: answer.update(get().json()))
    thread.start()
    return thread, answer


def test_a_waiting_device_is_woken_by_a_new_command(
    app, session_factory, clock, keyring, published_policy
):
    user_id, device_id, credential = _device(session_factory, clock, keyring, published_policy)
    headers = {"Authorization": f"Bearer {credential}"}
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/api/v1/agent/commands?wait=0", headers=headers).json() == {
            "commands": [], "woken_by": "timeout"
        }  # fmt: skip
        thread, answer = _poll_in_background(
            lambda: client.get("/api/v1/agent/commands?wait=30", headers=headers)
        )
        while app.state.notifier.connected_devices == 0:
            threading.Event().wait(0.01)
        # Issued through this instance's API: on SQLite its in-process notifier wakes the
        # waiter; on PostgreSQL the NOTIFY sent in the issuing transaction does.
        issued = client.post(
            f"/api/v1/devices/{device_id}/commands",
            json={"kind": "ring"},
            headers={"Authorization": f"Bearer {_token(session_factory, clock, keyring, user_id)}"},
        )
        assert issued.status_code == 201, issued.text
        thread.join(timeout=60)
    assert answer["woken_by"] == "notification"
    assert [c["kind"] for c in answer["commands"]] == ["ring"]


def test_two_server_processes_share_commands(
    database_url, engine, smtp_port, command_key_file, tmp_path, session_factory, clock,
    keyring, published_policy,
):  # fmt: skip
    """A device waiting on instance B gets a command issued through instance A. With
    PostgreSQL it is woken at once; SQLite (the single-instance embedded engine) has no
    channel between processes, so B finds the command when its wait ends."""
    user_id, device_id, credential = _device(session_factory, clock, keyring, published_policy)
    headers = {"Authorization": f"Bearer {credential}"}
    token = _token(session_factory, clock, keyring, user_id)
    common = {"database_url": database_url, "smtp_port": smtp_port,
              "command_key_file": command_key_file}  # fmt: skip
    postgres = engine.dialect.name == "postgresql"
    wait = 30 if postgres else 2
    with (
        live_server(**common, log_path=tmp_path / "a.log") as a,
        live_server(**common, log_path=tmp_path / "b.log") as b,
    ):
        url = f"{b.url}/api/v1/agent/commands"
        thread, answer = _poll_in_background(
            lambda: httpx.get(url, params={"wait": wait}, headers=headers, timeout=60)
        )
        threading.Event().wait(0.5)  # B is now waiting
        issued = httpx.post(
            f"{a.url}/api/v1/devices/{device_id}/commands", json={"kind": "ring"},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert issued.status_code == 201, issued.text
        thread.join(timeout=60)
    assert [c["kind"] for c in answer["commands"]] == ["ring"]
    assert answer["woken_by"] == ("notification" if postgres else "timeout")


def test_marking_a_device_lost_wakes_it_to_check_in_at_once(
    app, session_factory, clock, keyring, published_policy
):
    from smartprotect.devices.models import Device

    user_id, device_id, credential = _device(session_factory, clock, keyring, published_policy)
    headers = {"Authorization": f"Bearer {credential}"}
    with TestClient(app, base_url="https://testserver") as client:
        thread, answer = _poll_in_background(
            lambda: client.get("/api/v1/agent/commands?wait=30", headers=headers)
        )
        while app.state.notifier.connected_devices == 0:
            threading.Event().wait(0.01)
        with session_factory() as session:
            devices.set_lost(session=session, keyring=keyring, user=session.get(User, user_id),
                             device=session.get(Device, device_id), lost=True,
                             clock=clock)  # fmt: skip
            session.commit()
            app.state.after_commit(session)
        thread.join(timeout=60)
    # Nothing to run: the agent takes this as the cue to check in now, and learns it is lost.
    assert answer == {"commands": [], "woken_by": "notification"}
