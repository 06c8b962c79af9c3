"""The agent API refuses bad input with a clear 4xx and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability, Device, DeviceLocation
from tests.helpers import add_owner


@pytest.fixture
def code(db, clock, keyring, published_policy) -> str:
    user = add_owner(db, clock=clock, keyring=keyring)
    _, shown = devices.create_enrollment_code(
        session=db, keyring=keyring, user=user, device_name="Phone",
        capabilities=[Capability.LOCATE], clock=clock,
    )  # fmt: skip
    db.commit()
    return shown


@pytest.fixture
def credential(client, code) -> str:
    response = client.post(
        "/api/v1/agent/enroll", json={"code": code, "platform": "linux", "allowed": ["locate"]}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["capabilities"] == ["locate"] and body["command_public_key"]
    return body["credential"]


def _fix(clock, **overrides):
    fix = {"latitude": 43.2, "longitude": 76.9, "accuracy_m": 10, "method": "gps",
           "fixed_at": clock.now().isoformat()}  # fmt: skip
    fix.update(overrides)
    return fix


def test_a_good_check_in(client, credential, clock, db):
    response = client.post(
        "/api/v1/agent/check-in",
        json={"battery_percent": 50, "locations": [_fix(clock)]},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 200
    assert response.json()["locations_stored"] == 1
    assert response.json()["check_in_after_seconds"] == 15 * 60


@pytest.mark.parametrize(
    "body",
    [
        {"locations": [{"latitude": 91, "longitude": 0, "accuracy_m": 5, "method": "gps"}]},
        {"battery_percent": 140},
        {"locations": "here"},
        {"accounts": ["x" * 65]},
        {"accounts": ["alice\u0001"]},
    ],
)
def test_malformed_check_ins_are_refused(client, credential, clock, db, body):
    response = client.post(
        "/api/v1/agent/check-in", json=body, headers={"Authorization": f"Bearer {credential}"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert db.scalar(select(func.count()).select_from(DeviceLocation)) == 0


@pytest.mark.parametrize(
    "overrides",
    [{"latitude": -90.5}, {"longitude": 180.01}, {"accuracy_m": 0}, {"method": "telepathy"},
     {"fixed_at": "2026-01-01T00:00:00"}],  # the last one has no time zone
)  # fmt: skip
def test_bad_coordinates_are_refused(client, credential, clock, db, overrides):
    response = client.post(
        "/api/v1/agent/check-in",
        json={"locations": [_fix(clock, **overrides)]},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 422, response.text
    assert db.scalar(select(func.count()).select_from(DeviceLocation)) == 0
    assert db.scalar(select(Device.last_seen_at)) is None


def test_a_fix_from_the_future_changes_nothing(client, credential, clock, db):
    future = (clock.now() + timedelta(hours=1)).isoformat()
    response = client.post(
        "/api/v1/agent/check-in",
        json={"battery_percent": 3, "locations": [_fix(clock), _fix(clock, fixed_at=future)]},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 422 and "locations.1.fixed_at" in response.json()["errors"]
    assert db.scalar(select(func.count()).select_from(DeviceLocation)) == 0
    assert db.scalar(select(Device.battery_percent)) is None


def test_unknown_expired_and_reused_codes_are_refused(client, code, clock, db):
    body = {"code": "ZZZZ-ZZZZ-ZZZZ", "platform": "linux"}
    assert client.post("/api/v1/agent/enroll", json=body).status_code == 404
    clock.advance(devices.ENROLLMENT_CODE_TTL)
    assert client.post("/api/v1/agent/enroll", json={**body, "code": code}).status_code == 404
    clock.advance(-devices.ENROLLMENT_CODE_TTL)
    assert client.post("/api/v1/agent/enroll", json={**body, "code": code}).status_code == 201
    assert client.post("/api/v1/agent/enroll", json={**body, "code": code}).status_code == 404
    assert db.scalar(select(func.count()).select_from(Device)) == 1


def test_revoked_or_missing_credentials_are_refused(client, credential, clock, db):
    assert client.post("/api/v1/agent/check-in", json={}).status_code == 401
    db.execute(Device.__table__.update().values(revoked_at=clock.now()))
    db.commit()
    response = client.post(
        "/api/v1/agent/check-in",
        json={"battery_percent": 9, "locations": [_fix(clock)]},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(DeviceLocation)) == 0
    assert db.scalar(select(Device.battery_percent)) is None


@pytest.fixture
def real_time(clock):
    """The live server runs on the real clock; codes and fixes must be fresh by it."""
    from datetime import UTC, datetime

    clock.set(datetime.now(UTC))


def test_a_burst_of_check_ins_beyond_the_thread_pool_all_succeed(
    real_time, database_url, engine, smtp_port, command_key_file, tmp_path, code, clock
):
    """More simultaneous check-ins than worker threads: none may fail for want of the
    database (on SQLite, waiting for its lock once starved the pool)."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.live import live_server

    with live_server(
        database_url=database_url, smtp_port=smtp_port, command_key_file=command_key_file,
        log_path=tmp_path / "server.log",
    ) as server:  # fmt: skip
        enrolled = httpx.post(
            f"{server.url}/api/v1/agent/enroll", json={"code": code, "platform": "linux"}
        )
        assert enrolled.status_code == 201, enrolled.text
        auth = {"Authorization": f"Bearer {enrolled.json()['credential']}"}
        body = {"battery_percent": 50, "locations": [_fix(clock)]}
        with ThreadPoolExecutor(max_workers=80) as pool:
            statuses = list(
                pool.map(
                    lambda _: httpx.post(
                        f"{server.url}/api/v1/agent/check-in", json=body, headers=auth,
                        timeout=60,
                    ).status_code,
                    range(160),
                )
            )  # fmt: skip
    assert statuses == [200] * 160
