"""The FMD server protocol, API v1: the calls of the FMD Android app 0.15, made exactly as
its `FmdServerApiV1Repository.kt` makes them, with the app's own cryptography."""

from __future__ import annotations

import base64
import json
import os
import re
from datetime import timedelta

import pytest
from argon2.low_level import Type, hash_secret
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select

from smartprotect.audit import service as audit
from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability, Device
from smartprotect.fmd import service as fmd
from smartprotect.fmd.models import FmdAccount, FmdItem, ItemKind
from smartprotect.privacy.consent.models import ConsentEvent
from tests.helpers import LocalReceiver, add_owner

API = "/api/v1"
PASSWORD = "a phone passphrase"


def _argon2(text: str, salt: bytes) -> tuple[str, bytes]:
    """The app's Argon2id (t=1, p=4, m=128 MiB, 32 bytes): the PHC string and the raw hash."""
    encoded = hash_secret(text.encode(), salt, time_cost=1, memory_cost=131072, parallelism=4,
                          hash_len=32, type=Type.ID).decode()  # fmt: skip
    raw = base64.b64decode(encoded.rsplit("$", 1)[1] + "==")
    return encoded, raw


class Phone:
    """What the app holds: an RSA-3072 key pair, the private key wrapped under the password."""

    _key = rsa.generate_private_key(public_exponent=65537, key_size=3072)

    def __init__(self) -> None:
        self.login_salt = os.urandom(16)
        self.login_hash, _ = _argon2("context:loginAuthentication" + PASSWORD, self.login_salt)
        wrap_salt = os.urandom(16)
        _, wrap_key = _argon2("context:asymmetricKeyWrap" + PASSWORD, wrap_salt)
        pem = self._key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())  # fmt: skip
        iv = os.urandom(12)
        self.wrapped = base64.b64encode(
            wrap_salt + iv + AESGCM(wrap_key).encrypt(iv, pem, None)).decode()  # fmt: skip
        public_format = serialization.PublicFormat.SubjectPublicKeyInfo
        spki = self._key.public_key().public_bytes(serialization.Encoding.DER, public_format)
        self.public = base64.b64encode(spki).decode()

    def encrypt(self, plaintext: bytes) -> str:
        """RSA-OAEP-wrapped AES-256-GCM, as the app seals a location."""
        key, iv = AESGCM.generate_key(256), os.urandom(12)
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                            label=None)  # fmt: skip
        return base64.b64encode(self._key.public_key().encrypt(key, oaep) + iv
                                + AESGCM(key).encrypt(iv, plaintext, None)).decode()  # fmt: skip

    def decrypt(self, blob: str) -> bytes:
        raw = base64.b64decode(blob)
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                            label=None)  # fmt: skip
        key = self._key.decrypt(raw[:384], oaep)
        return AESGCM(key).decrypt(raw[384:396], raw[396:], None)


@pytest.fixture
def receiver():
    """The phone's UnifiedPush endpoint, on this machine."""
    receiver = LocalReceiver()
    receiver.url = receiver.base_url + "/UP?token=abc"
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def phone() -> Phone:
    return Phone()


@pytest.fixture
def owner(db, clock, keyring, published_policy):
    user = add_owner(db, clock=clock, keyring=keyring, email="owner@example.kz")
    db.commit()
    return user


def _code(db, keyring, clock, owner, capabilities=(Capability.LOCATE, Capability.RING,
                                                   Capability.LOCK)) -> str:  # fmt: skip
    _, raw = devices.create_enrollment_code(session=db, keyring=keyring, user=owner,
                                            device_name="Pixel", capabilities=list(capabilities),
                                            clock=clock)  # fmt: skip
    db.commit()
    return raw


def _put(client, path, body):
    # The app sends JSONObject.toString() with Volley's JSON content type.
    return client.put(API + path, content=json.dumps(body),
                      headers={"Content-Type": "application/json; charset=utf-8",
                               "User-Agent": "fmd-android/0.15.0"})  # fmt: skip


def _post(client, path, body):
    return client.post(API + path, content=json.dumps(body),
                       headers={"Content-Type": "application/json; charset=utf-8",
                                "User-Agent": "fmd-android/0.15.0"})  # fmt: skip


def _register(client, phone, code, username="pixel7"):
    return _put(client, "/device", {"hashedPassword": phone.login_hash, "pubkey": phone.public,
                                    "privkey": phone.wrapped, "requestedUsername": username,
                                    "registrationToken": code})  # fmt: skip


