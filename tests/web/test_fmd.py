"""An FMD phone on the dashboard: its data goes to the owner's browser as ciphertext only, and
what comes back as a command is checked as any command is (permission, wipe's safety check,
the owner's session and CSRF token)."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from sqlalchemy import select

from smartprotect.fmd.models import FmdAccount
from tests.api.test_fmd_v1 import Phone
from tests.helpers import form_page


@pytest.fixture(scope="module")
def phone() -> Phone:
    return Phone()


def _fmd_phone(client, phone, capabilities=("locate", "ring", "lock", "wipe")) -> tuple[str, str]:
    """An FMD app registered with a code from the dashboard; (device id, access token)."""
    token = form_page(client, "/devices")
    data = {"csrf_token": token, "device_name": "Pixel"}
    data.update({f"capability_{c}": "on" for c in capabilities})
    page = client.post("/devices/enrollment-codes", data=data).text
    code = re.search(r'id="enrollment-code">([A-Z0-9-]+)<', page).group(1)
    assert client.put("/api/v1/device", json={
        "hashedPassword": phone.login_hash, "pubkey": phone.public, "privkey": phone.wrapped,
        "requestedUsername": "pixel7", "registrationToken": code}).status_code == 200  # fmt: skip
    access = client.put("/api/v1/requestAccess", json={
        "IDT": "pixel7", "Data": phone.login_hash}).json()["Data"]  # fmt: skip
    client.post("/api/v1/location", json={"IDT": access, "Data": phone.encrypt(b'{"lat": 43.2}')})
    page = client.get("/devices").text
    device_id = re.search(r'href="/devices/([0-9a-f-]{36})"', page).group(1)
    return device_id, access


def _command(client, device_id, payload, *, csrf=True):
    headers = {"Content-Type": "application/json"}
    if csrf:
        headers["X-CSRF-Token"] = form_page(client, f"/devices/{device_id}")
    return client.post(f"/devices/{device_id}/fmd/commands", content=json.dumps(payload),
                       headers=headers)  # fmt: skip


def test_the_page_offers_opening_in_the_browser_and_the_data_is_ciphertext(signed_in, phone):
    device_id, _ = _fmd_phone(signed_in, phone)
    page = signed_in.get(f"/devices/{device_id}").text
    assert "data-fmd" in page and "/static/vendor/hash-wasm/argon2.umd.min.js" in page
    assert "it is never sent to Smart Protect" in page
    data = signed_in.get(f"/devices/{device_id}/fmd")
    assert data.headers["cache-control"] == "no-store"
    body = data.json()
    assert body["protocol"] == 1 and body["private_key"] == phone.wrapped
    assert phone.decrypt(body["locations"][0]["ciphertext"]) == b'{"lat": 43.2}'
    assert "43.2" not in data.text
    assert signed_in.get(f"/devices/{uuid.uuid4()}/fmd").status_code == 404


def test_commands_need_the_csrf_token_a_permission_and_a_matching_signed_command(
    signed_in, phone, db
):
    device_id, access = _fmd_phone(signed_in, phone, capabilities=("locate", "ring"))
    signed = {"data": "ring", "unix_time": 1795700000000, "signature": "c2ln"}
    assert _command(signed_in, device_id, {"keyword": "ring", "signed": signed},
                    csrf=False).status_code == 403  # fmt: skip
    locked = _command(signed_in, device_id, {"keyword": "lock", "signed": signed | {
        "data": "lock"}})  # fmt: skip
    assert locked.status_code == 403
    mismatched = _command(signed_in, device_id, {"keyword": "ring", "signed": signed | {
        "data": "delete 1234"}})  # fmt: skip
    assert mismatched.status_code == 422
    assert _command(signed_in, device_id, {"keyword": "sms", "signed": signed}).status_code == 422
    for odd in ({"keyword": "ring", "signed": signed | {"unix_time": float("inf")}},
                {"keyword": "ring", "signed": signed, "password": 5}, ["ring"]):  # fmt: skip
        assert _command(signed_in, device_id, odd).status_code == 400
    assert signed_in.put("/api/v1/command", json={"IDT": access}).json()["Data"] == ""
    sent = _command(signed_in, device_id, {"keyword": "ring", "signed": signed})
    assert sent.status_code == 200
    assert signed_in.put("/api/v1/command", json={"IDT": access}).json() == {
        "IDT": access,
        "Data": "ring",
        "UnixTime": 1795700000000,
        "CmdSig": "c2ln",
    }


def test_a_wipe_needs_the_owners_password_and_the_devices_name(signed_in, phone, db):
    device_id, access = _fmd_phone(signed_in, phone)
    signed = {"data": "delete 4321", "unix_time": 1795700000000, "signature": "c2ln"}
    refused = _command(
        signed_in,
        device_id,
        {"keyword": "delete", "signed": signed, "password": "wrong", "confirm_name": "Pxl"},
    )
    assert refused.status_code == 422 and set(refused.json()["errors"]) == {
        "password", "confirm_name"}  # fmt: skip
    assert signed_in.put("/api/v1/command", json={"IDT": access}).json()["Data"] == ""
    from tests.helpers import PASSWORD

    sent = _command(
        signed_in,
        device_id,
        {"keyword": "delete", "signed": signed, "password": PASSWORD, "confirm_name": "Pixel"},
    )
    assert sent.status_code == 200
    assert signed_in.put("/api/v1/command", json={"IDT": access}).json()["Data"] == "delete 4321"
    assert db.scalar(select(FmdAccount.command)) is None
