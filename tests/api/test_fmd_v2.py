"""The FMD server protocol, API v2 (fmd-server 0.17's `openapi-v2.yaml`): accounts, bearer
sessions and encrypted items, with a v2 client's own cryptography (the published client's
`fmd_api.protocol_v2`)."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fmd_api import protocol_v2
from sqlalchemy import func, select

from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability, Device
from smartprotect.fmd import service as fmd
from smartprotect.fmd.models import FmdAccount, FmdItem, FmdSession
from smartprotect.privacy.consent.models import ConsentEvent
from tests.helpers import LocalReceiver, add_owner

API = "/api/v2"
NAME = "tablet-v2"
PASSWORD = "a v2 passphrase"


@dataclass(frozen=True)
class V2Keys:
    salt: bytes
    auth: bytes  # K_auth, sent as passwordHash64
    premaster: bytes
    master: bytes


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def keys() -> V2Keys:
    return new_keys()


def new_keys() -> V2Keys:
    """A v2 client's keys for `NAME`, from `PASSWORD`."""
    salt = os.urandom(16)
    auth, premaster = protocol_v2.derive_password_key(NAME, PASSWORD, salt)
    return V2Keys(salt, auth, premaster, protocol_v2.generate_master_key())


@pytest.fixture
def owner(db, clock, keyring, published_policy):
    user = add_owner(db, clock=clock, keyring=keyring)
    db.commit()
    return user


@pytest.fixture
def code(db, keyring, clock, owner) -> str:
    _, raw = devices.create_enrollment_code(
        session=db, keyring=keyring, user=owner, device_name="Tablet",
        capabilities=[Capability.LOCATE, Capability.RING], clock=clock,
    )  # fmt: skip
    db.commit()
    return raw


@pytest.fixture
def receiver():
    receiver = LocalReceiver()
    yield receiver
    receiver.server.shutdown()


def _registration(keys: V2Keys, code: str, **overrides) -> dict:
    body = {
        "username": NAME, "salt64": _b64(keys.salt), "passwordHash64": _b64(keys.auth),
        "protoVersion": 2, "registrationToken": code,
        "encMasterKey64": _b64(protocol_v2.encrypt_master_key(NAME, keys.premaster,
                                                              keys.master)),
    }  # fmt: skip
    return body | overrides


def _register(client, keys, code) -> str:
    response = client.post(API + "/account/register", json=_registration(keys, code))
    assert response.status_code == 200, response.text
    return response.json()["accessToken"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _item(keys: V2Keys, kind: str, raw: bytes) -> dict:
    item_id, millis, ciphertext = protocol_v2.LongTermKeys(NAME, keys.master).encrypt_data_blob(
        raw, kind
    )
    return {"clientItemIdHex": item_id.hex(), "unixMillis": millis,
            "ciphertext64": _b64(ciphertext)}  # fmt: skip


def test_a_v2_client_registers_with_a_code_logs_in_and_opens_its_master_key(
    client, db, keys, code, owner
):
    token = _register(client, keys, code)
    device = db.scalar(select(Device).where(Device.platform == fmd.PLATFORM))
    assert device.user_id == owner.id and device.name == "Tablet"
    assert sorted(device.capabilities) == ["locate", "ring"]
    events = select(func.count()).select_from(ConsentEvent).where(
        ConsentEvent.scope == devices.scope_of(device.id))  # fmt: skip
    assert db.scalar(events) == len(devices.CAPABILITY_PURPOSE)
    assert client.get(API + "/account/push_url", headers=_bearer(token)).json() == {"url": ""}

    salt = client.get(f"{API}/account/{NAME}/salt").json()
    assert salt == {"salt64": _b64(keys.salt), "protoVersion": 2}
    login = client.post(
        API + "/account/login",
        json={"username": NAME, "passwordHash64": _b64(keys.auth), "sessionDurationSeconds": 3600},
    )
    assert login.status_code == 200
    master = protocol_v2.decrypt_master_key(
        NAME, keys.premaster, base64.b64decode(login.json()["encMasterKey64"])
    )
    assert master == keys.master
    # The server keeps no password and nothing it could open.
    account = db.scalar(select(FmdAccount))
    assert account.protocol_version == 2 and _b64(keys.auth) not in account.password_hash
    assert account.password_hash.startswith(fmd.PASSWORD_SCHEME)
    assert client.get(f"{API}/account/nobody/salt").status_code == 404


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"registrationToken": ""}, 401),
        ({"registrationToken": "NOT-A-CODE"}, 401),
        ({"protoVersion": 1}, 400),
        ({"passwordHash64": "not base64!"}, 400),
        ({"encMasterKey64": "%%%"}, 400),
        ({"username": "no spaces allowed"}, 400),
    ],
)
def test_a_bad_registration_changes_nothing(client, db, keys, code, overrides, status):
    response = client.post(API + "/account/register", json=_registration(keys, code, **overrides))
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/plain")
    assert db.scalar(select(func.count()).select_from(FmdAccount)) == 0
    assert db.scalar(select(func.count()).select_from(Device)) == 0
    # The code was not used up by the refusal.
    _register(client, keys, code)
    again = client.post(API + "/account/register", json=_registration(keys, code))
    assert again.status_code == 400  # the name is taken now