def _log_in(client, phone, username="pixel7") -> str:
    salt = _put(client, "/salt", {"IDT": username, "Data": ""}).json()["Data"]
    # The app derives its hash again from the salt the server gives back.
    again, _ = _argon2("context:loginAuthentication" + PASSWORD,
                       base64.b64decode(salt + "=" * (-len(salt) % 4)))  # fmt: skip
    assert again == phone.login_hash
    response = _put(client, "/requestAccess", {"IDT": username, "Data": again,
                                               "SessionDurationSeconds": 604800})  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()["Data"]


def test_the_app_registers_logs_in_uploads_and_is_woken_for_a_command(
    client, db, clock, keyring, owner, phone, receiver
):
    assert client.get("/version").text == fmd.PROTOCOL_VERSION  # read at the root
    registered = _register(client, phone, _code(db, keyring, clock, owner))
    assert registered.status_code == 200 and registered.json() == {"DeviceId": "pixel7"}
    # The phone is a device of the owner, with the capabilities the code gave and their
    # consent events, like any enrolled device.
    device = db.scalar(select(Device).where(Device.platform == fmd.PLATFORM))
    assert device.user_id == owner.id and device.name == "Pixel"
    assert sorted(device.capabilities) == ["locate", "lock", "ring"]
    events = select(func.count()).select_from(ConsentEvent).where(
        ConsentEvent.scope == devices.scope_of(device.id))  # fmt: skip
    assert db.scalar(events) == len(devices.CAPABILITY_PURPOSE)

    # The first call with no token fails; the app logs in and repeats it.
    assert _put(client, "/key", {"IDT": "", "Data": ""}).status_code == 401
    token = _log_in(client, phone)
    key = _put(client, "/key", {"IDT": token, "Data": ""})
    assert key.json() == {"IDT": token, "Data": phone.wrapped}
    assert _put(client, "/push", {"IDT": token, "Data": receiver.url}).status_code == 200

    location = json.dumps({"provider": "gps", "lat": 43.2389, "lon": 76.8897, "accuracy": 12,
                           "bat": 80, "date": 1764150000000}).encode()  # fmt: skip
    assert (
        _post(client, "/location", {"IDT": token, "Data": phone.encrypt(location)}).status_code
        == 200
    )
    count = _put(client, "/locationDataSize", {"IDT": token, "Data": ""})
    assert count.json() == {"IDT": "", "Data": "1"}
    latest = _put(client, "/location", {"IDT": token, "Data": "-1"}).json()["Data"]
    assert phone.decrypt(latest) == location
    # The server holds only what it cannot read.
    stored = db.scalar(select(FmdItem.data))
    assert "43.2389" not in stored and "76.8897" not in stored

    # An FMD client sends a signed command; the phone is woken, reads it once.
    signature = base64.b64encode(b"signature").decode()
    assert _post(client, "/command", {"IDT": token, "Data": "ring", "UnixTime": 1764150001000,
                                      "CmdSig": signature}).status_code == 200  # fmt: skip
    assert receiver.arrived.wait(5)
    path, headers, body = receiver.received[0]
    assert path == "/message?token=abc" and json.loads(body) == {"message": "fmd app wakeup",
                                                                 "priority": 5}  # fmt: skip
    assert headers["Urgency"] == "high" and headers["TTL"] == "86400"
    polled = _put(client, "/command", {"IDT": token, "Data": ""}).json()
    assert polled == {"IDT": token, "Data": "ring", "UnixTime": 1764150001000,
                      "CmdSig": signature}  # fmt: skip
    assert _put(client, "/command", {"IDT": token, "Data": ""}).json() == {
        "IDT": token, "Data": "", "UnixTime": 0, "CmdSig": ""}  # fmt: skip
    # Audited by its keyword, never its parameters (a lock message, a wipe PIN).
    _post(client, "/command", {"IDT": token, "Data": "delete 4321", "UnixTime": 1764150002000,
                               "CmdSig": signature})  # fmt: skip
    details = [e.details for e in db.scalars(select(AuditEvent).where(
        AuditEvent.action == Tag.FMD_COMMAND_RECEIVED).order_by(AuditEvent.seq))]  # fmt: skip
    assert [d["command"] for d in details] == ["ring", "delete"]
    assert "4321" not in json.dumps(details)


