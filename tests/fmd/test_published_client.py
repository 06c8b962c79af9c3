"""The published FMD Python client (`fmd-api` on PyPI), unchanged, against a real server
process: it logs in to a v1 account (the app's) and a v2 account, reads and decrypts their
locations and pictures, sends every command kind, and registers a v2 account and uploads
to it. The phone's side of v1 is the app's calls (`tests/api/test_fmd_v1.Phone`)."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from fmd_api import FmdClient
from fmd_api.protocol_v2 import TYPE_COMMAND, TYPE_PICTURE

from smartprotect.clock import SystemClock
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability
from tests.api.test_fmd_v1 import PASSWORD, Phone
from tests.helpers import LocalReceiver, add_owner
from tests.live import live_server

V2_PASSWORD = "the tablet's passphrase"
FIXES = [{"provider": "gps", "lat": 43.2389, "lon": 76.8897, "accuracy": 12, "bat": 80,
          "date": 1764150000000 + n, "time": "Wed Nov 26 2026"} for n in range(2)]  # fmt: skip
PICTURE = base64.b64encode(b"\xff\xd8\xff\xe0 a JPEG of the thief").decode()
# Every command the FMD app takes (the web client's buttons and the rest).
COMMANDS = ["locate", "locate gps", "locate cell", "locate last", "ring", "ring long", "lock",
            "lock Please call +7 701 000 0001", "delete 4321", "delete 4321 dryrun",
            "camera front", "camera back", "flash", "gps on", "gps off", "bluetooth on",
            "bluetooth off", "nodisturb on", "nodisturb off", "ringermode normal",
            "ringermode vibrate", "ringermode silent", "stats", "help"]  # fmt: skip


@pytest.fixture
def codes(session_factory, keyring, published_policy) -> list[str]:
    """Two enrollment codes of one owner: one for the phone (v1), one for the tablet (v2),
    made now (the server process runs on the real clock)."""
    clock = SystemClock()
    with session_factory() as session:
        owner = add_owner(session, clock=clock, keyring=keyring)
        made = [
            devices.create_enrollment_code(
                session=session, keyring=keyring, user=owner, device_name=name,
                capabilities=[Capability.LOCATE, Capability.RING, Capability.LOCK,
                              Capability.WIPE], clock=clock,
            )[1]
            for name in ("Phone", "Tablet")
        ]  # fmt: skip
        session.commit()
    return made


@pytest.fixture
def server(database_url, smtp_port, tmp_path):
    with live_server(database_url=database_url, smtp_port=smtp_port,
                     log_path=tmp_path / "server.log",
                     SMARTPROTECT_FMD_PUSH_TO_PRIVATE_ADDRESSES="true") as server:  # fmt: skip
        yield server


@pytest.fixture
def receiver():
    receiver = LocalReceiver()
    yield receiver
    receiver.server.shutdown()


def _app_call(http: httpx.Client, method: str, path: str, body: dict) -> httpx.Response:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    response = http.request(method, "/api/v1" + path, content=json.dumps(body), headers=headers)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response


def test_the_published_client_reads_a_v1_phone_and_sends_it_every_command(server, codes, receiver):
    phone = Phone()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # The app: register with the owner's code, log in, upload, leave its push endpoint.
        _app_call(http, "PUT", "/device", {
            "hashedPassword": phone.login_hash, "pubkey": phone.public, "privkey": phone.wrapped,
            "requestedUsername": "pixel7", "registrationToken": codes[0]})  # fmt: skip
        token = _app_call(http, "PUT", "/requestAccess", {
            "IDT": "pixel7", "Data": phone.login_hash, "SessionDurationSeconds": 604800,
        }).json()["Data"]  # fmt: skip
        for fix in FIXES:
            _app_call(http, "POST", "/location",
                      {"IDT": token, "Data": phone.encrypt(json.dumps(fix).encode())})  # fmt: skip
        _app_call(http, "POST", "/picture", {"IDT": token, "Data": phone.encrypt(PICTURE.encode())})
        _app_call(http, "PUT", "/push", {"IDT": token, "Data": receiver.base_url + "/UP?t=1"})

        async def owner_side() -> tuple[list[bytes], list[bytes]]:
            client = await FmdClient.create(server.url, "pixel7", PASSWORD, session_duration=600)
            try:
                assert client.protocol_version == 1
                locations = [client.decrypt_data_blob(blob)
                             for blob in await client.get_locations()]  # fmt: skip
                pictures = [client.decrypt_data_blob(blob)
                            for blob in await client.get_pictures()]  # fmt: skip
                sent = []
                for command in COMMANDS:
                    receiver.reset()
                    assert await client.send_command(command)
                    sent.append(_phone_reads(http, token, phone, receiver))
                assert await client.request_location("gps")
                sent.append(_phone_reads(http, token, phone, receiver))
                return locations, pictures, sent
            finally:
                await client.close()

        locations, pictures, received = asyncio.run(owner_side())
    assert [json.loads(raw) for raw in locations] == FIXES
    assert pictures == [PICTURE.encode()]
    assert [command for command, _ in received] == [*COMMANDS, "locate gps"]
    times = [unix_time for _, unix_time in received]
    assert times == sorted(set(times)), "the app refuses a command whose time does not increase"


def _phone_reads(http, token, phone, receiver) -> tuple[str, int]:
    """What the woken phone does: read its command once, and check the owner's signature."""
    assert receiver.arrived.wait(10), "the phone was not woken"
    command = _app_call(http, "PUT", "/command", {"IDT": token, "Data": ""}).json()
    signature = base64.b64decode(command["CmdSig"] + "=" * (-len(command["CmdSig"]) % 4))
    message = f"{command['UnixTime']}:{command['Data']}".encode()
    try:
        phone._key.public_key().verify(
            signature, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )  # fmt: skip
    except InvalidSignature:  # pragma: no cover - the assertion's message
        pytest.fail(f"the signature of {command['Data']!r} does not verify")
    empty = _app_call(http, "PUT", "/command", {"IDT": token, "Data": ""}).json()
    assert empty["Data"] == "" and empty["CmdSig"] == ""
    return command["Data"], command["UnixTime"]