def test_bearer_tokens_are_checked_and_logout_ends_one(client, keys, code):
    token = _register(client, keys, code)
    assert client.get(API + "/data/location").status_code == 400
    assert client.get(API + "/data/location", headers=_bearer("x" * 32)).status_code == 401
    assert client.get(API + "/data/location", headers=_bearer(token)).json() == {"items": []}
    assert client.post(API + "/account/logout", headers=_bearer(token)).status_code == 200
    assert client.get(API + "/data/location", headers=_bearer(token)).status_code == 401


def test_items_are_kept_as_sent_listed_in_order_and_deleted_by_id(client, db, keys, code):
    token = _register(client, keys, code)
    fixes = [_item(keys, "location", json.dumps({"lat": 43.2 + n}).encode()) for n in range(3)]
    posted = client.post(API + "/data/location", json={"items": fixes[:2]}, headers=_bearer(token))
    assert posted.status_code == 200
    client.post(API + "/data/location", json={"items": fixes[2:]}, headers=_bearer(token))
    listed = client.get(API + "/data/location", headers=_bearer(token)).json()["items"]
    assert listed == fixes
    long_term = protocol_v2.LongTermKeys(NAME, keys.master)
    opened = long_term.decrypt_data_blob(bytes.fromhex(listed[0]["clientItemIdHex"]),
                                         listed[0]["unixMillis"], "location",
                                         base64.b64decode(listed[0]["ciphertext64"]))  # fmt: skip
    assert json.loads(opened) == {"lat": 43.2}
    assert "43.2" not in "".join(db.scalars(select(FmdItem.data)))

    first = fixes[0]["clientItemIdHex"]
    path = f"{API}/data/location/{first}"
    assert client.delete(path, headers=_bearer(token)).status_code == 200
    assert client.delete(path, headers=_bearer(token)).status_code == 404
    assert client.get(API + "/data/picture", headers=_bearer(token)).json() == {"items": []}
    assert client.delete(API + "/data/location/all", headers=_bearer(token)).status_code == 200
    assert client.get(API + "/data/location", headers=_bearer(token)).json() == {"items": []}
    assert client.get(API + "/data/secrets", headers=_bearer(token)).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"items": "x"},
        {"items": [{"clientItemIdHex": "abc", "unixMillis": 1, "ciphertext64": "AAAA"}]},
        {"items": [{"clientItemIdHex": "a" * 32, "unixMillis": -1, "ciphertext64": "AAAA"}]},
        {"items": [{"clientItemIdHex": "a" * 32, "unixMillis": 1, "ciphertext64": "not b64!"}]},
        {"items": [{"clientItemIdHex": "a" * 32, "unixMillis": 1, "ciphertext64": "AAAA"}, 5]},
        {"items": [{"clientItemIdHex": "a" * 32, "unixMillis": 2**70, "ciphertext64": "AAAA"}]},
    ],
)
def test_malformed_items_are_refused_and_none_is_stored(client, db, keys, code, body):
    token = _register(client, keys, code)
    response = client.post(API + "/data/location", json=body, headers=_bearer(token))
    assert response.status_code == 400
    assert db.scalar(select(func.count()).select_from(FmdItem)) == 0