def test_registration_needs_an_owners_unused_enrollment_code(client, db, clock, keyring, owner,
                                                             phone):  # fmt: skip
    code = _code(db, keyring, clock, owner)
    for token in ("", "WRONGCODE", code.lower() + "X"):
        assert _register(client, phone, token).status_code == 401
    assert _register(client, phone, code, username="bad name!").status_code == 400
    assert _register(client, phone, code).status_code == 200
    assert _register(client, phone, code, username="second").status_code == 401  # used
    other = _code(db, keyring, clock, owner)
    assert _register(client, phone, other).status_code == 400  # the name is taken
    assert db.scalar(select(func.count()).select_from(FmdAccount)) == 1
    assert db.scalar(select(func.count()).select_from(Device)) == 1
    # A phone that asks for no name gets a random one, as from FMD's server.
    unnamed = _register(client, phone, _code(db, keyring, clock, owner), username="")
    assert unnamed.status_code == 200 and re.fullmatch(r"[a-zA-Z2-9]{10}",
                                                       unnamed.json()["DeviceId"])  # fmt: skip


def test_wrong_passwords_lock_the_account_and_tell_the_phone(client, db, clock, keyring, owner,
                                                             phone, receiver):  # fmt: skip
    _register(client, phone, _code(db, keyring, clock, owner))
    token = _log_in(client, phone)
    _put(client, "/push", {"IDT": token, "Data": receiver.url})
    wrong = {"IDT": "pixel7", "Data": "$argon2id$v=19$m=131072,t=1,p=4$AAAA$BBBB",
             "SessionDurationSeconds": 60}  # fmt: skip
    assert [_put(client, "/requestAccess", wrong).status_code for _ in range(6)] == [403] * 6
    right = {**wrong, "Data": phone.login_hash}
    assert _put(client, "/requestAccess", right).status_code == 423
    assert receiver.arrived.wait(5)
    assert _put(client, "/command", {"IDT": token, "Data": ""}).json()["Data"] == "423"
    assert _put(client, "/requestAccess", {"IDT": "nobody", "Data": "x"}).status_code == 404
    clock.advance(fmd.LOCK_DURATION + timedelta(seconds=1))
    assert _put(client, "/requestAccess", right).status_code == 200
    # The owner's audit log tells it all, naming the phone by a pseudonym.
    subject = audit.pseudonym(secret=keyring.secret, subject_id=owner.id)
    events = db.scalars(select(AuditEvent).where(AuditEvent.subject == subject)).all()
    actions = [event.action for event in events]
    assert actions.count(Tag.FMD_LOGIN_FAILED) == 6 and actions.count(Tag.FMD_LOCKED) == 1
    assert "pixel7" not in json.dumps([(e.actor, e.details) for e in events])


def test_sessions_end_when_they_run_out_or_the_password_changes(client, db, clock, keyring,
                                                                owner, phone):  # fmt: skip
    _register(client, phone, _code(db, keyring, clock, owner))
    token = _log_in(client, phone)
    short = _put(client, "/requestAccess", {"IDT": "pixel7", "Data": phone.login_hash}).json()
    clock.advance(fmd.DEFAULT_SESSION + timedelta(seconds=1))  # no duration asked: 15 minutes
    assert _put(client, "/key", {"IDT": short["Data"], "Data": ""}).status_code == 401
    assert _put(client, "/key", {"IDT": token, "Data": ""}).status_code == 200
    changed = _post(client, "/password", {"IDT": token, "hashedPassword": "$a$b$c$NEWSALT$h",
                                          "privkey": "re-wrapped"})  # fmt: skip
    assert changed.json() == {"IDT": token, "Data": "true"}
    assert _put(client, "/key", {"IDT": token, "Data": ""}).status_code == 401
    assert _put(client, "/salt", {"IDT": "pixel7", "Data": ""}).json()["Data"] == "NEWSALT"


def test_bad_input_changes_nothing(client, db, clock, keyring, owner, phone):
    _register(client, phone, _code(db, keyring, clock, owner))
    token = _log_in(client, phone)
    assert client.put(API + "/salt", content=b"not json").status_code == 400
    assert _put(client, "/salt", {"IDT": "../etc"}).text == "Invalid FMD ID\n"
    negative = {"IDT": "pixel7", "Data": phone.login_hash, "SessionDurationSeconds": -1}
    assert _put(client, "/requestAccess", negative).status_code == 400
    assert _post(client, "/location", {"IDT": "not-a-token", "Data": "x"}).status_code == 401
    assert _put(client, "/location", {"IDT": token, "Data": "0"}).status_code == 400  # none yet
    assert (
        _post(client, "/command", {"IDT": token, "Data": "ring", "UnixTime": "soon"}).status_code
        == 400
    )
    assert db.scalar(select(func.count()).select_from(FmdItem)) == 0
    assert _put(client, "/command", {"IDT": token}).json()["Data"] == ""