def test_the_published_client_registers_a_v2_account_uploads_reads_and_commands(
    server, codes, receiver
):
    async def scenario():
        # The device's side: register with the owner's code, set a push URL, upload.
        device = FmdClient(server.url)
        try:
            await device.register_v2("tablet", V2_PASSWORD, registration_token=codes[1])
            await device._request_v2("POST", "/account/push_url",
                                     {"url": receiver.base_url + "/UP?t=2"})  # fmt: skip
            await device.post_data_items("location", [json.dumps(fix).encode() for fix in FIXES])
            await device.post_data_items(TYPE_PICTURE, [PICTURE.encode()])

            # The owner's side: log in afresh (the client finds the account is v2), read,
            # decrypt, command.
            owner = await FmdClient.create(server.url, "tablet", V2_PASSWORD)
            try:
                assert owner.protocol_version == 2
                locations = [owner.decrypt_data_blob(blob) for blob in await owner.get_locations()]
                pictures = [owner.decrypt_item(TYPE_PICTURE, item)
                            for item in await owner.get_data_items(TYPE_PICTURE)]  # fmt: skip
                for command in COMMANDS:
                    receiver.reset()
                    assert await owner.send_command(command)
                    assert await asyncio.to_thread(receiver.arrived.wait, 10)
            finally:
                await owner.close()

            # The device reads its commands, opens them, and deletes each once done.
            waiting = await device.get_data_items(TYPE_COMMAND)
            commands = [device.decrypt_item(TYPE_COMMAND, item).decode() for item in waiting]
            for item in waiting:
                await device._request_v2("DELETE", f"/data/{TYPE_COMMAND}/{item.item_id.hex()}")
            left = await device.get_data_items(TYPE_COMMAND)
            return locations, pictures, commands, left
        finally:
            await device.close()

    locations, pictures, commands, left = asyncio.run(scenario())
    # Newest first, as the client sorts them.
    assert sorted(json.loads(raw)["date"] for raw in locations) == [f["date"] for f in FIXES]
    assert pictures == [PICTURE.encode()]
    assert sorted(commands) == sorted(COMMANDS) and left == []