def test_a_new_command_wakes_the_phone_and_is_audited_as_encrypted(
    client, db, keys, code, receiver
):
    token = _register(client, keys, code)
    url = receiver.base_url + "/UP?token=v2"
    assert client.post(API + "/account/push_url", json={"url": url},
                       headers=_bearer(token)).status_code == 200  # fmt: skip
    assert client.get(API + "/account/push_url", headers=_bearer(token)).json() == {"url": url}
    command = _item(keys, "command", b"ring long")
    client.post(API + "/data/command", json={"items": [command]}, headers=_bearer(token))
    assert receiver.arrived.wait(5)
    _path, _headers, body = receiver.received[0]
    assert json.loads(body) == {"message": "fmd app wakeup", "priority": 5}
    # The phone reads it, and deletes it once done.
    waiting = client.get(API + "/data/command", headers=_bearer(token)).json()["items"]
    assert waiting == [command]
    client.delete(f"{API}/data/command/{command['clientItemIdHex']}", headers=_bearer(token))
    assert client.get(API + "/data/command", headers=_bearer(token)).json() == {"items": []}
    details = db.scalar(
        select(AuditEvent.details).where(AuditEvent.action == Tag.FMD_COMMAND_RECEIVED)
    )
    assert details["command"] == "encrypted" and "ring" not in json.dumps(details)


def test_a_password_change_ends_every_session_and_only_the_new_password_logs_in(
    client, db, keys, code
):
    token = _register(client, keys, code)
    other = client.post(API + "/account/login", json={
        "username": NAME, "passwordHash64": _b64(keys.auth), "sessionDurationSeconds": 0,
    }).json()["accessToken"]  # fmt: skip
    salt = os.urandom(16)
    auth, premaster = protocol_v2.derive_password_key(NAME, "a new passphrase", salt)
    changed = client.post(API + "/account/password", headers=_bearer(token), json={
        "newSalt64": _b64(salt), "newPasswordHash64": _b64(auth),
        "newEncMasterKey64": _b64(protocol_v2.encrypt_master_key(NAME, premaster, keys.master)),
    })  # fmt: skip
    assert changed.status_code == 200
    fresh = changed.json()["accessToken"]
    for old in (token, other):
        assert client.get(API + "/account/push_url", headers=_bearer(old)).status_code == 401
    assert client.get(API + "/account/push_url", headers=_bearer(fresh)).status_code == 200
    assert db.scalar(select(func.count()).select_from(FmdSession)) == 1
    assert client.get(f"{API}/account/{NAME}/salt").json()["salt64"] == _b64(salt)

    def log_in(auth_key: bytes) -> int:
        return client.post(API + "/account/login", json={
            "username": NAME, "passwordHash64": _b64(auth_key), "sessionDurationSeconds": 60,
        }).status_code  # fmt: skip

    assert log_in(keys.auth) == 403
    assert log_in(auth) == 200


def test_repeated_wrong_passwords_lock_the_account(client, keys, code):
    _register(client, keys, code)
    wrong = {"username": NAME, "passwordHash64": _b64(b"w" * 32), "sessionDurationSeconds": 60}
    statuses = [client.post(API + "/account/login", json=wrong).status_code for _ in range(7)]
    assert statuses == [403] * 6 + [423]
    right = wrong | {"passwordHash64": _b64(keys.auth)}
    assert client.post(API + "/account/login", json=right).status_code == 423
    assert client.post(API + "/account/login", json={"username": "x y"}).status_code == 400
    huge = right | {"sessionDurationSeconds": 10**30}
    assert client.post(API + "/account/login", json=huge).status_code == 423  # still locked
    assert client.post(API + "/account/login", content=b"{").status_code == 400


def test_deleting_the_account_deletes_the_device_and_its_items(client, db, keys, code):
    token = _register(client, keys, code)
    client.post(API + "/data/location", json={"items": [_item(keys, "location", b"{}")]},
                headers=_bearer(token))  # fmt: skip
    assert client.delete(API + "/account", headers=_bearer(token)).status_code == 200
    for table in (Device, FmdAccount, FmdItem, FmdSession):
        assert db.scalar(select(func.count()).select_from(table)) == 0