def test_deleting_the_device_takes_everything_of_it(client, db, clock, keyring, owner, phone):
    _register(client, phone, _code(db, keyring, clock, owner))
    token = _log_in(client, phone)
    _post(client, "/location", {"IDT": token, "Data": phone.encrypt(b"{}")})
    assert _post(client, "/device", {"IDT": token, "Data": ""}).status_code == 200
    for model in (Device, FmdAccount, FmdItem):
        assert db.scalar(select(func.count()).select_from(model)) == 0
    assert _put(client, "/key", {"IDT": token, "Data": ""}).status_code == 401


def test_pictures_up_to_15_mib_are_kept_the_newest_ten(
    client, db, clock, keyring, owner, phone, monkeypatch
):
    _register(client, phone, _code(db, keyring, clock, owner))
    token = _log_in(client, phone)
    big = base64.b64encode(os.urandom(10 * 1024 * 1024)).decode()  # ~13.3 MiB as sent
    assert _post(client, "/picture", {"IDT": token, "Data": big}).status_code == 200
    assert _put(client, "/picture", {"IDT": token, "Data": "0"}).text == big
    too_big = "A" * (fmd.PICTURE_BODY_LIMIT + 128 * 1024)
    assert _post(client, "/picture", {"IDT": token, "Data": too_big}).status_code == 413
    # Only pictures may be that large.
    assert _post(client, "/location", {"IDT": token, "Data": big}).status_code == 413
    monkeypatch.setitem(fmd.KEPT, ItemKind.PICTURE, 3)
    for number in range(4):
        clock.advance(timedelta(seconds=1))
        _post(client, "/picture", {"IDT": token, "Data": f"picture {number}"})
    kept = _post(client, "/pictures", {"IDT": token, "Data": ""}).json()
    assert kept == ["picture 1", "picture 2", "picture 3"]
    assert _put(client, "/pictureSize", {"IDT": token}).json() == {"IDT": "", "Data": "3"}
    assert _post(client, "/pictures/delete", {"IDT": token, "Data": ""}).status_code == 200
    assert _post(client, "/pictures", {"IDT": token}).json() == []


def test_the_owners_export_holds_the_phones_uploads_as_ciphertext(
    client, db, clock, keyring, owner, phone
):
    from jsonschema import Draft202012Validator

    from smartprotect.privacy.rights import export
    from smartprotect.privacy.rights.schema import EXPORT_SCHEMA

    _register(client, phone, _code(db, keyring, clock, owner))
    token = _log_in(client, phone)
    blob = phone.encrypt(b'{"lat": 43.2389}')
    _post(client, "/location", {"IDT": token, "Data": blob})
    db.expire_all()
    document = export.document(session=db, keyring=keyring, user=owner, now=clock.now())
    data = json.loads("".join(export.stream_json(document)))
    Draft202012Validator(EXPORT_SCHEMA).validate(data)
    (device,) = data["devices"]
    uploads = device["fmd"]["items"]
    assert [item["kind"] for item in uploads] == ["location"]
    assert json.loads(uploads[0]["ciphertext"])["Data"] == blob
    assert device["fmd"]["private_key"] == phone.wrapped and "Argon2id" in device["fmd"][
        "how_to_decrypt"]  # fmt: skip
    assert "43.2389" not in json.dumps(data)


def test_older_clients_find_the_protocol_at_the_root_paths(client, db, clock, keyring, owner,
                                                           phone):  # fmt: skip
    # App 0.9 and other clients call the same endpoints without the /api/v1 prefix.
    body = {"hashedPassword": phone.login_hash, "pubkey": phone.public, "privkey": phone.wrapped,
            "requestedUsername": "old-phone",
            "registrationToken": _code(db, keyring, clock, owner)}  # fmt: skip
    assert client.put("/device", content=json.dumps(body)).json() == {"DeviceId": "old-phone"}
    salt = client.put("/salt", content=json.dumps({"IDT": "old-phone"})).json()["Data"]
    assert salt and phone.login_hash.split("$")[4] == salt
    assert client.get("/tileServerUrl").json() == {"TileServerUrl": ""}


def test_a_phone_cannot_make_the_server_post_into_its_own_network(receiver):
    from smartprotect.fmd import push

    for url in (receiver.url, "http://10.0.0.7/UP?x", "http://[::1]/UP?x", "ftp://example.org/",
                "http://localhost/UP?x"):  # fmt: skip
        assert not push.wake(url)
    assert receiver.received == []
    assert push.wake(receiver.url, allow_private=True) and len(receiver.received) == 1
