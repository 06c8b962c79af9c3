"""The dashboard: adding a device shows a code; devices show last seen, battery, location."""

from __future__ import annotations

import re
import uuid

from tests.helpers import form_page
from tests.web.test_privacy import signed_in  # noqa: F401 - a fixture


def test_adding_a_device_shows_a_one_time_code(signed_in):  # noqa: F811
    client = signed_in
    page = client.get("/devices")
    assert page.status_code == 200 and "You have no protected devices yet" in page.text
    token = form_page(client, "/devices")
    response = client.post(
        "/devices/enrollment-codes",
        data={"csrf_token": token, "device_name": "Work laptop", "capability_locate": "on",
              "capability_wipe": "on"},
    )  # fmt: skip
    assert response.status_code == 201
    code = re.search(r'id="enrollment-code">([A-Z0-9-]+)<', response.text).group(1)
    assert len(code) == 14
    assert f"--code {code} --allow-wipe" in response.text

    enrolled = client.post(
        "/api/v1/agent/enroll",
        json={"code": code, "platform": "linux", "allowed": ["locate", "ring", "lock"]},
    )
    assert enrolled.status_code == 201
    credential = enrolled.json()["credential"]
    client.post(
        "/api/v1/agent/check-in",
        json={"battery_percent": 64, "locations": [{"latitude": 43.238949, "longitude": 76.889709,
              "accuracy_m": 30, "method": "wifi", "fixed_at": "2026-01-01T00:00:00+00:00"}]},
        headers={"Authorization": f"Bearer {credential}"},
    )  # fmt: skip
    page = client.get("/devices").text
    assert "Work laptop" in page and "64%" in page and "43.23895, 76.88971" in page
    assert "± 30 m · wifi" in page
    device_id = enrolled.json()["device_id"]
    detail = client.get(f"/devices/{device_id}").text
    assert "2026-01-01 00:00:00 UTC" in detail and "wifi" in detail


def test_a_name_is_required(signed_in):  # noqa: F811
    token = form_page(signed_in, "/devices")
    response = signed_in.post("/devices/enrollment-codes", data={"csrf_token": token})
    assert response.status_code == 422 and 'id="e-device_name"' in response.text


def test_another_users_device_page_is_not_found(signed_in):  # noqa: F811
    assert signed_in.get(f"/devices/{uuid.uuid4()}").status_code == 404