def test_pictures_up_to_15_mib_are_taken_and_larger_refused(client, db, keys, code):
    token = _register(client, keys, code)
    item = {"clientItemIdHex": "b" * 32, "unixMillis": 1,
            "ciphertext64": _b64(os.urandom(fmd.PICTURE_BODY_LIMIT * 3 // 4 - 1024))}  # fmt: skip
    ok = client.post(API + "/data/picture", json={"items": [item]}, headers=_bearer(token))
    assert ok.status_code == 200
    big = item | {"ciphertext64": _b64(os.urandom(fmd.PICTURE_BODY_LIMIT))}
    refused = client.post(API + "/data/picture", json={"items": [big]}, headers=_bearer(token))
    assert refused.status_code == 413
    # Other kinds take no such sizes.
    too_big = client.post(API + "/data/location", json={"items": [item]}, headers=_bearer(token))
    assert too_big.status_code == 413
    assert db.scalar(select(func.count()).select_from(FmdItem)) == 1


def test_the_tile_server_and_version_answer_in_plain_text(client):
    assert client.get(API + "/version").text == fmd.PROTOCOL_VERSION
    assert client.get(API + "/tileServerUrl").headers["content-type"].startswith("text/plain")


def test_the_owners_export_holds_v2_items_and_what_opens_them_with_the_password(
    client, db, clock, keyring, keys, code, owner
):
    from jsonschema import Draft202012Validator

    from smartprotect.privacy.rights import export
    from smartprotect.privacy.rights.schema import EXPORT_SCHEMA

    token = _register(client, keys, code)
    fix = _item(keys, "location", b'{"lat": 43.2389}')
    client.post(API + "/data/location", json={"items": [fix]}, headers=_bearer(token))
    db.expire_all()
    document = export.document(session=db, keyring=keyring, user=owner, now=clock.now())
    data = json.loads("".join(export.stream_json(document)))
    Draft202012Validator(EXPORT_SCHEMA).validate(data)
    (device,) = data["devices"]
    fmd_data = device["fmd"]
    assert fmd_data["protocol_version"] == 2 and "fmd_v2_master" in fmd_data["how_to_decrypt"]
    assert "43.2389" not in json.dumps(data)
    # The document alone and the password open it, as its instructions say.
    _auth, premaster = protocol_v2.derive_password_key(
        fmd_data["username"], PASSWORD, base64.b64decode(fmd_data["salt"])
    )
    master = protocol_v2.decrypt_master_key(
        fmd_data["username"], premaster, base64.b64decode(fmd_data["encrypted_master_key"])
    )
    (item,) = fmd_data["items"]
    opened = protocol_v2.LongTermKeys(fmd_data["username"], master).decrypt_data_blob(
        bytes.fromhex(item["client_item_id"]),
        item["unix_millis"],
        item["kind"],
        base64.b64decode(item["ciphertext"]),
    )
    assert json.loads(opened) == {"lat": 43.2389}


def test_one_client_guessing_is_throttled_across_accounts_logins_and_registrations(
    client, db, keys, code, clock
):
    from smartprotect.accounts.models import LoginAttempt

    _register(client, keys, code)
    # Guesses spread over accounts, so that FMD's per-account lock never triggers.
    for n in range(fmd.MAX_FAILURES_PER_CLIENT // 2):
        body = {"username": f"guess{n}", "passwordHash64": _b64(b"x"), "sessionDurationSeconds": 1}
        assert client.post(API + "/account/login", json=body).status_code == 404
        wrong = _registration(keys, f"WRONG-CODE-{n}", username=f"new{n}")
        assert client.post(API + "/account/register", json=wrong).status_code == 401
    right = {"username": NAME, "passwordHash64": _b64(keys.auth), "sessionDurationSeconds": 60}
    refused = client.post(API + "/account/login", json=right)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert client.put("/api/v1/requestAccess", json={"IDT": NAME, "Data": "x"}).status_code == 429
    # The records name neither the account nor the client in clear.
    keys_kept = db.scalars(select(LoginAttempt.account_key)).all()
    assert len(keys_kept) == fmd.MAX_FAILURES_PER_CLIENT
    assert not any(name in key for key in keys_kept for name in ("guess", "new", "testclient"))
    # The window passes.
    clock.advance(timedelta(minutes=16))
    assert client.post(API + "/account/login", json=right).status_code == 200


def test_a_session_asked_for_beyond_a_week_lasts_a_week(client, db, keys, code):
    _register(client, keys, code)
    body = {"username": NAME, "passwordHash64": _b64(keys.auth), "sessionDurationSeconds": 10**30}
    assert client.post(API + "/account/login", json=body).status_code == 200
    longest = max(s.expires_at - s.created_at for s in db.scalars(select(FmdSession)))
    assert longest == fmd.MAX_SESSION
